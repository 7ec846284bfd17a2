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
