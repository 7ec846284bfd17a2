"""Real image bytes for tests, made with Pillow."""
import io

import numpy as np
from PIL import Image


def image_bytes(fmt: str = "JPEG", size=(64, 48), color=(200, 30, 30), seed: int = 0, exif_orientation: int | None = None, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.empty((size[1], size[0], 4 if mode == "RGBA" else 3), dtype=np.uint8)
    pixels[...] = (*color, 255)[: pixels.shape[2]]
    pixels[: size[1] // 2, : size[0] // 2, :3] = rng.integers(0, 255, (size[1] // 2, size[0] // 2, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, mode)
    buffer = io.BytesIO()
    kwargs = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    if fmt == "JPEG":
        kwargs["quality"] = 92
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, valid PNG stream that declares width × height pixels: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(min(height, 64))) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def product_on_white(size=(480, 360), seed: int = 0, fmt: str = "PNG") -> bytes:
    """A studio-style product photo: a shaded red box with a label on a white sweep."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    pixels = np.full((h, w, 3), 250, np.uint8)
    pixels[:, :] = np.linspace(244, 252, h, dtype=np.float32)[:, None, None].astype(np.uint8)
    x0, y0, x1, y1 = w // 3, h // 4, 2 * w // 3, 3 * h // 4
    shade = np.linspace(150, 210, x1 - x0, dtype=np.float32)
    pixels[y0:y1, x0:x1] = np.stack([shade, shade * 0.15, shade * 0.12], axis=-1).astype(np.uint8)[None, :, :]
    cv2.rectangle(pixels, (x0 + 12, y0 + 30), (x1 - 12, y0 + 70), (240, 230, 200), -1)
    noisy = np.clip(pixels.astype(np.int16) + rng.integers(-3, 4, pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format=fmt)
    return buffer.getvalue()
