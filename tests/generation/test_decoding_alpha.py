"""A photo with real transparency is its own cutout (issue 11, part 6)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from generation.decoding import alpha_cutout, validate_image


def _accept(image: Image.Image, fmt: str):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    data = buffer.getvalue()
    return validate_image(io.BytesIO(data), size_bytes=len(data), max_bytes=1 << 26, max_pixels=10**8, working_max_side=4096)


def _product() -> np.ndarray:
    rgba = np.zeros((80, 100, 4), np.uint8)
    rgba[..., :3] = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
    rgba[20:60, 30:70, 3] = 255
    return rgba


def test_png_and_webp_transparency_becomes_the_cutout():
    for fmt in ("PNG", "WEBP"):
        accepted = _accept(Image.fromarray(_product(), "RGBA"), fmt)
        working = np.asarray(Image.open(io.BytesIO(accepted.working_png)))
        result = alpha_cutout(working)
        assert result is not None and result.confident, fmt
        assert result.backend == "file-alpha"
        opaque = _product()[..., 3] == 255
        assert not (result.mask & ~opaque).any()  # nothing transparent is locked
        assert result.mask[25:55, 35:65].all()  # the product's inside is
        assert np.array_equal(result.foreground[result.mask], working[..., :3][result.mask])


def test_opaque_alpha_is_no_cutout():
    rgba = _product()
    rgba[..., 3] = 255
    assert alpha_cutout(rgba) is None
