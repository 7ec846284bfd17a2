"""The independent verifier: real assets from `render` pass, every tampering is caught."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from generation.imaging import array_sha256
from generation.lock import PIXEL_IDENTICAL, ProductLayer, SourceRecord
from generation.preflight import CHANNELS
from generation.provenance import encode_png
from generation.render import RenderPlan, render
from generation.staging import PlainBackdrop
from generation.verify import LOCK_KEYWORD, lock_recipe, read_lock_recipe, verify_asset


def _photo(seed: int = 0, size=(120, 90)) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w, h = size
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), bool)
    mask[20:70, 30:90] = True
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue(), rgb, mask


def _assets(original: bytes, rgb: np.ndarray, mask: np.ndarray, channels: tuple[str, ...], colour: dict | None = None):
    layer = ProductLayer(rgb=rgb, alpha=mask.astype(np.float32), mask=mask)
    plan = RenderPlan(
        model="none", backend="backdrop", prompt="", negative_prompt="", seeds=(1,), channels=channels,
        steps=1, guidance=1.0, strength=1.0, scheduler="ddim",
    )
    source = SourceRecord(original_sha256=hashlib.sha256(original).hexdigest(), working_sha256=array_sha256(rgb), colour_conversion=colour)
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return list(render(plan=plan, layer=layer, bbox=bbox, backend=PlainBackdrop((200, 200, 200)), previews=False, source=source))


def _reencode(png: bytes, pixels: np.ndarray, recipe: dict | None = None) -> bytes:
    recipe = recipe or read_lock_recipe(png)
    return encode_png(pixels, xmp="", texts={LOCK_KEYWORD: json.dumps(recipe)})


@pytest.fixture(scope="module")
def photo():
    return _photo()


def test_as_photo_asset_is_identical(photo) -> None:
    original, rgb, mask = photo
    (asset,) = _assets(original, rgb, mask, ("as-photo",))
    verdict = verify_asset(asset.png, original)
    assert verdict.verdict == "identical", verdict.summary()
    assert verdict.locked_pixels == int(mask.sum()) and verdict.changed_pixels == 0
    assert asset.certificate.kind == PIXEL_IDENTICAL


def test_every_channel_names_its_kind_truthfully_and_verifies(photo) -> None:
    original, rgb, mask = photo
    names = ("as-photo", *CHANNELS)
    for asset in _assets(original, rgb, mask, names):
        cert = asset.certificate.to_dict()
        scale = cert["transform"]["scale"]
        # The claim this project exists for: pixel-identical only ever at scale 1.
        assert (cert["kind"] == "pixel-identical") == (scale == 1.0), (asset.channel, cert)
        verdict = verify_asset(asset.png, original)
        expected = "identical" if scale == 1.0 else "resampled-as-declared"
        assert verdict.verdict == expected, (asset.channel, verdict.summary())
        assert verdict.changed_pixels == 0 and verdict.locked_pixels > 0


@pytest.fixture(scope="module")
def resized(photo):
    original, rgb, mask = photo
    (asset,) = _assets(original, rgb, mask, ("square-2048",))
    assert asset.certificate.kind == "resampled"
    return original, asset


@pytest.mark.parametrize("which", ["identical", "resampled"])
def test_one_changed_product_pixel_is_caught(photo, resized, which) -> None:
    original, rgb, mask = photo
    asset = _assets(original, rgb, mask, ("as-photo",))[0] if which == "identical" else resized[1]
    recipe = read_lock_recipe(asset.png)
    pixels = np.array(Image.open(io.BytesIO(asset.png)).convert("RGB"))
    t = recipe["certificate"]["transform"]
    # A pixel well inside the product (the box centre, placed).
    y, x = int(t["dy"] + 45 * t["scale"]), int(t["dx"] + 60 * t["scale"])
    pixels[y, x, 0] ^= 0xFF
    verdict = verify_asset(_reencode(asset.png, pixels, recipe), original)
    assert verdict.verdict == "changed" and verdict.changed_pixels == 1


def test_product_recoloured_by_one_level_is_caught(resized) -> None:
    original, asset = resized
    recipe = read_lock_recipe(asset.png)
    pixels = np.array(Image.open(io.BytesIO(asset.png)).convert("RGB")).astype(np.int16)
    pixels[..., 2] = np.where(pixels[..., 2] < 255, pixels[..., 2] + 1, 254)
    verdict = verify_asset(_reencode(asset.png, pixels.astype(np.uint8), recipe), original)
    assert verdict.verdict == "changed"
    assert verdict.changed_pixels == verdict.locked_pixels and verdict.max_abs_diff == 1


def test_a_shifted_mask_is_caught_even_with_its_hash_updated(photo) -> None:
    original, rgb, mask = photo
    (asset,) = _assets(original, rgb, mask, ("as-photo",))
    recipe = read_lock_recipe(asset.png)
    shifted = np.roll(mask, 3, axis=1)
    forged = json.loads(lock_recipe(certificate=recipe["certificate"], mask=shifted))
    pixels = np.array(Image.open(io.BytesIO(asset.png)).convert("RGB"))
    verdict = verify_asset(_reencode(asset.png, pixels, forged), original)
    assert verdict.verdict == "changed"
    assert any("mask_sha256" in p for p in verdict.problems)
    from generation.lock import mask_sha256

    forged["certificate"]["mask_sha256"] = mask_sha256(shifted)
    verdict = verify_asset(_reencode(asset.png, pixels, forged), original)
    assert verdict.verdict == "changed" and verdict.changed_pixels > 0


def test_a_swapped_original_is_caught(photo) -> None:
    original, rgb, mask = photo
    (asset,) = _assets(original, rgb, mask, ("as-photo",))
    other, _, _ = _photo(seed=1)
    verdict = verify_asset(asset.png, other)
    assert verdict.verdict == "changed"
    assert any("original file" in p for p in verdict.problems)
    assert verdict.changed_pixels > 0


def test_an_asset_without_a_recipe_is_not_verified(photo) -> None:
    original, rgb, _ = photo
    verdict = verify_asset(encode_png(rgb, xmp=""), original)
    assert verdict.verdict == "changed" and "no lock recipe" in verdict.problems[0]


def test_a_photo_with_a_colour_profile_verifies_against_its_srgb_working_copy() -> None:
    """The working copy is converted to sRGB at ingest; the verifier rebuilds that same copy
    from the original's bytes, so a Display P3 photo's as-photo asset is identical, not changed."""
    from generation.decoding import working_copy
    from tests.generation.icc_fixtures import display_p3

    rng = np.random.default_rng(3)
    p3 = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(p3).save(buffer, format="PNG", icc_profile=display_p3())
    original = buffer.getvalue()
    with Image.open(io.BytesIO(original)) as image:
        image.load()
        working, colour = working_copy(image, 4096)
    rgb = np.asarray(working.convert("RGB"))
    assert colour["converted"] and not np.array_equal(rgb, p3)  # the conversion did something
    mask = np.zeros(rgb.shape[:2], bool)
    mask[20:70, 30:90] = True
    (asset,) = _assets(original, rgb, mask, ("as-photo",), colour=colour)
    verdict = verify_asset(asset.png, original)
    assert verdict.verdict == "identical", verdict.summary()
    assert verdict.changed_pixels == 0
    cert = read_lock_recipe(asset.png)["certificate"]
    assert cert["colour_conversion"]["source_profile"] == "Display P3 (test)" and cert["colour_conversion"]["intent"]

    # A certificate that keeps quiet about the conversion, or names another one, is caught.
    (quiet,) = _assets(original, rgb, mask, ("as-photo",))
    verdict = verify_asset(quiet.png, original)
    assert verdict.verdict == "changed" and any("does not say so" in p for p in verdict.problems), verdict.summary()
    (forged,) = _assets(original, rgb, mask, ("as-photo",), colour={**colour, "source_profile": "sRGB IEC61966-2.1"})
    verdict = verify_asset(forged.png, original)
    assert verdict.verdict == "changed" and any("colour conversion" in p for p in verdict.problems), verdict.summary()
