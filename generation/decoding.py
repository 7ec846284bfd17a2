"""Decoding rules for images that come from outside: the rules every photo passes before
anything is stored (content allowlist, caps, full decode, EXIF upright), and touch-up masks.

Plain functions over bytes and file objects: the upload service
(`catalog.services.photo_upload`), the touch-up job and `stage` all decode through them.
`image_header_check` holds every rule that needs no pixel decoded, `image_decode` the full
decode and working copy, `validate_image` both: the upload request runs only the first for a
large photo and a cpu worker runs `validate_image` on it later (`catalog.work.photo_decode_make`)."""
from __future__ import annotations

import hashlib
import io
import re
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

# HEIC/HEIF (phones) through pillow-heif's libheif, registered once here as Pillow's "HEIF"
# format; AVIF is Pillow's own (PIL.features.check("avif")).
pillow_heif.register_heif_opener()

# Allowlisted by content: the first bytes decide, never the name or the Content-Type.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)
# ISO base media files (HEIF, AVIF) start with an ftyp box: size, "ftyp", the major brand.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "AVIF"}
NOT_AN_IMAGE = "This file is not a JPEG, PNG, WebP, HEIC or AVIF image."
UNREADABLE_HEIF = (
    "This {kind} file could not be read: it may be damaged, or hold only an image sequence, a depth map or "
    "another part Vitrine does not read. Export it as a single still photo (HEIC or JPEG) and upload it again."
)
CHUNK = 1024 * 1024
# Metadata budgets, the defaults of validate_image's limits. Pillow reads a PNG colour profile
# or text chunk only up to PngImagePlugin.MAX_TEXT_CHUNK (1 MiB) and raises past it, so a
# larger profile could not be handled end to end: it would be refused as "not an image" in a
# PNG, and in a JPEG carried into the working PNG, which every later step then fails to open.
DEFAULT_MAX_ICC_BYTES = PngImagePlugin.MAX_TEXT_CHUNK
DEFAULT_MAX_METADATA_BYTES = PngImagePlugin.MAX_TEXT_CHUNK


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
    # How the pixels reached sRGB, for the lock certificate: source_profile (its description,
    # or None when the file carried none), profile_sha256, intent, converted.
    colour: dict


def _megapixels(pixels: int) -> str:
    mp = pixels / 1_000_000
    return f"{mp:.0f}" if mp >= 10 else f"{mp:.1f}".rstrip("0").rstrip(".")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def _exact(size: int) -> str:
    # Bytes, not rounded megabytes: "50 MB; the limit is 50 MB" for one byte over tells the
    # merchant nothing.
    return f"{size:,} byte" if size == 1 else f"{size:,} bytes"


def too_large_text(size_bytes: int, max_bytes: int, *, what: str = "This file") -> str:
    """'This file is 52,428,801 bytes; the limit is 52,428,800 bytes (50 MB).'"""
    return f"{what} is {_exact(size_bytes)}; the limit is {_exact(max_bytes)} ({_megabytes(max_bytes)} MB)."


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
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            # A generic brand (mif1, msf1) is AVIF when the compatible brands after it say so.
            size = int.from_bytes(head[:4], "big")
            compatible = head[16:size] if 16 < size else b""
            return "AVIF" if brand in (b"mif1", b"msf1") and any(compatible[i : i + 4] in _AVIF_BRANDS for i in range(0, len(compatible) - 3, 4)) else "HEIF"
    return None


def sha256_of(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageHeader:
    """What an upload's header says, once every rule that needs no pixel decoded has passed."""

    format: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    mode: str = "RGB"  # Pillow's mode as the header declares it
    transparency: bool = False  # a palette or greyscale image with a transparent colour (tRNS)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decode_pixels(self) -> int:
        """The pixels, weighted by what decoding them and making the working copy costs in
        memory relative to 8-bit RGB (measured at 16 MP: RGB ≈ 98 MB, RGBA ≈ 132 MB, 16-bit
        greyscale ≈ 139 MB): 1.5× for an image with alpha, CMYK or more than 8 bits."""
        heavy = self.mode not in ("1", "L", "P", "RGB", "YCbCr") or self.transparency
        return self.pixels * 3 // 2 if heavy else self.pixels


DAMAGED = "This image is damaged or incomplete and could not be read to the end. Export it again and re-upload."


@contextmanager
def _pixel_cap(max_pixels: int):
    with warnings.catch_warnings():
        # Pillow only warns between its pixel limit and twice that; a warning is a bomb too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Pillow checks the declared size against this limit while parsing the header, before
        # any pixel is allocated; the cap and Pillow's bomb guard are one number.
        Image.MAX_IMAGE_PIXELS = max_pixels
        yield


def _open_header(stream: BinaryIO, *, format: str, max_pixels: int) -> Image.Image:
    """Open (parse the header of) an image already sniffed as `format`; decodes no pixel.
    Called under _pixel_cap."""
    stream.seek(0)
    try:
        image = Image.open(stream, formats=sorted(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(_declared_pixels(exc), max_pixels) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, RuntimeError):
        if format in ("HEIF", "AVIF"):  # the signature says HEIF/AVIF and libheif/libavif refused it
            raise UploadRejected(UNREADABLE_HEIF.format(kind="HEIC/HEIF" if format == "HEIF" else "AVIF"), "unsupported_type") from None
        raise UploadRejected(NOT_AN_IMAGE, "unsupported_type") from None
    if image.format != format:
        raise UploadRejected(NOT_AN_IMAGE, "unsupported_type")
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels(width * height, max_pixels)
    if format == "HEIF" and getattr(image, "n_frames", 1) > 1:
        raise UploadRejected(
            f"This HEIC file holds {image.n_frames} images (a burst, a Live Photo or a collection); export the one photo you want and upload it.",
            "animated",
        )
    if getattr(image, "n_frames", 1) > 1:
        raise UploadRejected("Animated images are not supported; upload a still photo.", "animated")
    return image


def image_header_check(
    stream: BinaryIO,
    *,
    size_bytes: int,
    max_bytes: int,
    max_pixels: int,
    max_icc_bytes: int = DEFAULT_MAX_ICC_BYTES,
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES,
) -> ImageHeader:
    """Every upload rule that needs no pixel decoded, or raise UploadRejected: size, content
    signature, metadata budgets (colour profile, EXIF, XMP, text; see metadata_check), the
    declared dimensions and frame count from the header. Reads the stream in chunks (for the
    hash) and seeks over pixel data: its memory does not grow with the image.

    `image_decode` (or `validate_image`, which runs both) does the rest."""
    if size_bytes == 0:
        raise UploadRejected("This file is empty (0 bytes).", "empty_file")
    if size_bytes > max_bytes:
        raise UploadRejected(
            too_large_text(size_bytes, max_bytes), "file_too_large"
        )
    stream.seek(0)
    head = stream.read(64)  # HEIF/AVIF: the ftyp box's compatible brands too
    declared = sniff_format(head)
    if declared is None:
        raise UploadRejected(NOT_AN_IMAGE, "unsupported_type")
    # Before Pillow: it reads every marker and chunk of the header into memory at open.
    metadata_check(stream, format=declared, size_bytes=size_bytes, max_icc_bytes=max_icc_bytes, max_metadata_bytes=max_metadata_bytes)
    sha256 = sha256_of(stream)
    with _pixel_cap(max_pixels):
        image = _open_header(stream, format=declared, max_pixels=max_pixels)
        width, height = image.size
        mode, transparency = image.mode, "transparency" in image.info
    stream.seek(0)
    return ImageHeader(
        format=declared, sha256=sha256, size_bytes=size_bytes, width=width, height=height, mode=mode, transparency=transparency
    )


def image_decode(stream: BinaryIO, *, header: ImageHeader, max_pixels: int, working_max_side: int) -> AcceptedImage:
    """Fully decode an image whose header passed `image_header_check` (on this same stream)
    and make its working copy, or raise UploadRejected (damaged pixels, an unreadable colour
    profile). Pillow decodes from the stream itself, so a file Django spooled to disk is never
    read whole into memory; the decoded pixels are, and so is the working copy."""
    with _pixel_cap(max_pixels):
        image = _open_header(stream, format=header.format, max_pixels=max_pixels)
        width, height = image.size
        try:
            if image.format == "JPEG" and max(width, height) > working_max_side:
                # Decode at a reduced DCT scale: still a decode of the whole stream, with
                # memory bounded by the working size rather than the camera's.
                image.draft("RGB", (working_max_side, working_max_side))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels(_declared_pixels(exc), max_pixels) from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise UploadRejected(DAMAGED, "damaged_image") from None

    working, colour = working_copy(image, working_max_side)
    buffer = io.BytesIO()
    # Untagged: the working copy is sRGB, and every later step (and the delivered asset) reads it so.
    working.save(buffer, format="PNG", compress_level=1, icc_profile=None)
    working_png = buffer.getvalue()
    return AcceptedImage(
        format=header.format,
        sha256=header.sha256,
        size_bytes=header.size_bytes,
        original_width=width,
        original_height=height,
        working_png=working_png,
        working_sha256=hashlib.sha256(working_png).hexdigest(),
        width=working.width,
        height=working.height,
        has_alpha=working.mode == "RGBA",
        colour=colour,
    )


def validate_image(
    stream: BinaryIO,
    *,
    size_bytes: int,
    max_bytes: int,
    max_pixels: int,
    working_max_side: int,
    max_icc_bytes: int = DEFAULT_MAX_ICC_BYTES,
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES,
) -> AcceptedImage:
    """Check and fully decode one uploaded image, or raise UploadRejected: the header rules
    (`image_header_check`), then the full decode and working copy (`image_decode`)."""
    header = image_header_check(
        stream, size_bytes=size_bytes, max_bytes=max_bytes, max_pixels=max_pixels,
        max_icc_bytes=max_icc_bytes, max_metadata_bytes=max_metadata_bytes,
    )
    return image_decode(stream, header=header, max_pixels=max_pixels, working_max_side=working_max_side)


# Metadata budgets -----------------------------------------------------------------------

_KIND_WORDS = {
    "icc": "colour profile (ICC)",
    "exif": "EXIF metadata",
    "xmp": "XMP metadata",
    "text": "text metadata (PNG tEXt, zTXt and iTXt chunks)",
    "comment": "comment (JPEG COM segments)",
}
_KIND_FIX = {
    "icc": "Convert it to sRGB, or export it without an embedded colour profile, and upload it again.",
}
_XMP_KEYS = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")


def metadata_check(stream: BinaryIO, *, format: str, size_bytes: int, max_icc_bytes: int, max_metadata_bytes: int) -> None:
    """Refuse an image whose colour profile, EXIF, XMP or text metadata is over its budget,
    naming which and how large, or raise nothing.

    Walks the container (JPEG markers up to the first scan, PNG chunks, WebP RIFF chunks) by
    its length fields, seeking over pixel data: no pixel is decoded and no segment is held
    whole in memory. Compressed PNG profiles and text are inflated in pieces and counted, and
    inflating stops just past the budget. A structure that does not parse is left to Pillow,
    which refuses it as damaged. Every kind is measured the same way in all three formats."""
    sizes = {kind: 0 for kind in _KIND_WORDS}
    partial: set[str] = set()  # kinds whose inflating stopped at the budget
    limits = {"icc": max_icc_bytes}
    stream.seek(0)
    try:
        if format == "JPEG":
            _jpeg_metadata(stream, sizes, size_bytes)
        elif format == "PNG":
            _png_metadata(stream, sizes, partial, size_bytes, limit=max(max_icc_bytes, max_metadata_bytes))
        elif format == "WEBP":
            _webp_metadata(stream, sizes, size_bytes)
        elif format in ("HEIF", "AVIF"):
            _bmff_metadata(stream, sizes)
    finally:
        stream.seek(0)
    for kind, size in sizes.items():
        limit = limits.get(kind, max_metadata_bytes)
        if size > limit:
            fix = _KIND_FIX.get(kind, "Export the image without metadata (most editors have a “strip metadata” option) and upload it again.")
            # A compressed profile or text is inflated only just past the budget: its whole
            # size is unknown, and a made-up figure would mislead.
            measured = f"is more than {_exact(limit)}" if kind in partial else f"is {_exact(size)}"
            raise UploadRejected(
                f"This image's {_KIND_WORDS[kind]} {measured}; the limit is {_exact(limit)}. {fix}",
                "icc_too_large" if kind == "icc" else "metadata_too_large",
            )


def _jpeg_metadata(stream: BinaryIO, sizes: dict, size_bytes: int) -> None:
    pos = 2  # after SOI
    stream.seek(pos)
    while pos + 4 <= size_bytes:
        head = stream.read(2)
        if len(head) < 2 or head[0] != 0xFF:
            return
        marker = head[1]
        pos += 2
        if marker == 0xFF:  # fill byte: the marker is the next one
            pos -= 1
            stream.seek(pos)
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: metadata comes before
            return
        raw = stream.read(2)
        if len(raw) < 2:
            return
        length = int.from_bytes(raw, "big") - 2
        if length < 0:
            return
        present = max(0, min(length, size_bytes - pos - 2))
        prefix = stream.read(min(present, 36))
        if marker == 0xE2 and prefix.startswith(b"ICC_PROFILE\x00"):
            sizes["icc"] += max(0, present - 14)  # the 12-byte name and the 2-byte sequence numbers
        elif marker == 0xE1 and prefix.startswith(b"Exif\x00\x00"):
            sizes["exif"] += present - 6
        elif marker == 0xE1 and prefix.startswith(_XMP_KEYS):
            key = next(k for k in _XMP_KEYS if prefix.startswith(k))
            sizes["xmp"] += present - len(key)
        elif marker == 0xFE:
            sizes["comment"] += present
        pos += 2 + length
        stream.seek(pos)


def _inflated_size(stream: BinaryIO, length: int, *, limit: int) -> int:
    """The size `length` bytes of zlib data inflate to; counting stops at limit + 1."""
    inflater = zlib.decompressobj()
    total = 0
    remaining = length
    try:
        while remaining > 0 and total <= limit:
            piece = stream.read(min(remaining, 64 * 1024))
            if not piece:
                break
            remaining -= len(piece)
            data = piece
            while data and total <= limit:
                total += len(inflater.decompress(data, limit + 1 - total))
                data = inflater.unconsumed_tail
    except zlib.error:
        pass  # damaged: Pillow says so
    return total


def _png_metadata(stream: BinaryIO, sizes: dict, partial: set, size_bytes: int, *, limit: int) -> None:
    def inflate(target: str, length: int) -> None:
        size = _inflated_size(stream, length, limit=limit)
        if size > limit:
            partial.add(target)
        sizes[target] += size

    pos = 8
    stream.seek(pos)
    while pos + 12 <= size_bytes:
        head = stream.read(8)
        if len(head) < 8:
            return
        length = int.from_bytes(head[:4], "big")
        kind = head[4:]
        if length > 0x7FFFFFFF:  # the PNG limit; a bigger one is a lie
            return
        present = max(0, min(length, size_bytes - pos - 8))
        if kind in (b"iCCP", b"zTXt", b"iTXt"):
            prefix = stream.read(min(present, 79 + 1))
            keyword, nul, rest = prefix.partition(b"\x00")
            if not nul:
                return
            start = len(keyword) + 1
            if kind == b"iTXt":
                # keyword, flag, method, language\0, translated keyword\0, then the text
                full = prefix + stream.read(min(present - len(prefix), 4096))
                flag = full[start : start + 1]
                tail = full[start + 2 :]
                language, _, tail = tail.partition(b"\x00")
                translated, _, _ = tail.partition(b"\x00")
                start += 2 + len(language) + 1 + len(translated) + 1
                target = "xmp" if keyword == b"XML:com.adobe.xmp" else "text"
                if flag == b"\x01":
                    stream.seek(pos + 8 + start)
                    inflate(target, present - start)
                else:
                    sizes[target] += max(0, present - start)
            else:
                start += 1  # the compression method byte
                stream.seek(pos + 8 + start)
                inflate("icc" if kind == b"iCCP" else "text", present - start)
        elif kind == b"tEXt":
            sizes["text"] += present
        elif kind == b"eXIf":
            sizes["exif"] += present
        elif kind == b"IEND":
            return
        pos += 12 + length
        stream.seek(pos)


def _webp_metadata(stream: BinaryIO, sizes: dict, size_bytes: int) -> None:
    pos = 12  # after "RIFF", the size, "WEBP"
    stream.seek(pos)
    while pos + 8 <= size_bytes:
        head = stream.read(8)
        if len(head) < 8:
            return
        length = int.from_bytes(head[4:], "little")
        present = max(0, min(length, size_bytes - pos - 8))
        target = {b"ICCP": "icc", b"EXIF": "exif", b"XMP ": "xmp"}.get(head[:4])
        if target is not None:
            sizes[target] += present
        pos += 8 + length + (length & 1)  # chunks are padded to an even size
        stream.seek(pos)


def _bmff_metadata(stream: BinaryIO, sizes: dict) -> None:
    """HEIF/AVIF keep the profile in an ipco property and EXIF/XMP as items located by iloc:
    measured from what libheif/libavif read at open (the file is within the upload cap, and no
    pixel is decoded). A file they cannot open is left to the decode, which refuses it in words."""
    try:
        with Image.open(stream, formats=["HEIF", "AVIF"]) as image:
            info = dict(image.info)
    except Exception:  # noqa: BLE001 - any refusal here is reported by _open_header
        return
    for key, target in (("icc_profile", "icc"), ("exif", "exif"), ("xmp", "xmp")):
        value = info.get(key)
        if isinstance(value, (bytes, bytearray, str)):
            sizes[target] += len(value)


# Relative colorimetric: a product colour inside sRGB comes through exactly (what the lock
# promises); only colours outside sRGB are clipped to its gamut edge. The matrix profiles cameras
# and phones embed (Display P3, Adobe RGB) have no perceptual tables, so perceptual would be the
# same transform; it is the fallback for a LUT profile that lacks a colorimetric one.
_INTENTS = (("relative", ImageCms.Intent.RELATIVE_COLORIMETRIC), ("perceptual", ImageCms.Intent.PERCEPTUAL))
_SRGB = ImageCms.createProfile("sRGB")
UNREADABLE_PROFILE = "This image's colour profile (ICC) could not be read. Convert it to sRGB, or export it without an embedded colour profile, and upload it again."


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) greyscale scaled to 8 bits; Pillow's own convert clips at 255."""
    if image.mode not in ("I;16", "I;16B", "I;16L", "I"):
        return image
    # Integer arithmetic, in place: round(v × 255 / 65535) is (v + 128) // 257 exactly (65535 =
    # 255 × 257, and v / 257 is never a tie), and a float64 copy would cost 8 bytes a pixel.
    values = np.array(image, dtype=np.int32)
    np.clip(values, 0, 65535, out=values)
    values += 128
    values //= 257
    return Image.fromarray(values.astype(np.uint8))


def to_srgb(image: Image.Image, icc: bytes | None, *, alpha: bool) -> tuple[Image.Image, dict]:
    """``image`` in 8-bit sRGB (RGBA when ``alpha``), converted from its embedded profile with
    littleCMS, and the record of what was done; raises UploadRejected for a profile it cannot read."""
    mode = "RGBA" if alpha else "RGB"
    if not icc:
        # Already in that mode: the image itself (convert would copy every pixel, ≈ 48 MB at 16 MP).
        converted = image if image.mode == mode else image.convert(mode)
        return converted, {"source_profile": None, "profile_sha256": None, "intent": None, "converted": False}
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(source).strip() or None
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        raise UploadRejected(UNREADABLE_PROFILE, "invalid_icc") from None
    if image.mode not in ("RGB", "RGBA", "L", "CMYK"):
        image = image.convert("RGBA" if alpha else "RGB")
    in_mode = image.mode  # L only without alpha: LA was made RGBA above
    for name, intent in _INTENTS:
        try:
            transform = ImageCms.buildTransform(source, _SRGB, in_mode, mode if in_mode != "L" else "RGB", intent)
            break
        except ImageCms.PyCMSError:
            continue
    else:
        raise UploadRejected(UNREADABLE_PROFILE, "invalid_icc")
    converted = ImageCms.applyTransform(image, transform)
    if converted.mode != mode:
        converted = converted.convert(mode)
    record = {
        "source_profile": description,
        "profile_sha256": hashlib.sha256(icc).hexdigest(),
        "intent": name,
        "converted": True,
    }
    return converted, record


def working_copy(image: Image.Image, max_side: int) -> tuple[Image.Image, dict]:
    """The working copy every later step reads: upright, 8-bit sRGB (RGB, or RGBA where the
    file has real transparency), long side at most max_side; and the colour record of to_srgb."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    icc = image.info.get("icc_profile") or None
    # No full-size copy where nothing changes (exif_transpose copies an upright image, and
    # to_srgb returns an image already in its mode as it is): each copy of a 16 MP photo is
    # ≈ 48 MB more in whichever process decodes it.
    oriented = image.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9)
    upright = _eight_bit(ImageOps.exif_transpose(image) if oriented else image)
    converted, colour = to_srgb(upright, icc, alpha=has_alpha)
    if has_alpha and converted.getextrema()[3][0] == 255:
        converted = converted.convert("RGB")  # an alpha channel that is opaque everywhere carries nothing
    if max(converted.size) > max_side:
        if converted is image:
            converted = image.copy()  # thumbnail() resizes in place; the caller's image stays as it was
        converted.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return converted, colour


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


ALPHA_BACKEND = "file-alpha"
ALPHA_VERSION = "1"


def alpha_cutout(rgba: np.ndarray):
    """The cutout a file's own transparency already is (``uint8 (H, W, 4)``, the working copy of
    a PNG/WebP with real alpha): a SegmentationResult with the file's alpha as the matte, confident
    by construction; None when the alpha is opaque everywhere (nothing to use)."""
    from generation.segmentation.base import result_from_alpha

    alpha = rgba[..., 3].astype(np.float32) / 255.0
    if alpha.min() == 1.0:
        return None
    rgb = np.ascontiguousarray(rgba[..., :3])
    return result_from_alpha(image=rgb, alpha=alpha, foreground=rgb, edge_confidence=1.0, backend=ALPHA_BACKEND, version=ALPHA_VERSION)
