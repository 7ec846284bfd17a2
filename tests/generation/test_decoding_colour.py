"""Colour management and 16-bit inputs at ingest (issue 11, parts 5-6)."""
from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from generation.colour import delta_e_2000, srgb_to_lab
from generation.decoding import UploadRejected, validate_image
from tests.generation.icc_fixtures import adobe_rgb, display_p3


def _validate(data: bytes):
    return validate_image(io.BytesIO(data), size_bytes=len(data), max_bytes=50 << 20, max_pixels=50_000_000, working_max_side=4096)


def _png(image: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def _photo(seed: int = 0) -> np.ndarray:
    # Product-like colours well inside sRGB once converted: mid saturation, mid lightness.
    rng = np.random.default_rng(seed)
    return rng.integers(40, 200, size=(48, 64, 3), dtype=np.uint8)


def _encode_in(pixels: np.ndarray, icc: bytes) -> np.ndarray:
    """sRGB pixels as a camera tagging ``icc`` would store them (8-bit, so quantised)."""
    target = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    transform = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), target, "RGB", "RGB", ImageCms.Intent.RELATIVE_COLORIMETRIC)
    return np.asarray(ImageCms.applyTransform(Image.fromarray(pixels), transform))


@pytest.mark.parametrize("make_profile", [display_p3, adobe_rgb], ids=["display-p3", "adobe-rgb"])
def test_wide_gamut_photo_is_converted_to_srgb_within_delta_e_1(make_profile):
    icc = make_profile()
    product = _photo()  # the colours as seen, in sRGB
    pixels = _encode_in(product, icc)
    accepted = _validate(_png(Image.fromarray(pixels), icc_profile=icc))
    working = Image.open(io.BytesIO(accepted.working_png))
    assert "icc_profile" not in working.info  # untagged = sRGB
    out = np.asarray(working.convert("RGB"))
    assert not np.array_equal(out, pixels)  # the numbers moved: the profile was applied, not dropped
    delta = delta_e_2000(srgb_to_lab(product), srgb_to_lab(out))
    assert float(delta.mean()) <= 0.25
    assert float(np.percentile(delta, 99)) <= 1.0  # per pixel, after two 8-bit roundings (camera, ingest)
    assert accepted.colour == {
        "source_profile": ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip(),
        "profile_sha256": hashlib.sha256(icc).hexdigest(),
        "intent": "relative",
        "converted": True,
    }


def test_dropping_the_p3_profile_would_shift_colour_visibly():
    # The measurement above can fail: reading P3 numbers as sRGB is off by far more than 1.
    product = _photo(1)
    pixels = _encode_in(product, display_p3())
    delta = delta_e_2000(srgb_to_lab(product), srgb_to_lab(pixels))
    assert float(np.mean(delta)) > 2.0


def test_untagged_photo_is_left_alone_and_recorded_as_such():
    pixels = _photo(2)
    accepted = _validate(_png(Image.fromarray(pixels)))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(accepted.working_png))), pixels)
    assert accepted.colour == {"source_profile": None, "profile_sha256": None, "intent": None, "converted": False}


def test_transparency_survives_the_colour_conversion():
    pixels = _photo(3)
    alpha = np.zeros(pixels.shape[:2], np.uint8)
    alpha[10:30, 10:40] = 255
    rgba = np.dstack([pixels, alpha])
    accepted = _validate(_png(Image.fromarray(rgba, "RGBA"), icc_profile=display_p3()))
    working = Image.open(io.BytesIO(accepted.working_png))
    assert accepted.has_alpha and working.mode == "RGBA"
    assert np.array_equal(np.asarray(working)[..., 3], alpha)


def test_unreadable_profile_is_refused_with_a_clear_message():
    data = _png(Image.fromarray(_photo(4)), icc_profile=b"not a profile" * 20)
    with pytest.raises(UploadRejected) as caught:
        _validate(data)
    assert caught.value.code == "invalid_icc"
    assert "colour profile" in caught.value.message


def test_16_bit_grey_ramp_is_scaled_not_clipped():
    levels = np.arange(256, dtype=np.uint16)
    ramp = np.tile(levels * 257, (4, 1))  # 8-bit level k is 16-bit k * 257
    ramp[0, :4] = [65535, 1000, 32767, 128]
    accepted = _validate(_png(Image.fromarray(ramp)))
    out = np.asarray(Image.open(io.BytesIO(accepted.working_png)).convert("L"))
    assert np.array_equal(out[1], levels.astype(np.uint8))
    assert out[0, :4].tolist() == [255, 4, 127, 0]


def test_16_bit_rgb_png_keeps_its_levels():
    levels = np.arange(256, dtype=np.uint16) * 257
    rgb16 = np.stack([np.tile(levels, (2, 1)), np.tile(levels[::-1], (2, 1)), np.full((2, 256), 128 * 257, np.uint16)], axis=-1)
    # Pillow writes no 16-bit RGB; a PNG encoder in numpy terms is short enough to do by hand.
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb16)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 2, 16, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    out = np.asarray(Image.open(io.BytesIO(_validate(data).working_png)).convert("RGB"))
    assert np.array_equal(out[0, :, 0], np.arange(256, dtype=np.uint8))
    assert np.array_equal(out[0, :, 1], np.arange(256, dtype=np.uint8)[::-1])
    assert (out[..., 2] == 128).all()
