"""HEIC/HEIF (pillow-heif) and AVIF (Pillow) photos, made here, through the decoding rules:
accepted by content, upright by their orientation, converted to sRGB from their profile, and
verifiable from the original file; what stays unsupported is refused in words."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image, features

from generation.decoding import UploadRejected, sniff_format, validate_image
from generation.imaging import array_sha256
from generation.lock import ProductLayer, SourceRecord
from generation.render import RenderPlan, render
from generation.staging import PlainBackdrop
from generation.verify import verify_asset
from tests.generation.icc_fixtures import display_p3

LIMITS = dict(max_bytes=50 * 1024 * 1024, max_pixels=100_000_000, working_max_side=4096)


def _split(size=(80, 60)) -> Image.Image:
    """Left half red, right half blue: which corner is which shows the orientation."""
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (230, 20, 20)
    arr[:, w // 2 :] = (20, 20, 230)
    return Image.fromarray(arr)


def encoded(fmt: str, image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **{"quality": 95, **kwargs})
    return buffer.getvalue()


def accept(data: bytes, **limits):
    return validate_image(io.BytesIO(data), size_bytes=len(data), **{**LIMITS, **limits})


def refused(data: bytes, **limits) -> UploadRejected:
    with pytest.raises(UploadRejected) as caught:
        accept(data, **limits)
    return caught.value


def test_this_machine_reads_and_writes_both() -> None:
    assert features.check("avif")
    assert pillow_heif.libheif_info()["decoders"]  # libde265 for HEVC


@pytest.mark.parametrize(("fmt", "format_name"), [("HEIF", "HEIF"), ("AVIF", "AVIF")])
def test_accepted_by_content_and_made_upright(fmt, format_name) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display: the red left half becomes the top
    data = encoded(fmt, _split(), exif=exif.tobytes())
    assert sniff_format(data[:64]) == format_name

    accepted = accept(data)
    assert accepted.format == format_name and accepted.sha256 == hashlib.sha256(data).hexdigest()
    assert (accepted.width, accepted.height) == (60, 80)
    working = np.asarray(Image.open(io.BytesIO(accepted.working_png)))
    assert working.shape == (80, 60, 3)
    top, bottom = working[2, 30].astype(int), working[-3, 30].astype(int)
    assert top[0] > 180 and top[2] < 60, top  # red on top
    assert bottom[2] > 180 and bottom[0] < 60, bottom  # blue at the bottom
    assert accepted.colour["converted"] is False  # no profile: read as sRGB


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_a_display_p3_profile_is_converted_to_srgb(fmt) -> None:
    data = encoded(fmt, Image.new("RGB", (32, 32), (0, 200, 0)), icc_profile=display_p3())
    accepted = accept(data)
    assert accepted.colour["converted"] is True and "P3" in accepted.colour["source_profile"]
    r, g, b = np.asarray(Image.open(io.BytesIO(accepted.working_png)))[16, 16].astype(int)
    # P3 green is outside sRGB: relative colorimetric clips it to sRGB's own green edge.
    assert g > 200 and r < 40 and b < 40, (r, g, b)


def test_the_profile_budget_applies_to_heic_too() -> None:
    data = encoded("HEIF", Image.new("RGB", (16, 16), (10, 20, 30)), icc_profile=display_p3())
    rejected = refused(data, max_icc_bytes=100)
    assert rejected.code == "icc_too_large"
    assert rejected.message.startswith("This image's colour profile (ICC) is ")


def test_sniffing_reads_the_brands() -> None:
    def ftyp(major: bytes, *compatible: bytes) -> bytes:
        body = major + b"\0\0\0\0" + b"".join(compatible)
        return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body
    assert sniff_format(ftyp(b"heic", b"mif1", b"heic")) == "HEIF"
    assert sniff_format(ftyp(b"mif1", b"heic")) == "HEIF"
    assert sniff_format(ftyp(b"avif", b"mif1")) == "AVIF"
    assert sniff_format(ftyp(b"mif1", b"miaf", b"avif")) == "AVIF"
    assert sniff_format(ftyp(b"isom", b"mp41")) is None  # an MP4 video is not a photo


def test_a_heic_with_several_images_is_refused_in_words() -> None:
    heif = pillow_heif.from_pillow(_split())
    heif.add_from_pillow(_split((40, 30)))
    buffer = io.BytesIO()
    heif.save(buffer)
    rejected = refused(buffer.getvalue())
    assert rejected.code == "animated"
    assert rejected.message == "This HEIC file holds 2 images (a burst, a Live Photo or a collection); export the one photo you want and upload it."


def test_an_animated_avif_is_refused() -> None:
    buffer = io.BytesIO()
    _split().save(buffer, format="AVIF", save_all=True, append_images=[_split().rotate(180)], duration=100)
    rejected = refused(buffer.getvalue())
    assert (rejected.code, rejected.message) == ("animated", "Animated images are not supported; upload a still photo.")


@pytest.mark.parametrize("cut", ["half", "header-only"])
def test_a_heic_libheif_cannot_read_is_refused_in_words(cut) -> None:
    data = encoded("HEIF", _split())
    broken = data[: len(data) // 2] if cut == "half" else data[:40] + b"\0" * 400
    rejected = refused(broken)
    assert rejected.code == "unsupported_type"
    assert rejected.message.startswith("This HEIC/HEIF file could not be read: it may be damaged, or hold only an image sequence")


def test_a_heic_product_verifies_against_the_heic_file() -> None:
    """The chain from the phone's file: the working copy decoded from the HEIC, locked into a
    scene, and the independent verifier recomputes it from the HEIC bytes alone."""
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    original = encoded("HEIF", photo)
    accepted = accept(original)
    rgb = np.asarray(Image.open(io.BytesIO(accepted.working_png)).convert("RGB"))
    mask = np.zeros(rgb.shape[:2], bool)
    mask[20:70, 30:90] = True
    layer = ProductLayer(rgb=rgb, alpha=mask.astype(np.float32), mask=mask)
    plan = RenderPlan(model="none", backend="backdrop", prompt="", negative_prompt="", seeds=(1,), channels=("as-photo", "square-2048"),
                      steps=1, guidance=1.0, strength=1.0, scheduler="ddim")
    source = SourceRecord(original_sha256=accepted.sha256, working_sha256=array_sha256(rgb), working_max_side=LIMITS["working_max_side"])
    assets = list(render(plan=plan, layer=layer, bbox=(30, 20, 90, 70), backend=PlainBackdrop((200, 200, 200)), previews=False, source=source))
    assert [verify_asset(a.png, original).verdict for a in assets] == ["identical", "resampled-as-declared"]
    other = encoded("HEIF", photo, quality=60)  # the same photo, encoded again: other pixels
    assert verify_asset(assets[0].png, other).verdict == "changed"
