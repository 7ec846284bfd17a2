"""Decoding rules for images that come from outside: the rules every photo passes before
anything is stored (content allowlist, caps, full decode, EXIF upright), and touch-up masks.

Plain functions over bytes and file objects: the upload service
(`catalog.services.photo_upload`), the touch-up job and `stage` all decode through them."""
from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Allowlisted by content: the first bytes decide, never the name or the Content-Type.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
NOT_AN_IMAGE = "This file is not a JPEG, PNG or WebP image."
CHUNK = 1024 * 1024


class UploadRejected(Exception):
    """A photo that will not be accepted; the message is for the merchant."""

    def __init__(self, message: str, code: str = "invalid_upload"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class AcceptedImage:
    format: str
    sha256: str
    size_bytes: int
    original_width: int
    original_height: int
    working_png: bytes  # decoded, EXIF-upright, long side capped; lossless
    working_sha256: str
    width: int
    height: int
    has_alpha: bool


def _megapixels(pixels: int) -> str:
    mp = pixels / 1_000_000
    return f"{mp:.0f}" if mp >= 10 else f"{mp:.1f}".rstrip("0").rstrip(".")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def _declared_pixels(exc: Exception) -> int | None:
    match = re.search(r"\((\d+) pixels\)", str(exc))
    return int(match.group(1)) if match else None


def _too_many_pixels(pixels: int | None, max_pixels: int) -> UploadRejected:
    if pixels is None:
        return UploadRejected(f"This image has more pixels than the limit of {_megapixels(max_pixels)} MP.", "too_many_pixels")
    return UploadRejected(f"This image is {_megapixels(pixels)} MP; the limit is {_megapixels(max_pixels)} MP.", "too_many_pixels")


def sniff_format(head: bytes) -> str | None:
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def sha256_of(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def validate_image(stream: BinaryIO, *, size_bytes: int, max_bytes: int, max_pixels: int, working_max_side: int) -> AcceptedImage:
    """Check and fully decode one uploaded image, or raise UploadRejected.

    Reads the stream in chunks for the hash; Pillow decodes from the stream itself, so a
    file Django spooled to disk is never read whole into memory."""
    if size_bytes == 0:
        raise UploadRejected("This file is empty (0 bytes).", "empty_file")
    if size_bytes > max_bytes:
        raise UploadRejected(
            f"This file is {_megabytes(size_bytes)} MB; the limit is {_megabytes(max_bytes)} MB.", "file_too_large"
        )
    stream.seek(0)
    head = stream.read(16)
    declared = sniff_format(head)
    if declared is None:
        raise UploadRejected(NOT_AN_IMAGE, "unsupported_type")
    sha256 = sha256_of(stream)

    with warnings.catch_warnings():
        # Pillow only warns between its pixel limit and twice that; a warning is a bomb too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Pillow checks the declared size against this limit while parsing the header, before
        # any pixel is allocated; the cap and Pillow's bomb guard are one number.
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            image = Image.open(stream, formats=sorted(ALLOWED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels(_declared_pixels(exc), max_pixels) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise UploadRejected(NOT_AN_IMAGE, "unsupported_type") from None
        if image.format != declared:
            raise UploadRejected(NOT_AN_IMAGE, "unsupported_type")
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels(width * height, max_pixels)
        if getattr(image, "n_frames", 1) > 1:
            raise UploadRejected("Animated images are not supported; upload a still photo.", "animated")
        try:
            if image.format == "JPEG" and max(width, height) > working_max_side:
                # Decode at a reduced DCT scale: still a decode of the whole stream, with
                # memory bounded by the working size rather than the camera's.
                image.draft("RGB", (working_max_side, working_max_side))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels(_declared_pixels(exc), max_pixels) from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise UploadRejected(
                "This image is damaged or incomplete and could not be read to the end. Export it again and re-upload.",
                "damaged_image",
            ) from None

    working = _working_copy(image, working_max_side)
    buffer = io.BytesIO()
    working.save(buffer, format="PNG", compress_level=1)
    working_png = buffer.getvalue()
    return AcceptedImage(
        format=declared,
        sha256=sha256,
        size_bytes=size_bytes,
        original_width=width,
        original_height=height,
        working_png=working_png,
        working_sha256=hashlib.sha256(working_png).hexdigest(),
        width=working.width,
        height=working.height,
        has_alpha=working.mode == "RGBA",
    )


def _working_copy(image: Image.Image, max_side: int) -> Image.Image:
    """Upright, 8-bit RGB or RGBA, long side at most max_side."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    upright = ImageOps.exif_transpose(image)
    converted = upright.convert("RGBA" if has_alpha else "RGB")
    if has_alpha and converted.getextrema()[3][0] == 255:
        converted = converted.convert("RGB")  # an alpha channel that is opaque everywhere carries nothing
    if max(converted.size) > max_side:
        converted.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return converted


def decode_mask_png(*, data: bytes, size: tuple[int, int]) -> np.ndarray:
    """Decode an uploaded mask (PNG, white = product) of exactly `size`, or raise UploadRejected."""
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        image.load()
    except Exception:
        raise UploadRejected("The mask must be a PNG image (white = product, black = background).", "invalid_mask") from None
    if image.size != size:
        raise UploadRejected(
            f"The mask is {image.width}×{image.height} px; it must match the photo's {size[0]}×{size[1]} px.", "invalid_mask"
        )
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent = not product, whatever colour the transparent pixels carry.
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    return np.asarray(image.convert("L")) >= 128
