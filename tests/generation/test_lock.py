"""The pixel lock: property tests of the invariant, and proof that only the lock keeps it."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from generation.imaging import array_sha256
from generation.lock import (
    STUDIO_GREY,
    WHITE,
    LockCertificate,
    LockViolation,
    ProductLayer,
    Transform,
    backdrop_fill,
    composite_locked,
    contact_shadow,
    estimate_backdrop_color,
    place_layer,
    verify_lock,
)
from generation.segmentation.base import result_from_alpha

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def layers(draw: st.DrawFn) -> ProductLayer:
    h = draw(st.integers(1, 24))
    w = draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = rng.random((h, w), dtype=np.float32)
    # Masks are blobs plus speckle, like real cutouts; alpha is 1 under the mask.
    mask = rng.random((h, w)) < draw(st.floats(0.0, 1.0))
    alpha[mask] = 1.0
    return ProductLayer(rgb=rgb, alpha=alpha, mask=mask)


transforms = st.builds(
    Transform,
    scale=st.one_of(st.just(1.0), st.floats(0.25, 3.0)),
    dx=st.integers(-30, 30),
    dy=st.integers(-30, 30),
)


@st.composite
def scenes(draw: st.DrawFn) -> np.ndarray:
    h = draw(st.integers(1, 40))
    w = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@SETTINGS
@given(layer=layers(), transform=transforms, scene=scenes(), with_shadow=st.booleans())
def test_composite_keeps_every_locked_pixel(
    layer: ProductLayer, transform: Transform, scene: np.ndarray, with_shadow: bool
) -> None:
    placed = place_layer(layer, transform, (scene.shape[1], scene.shape[0]))
    shadow = contact_shadow(mask=placed.mask) if with_shadow else None

    out, cert = composite_locked(layer=layer, scene=scene, transform=transform, shadow=shadow)

    assert cert.changed_pixels == 0
    assert cert.max_abs_diff == 0
    assert cert.passed is True
    assert cert.locked_pixels == int(placed.mask.sum())
    assert np.array_equal(out[placed.mask], placed.rgb[placed.mask])
    assert cert.image_sha256 == array_sha256(out)
    assert verify_lock(image=out, layer=layer, transform=transform) == cert


@SETTINGS
@given(layer=layers(), dx=st.integers(-30, 30), dy=st.integers(-30, 30), scene=scenes())
def test_unscaled_placement_locks_exactly_the_mask_pixels_that_land_on_the_canvas(
    layer: ProductLayer, dx: int, dy: int, scene: np.ndarray
) -> None:
    ys, xs = np.nonzero(layer.mask)
    cy, cx = ys + dy, xs + dx
    inside = (cy >= 0) & (cy < scene.shape[0]) & (cx >= 0) & (cx < scene.shape[1])

    out, cert = composite_locked(layer=layer, scene=scene, transform=Transform(1.0, dx, dy))

    assert cert.locked_pixels == int(inside.sum())
    assert np.array_equal(out[cy[inside], cx[inside]], layer.rgb[ys[inside], xs[inside]])


@SETTINGS
@given(layer=layers(), transform=transforms, scene=scenes())
def test_pixels_outside_the_matte_are_the_scene(
    layer: ProductLayer, transform: Transform, scene: np.ndarray
) -> None:
    placed = place_layer(layer, transform, (scene.shape[1], scene.shape[0]))
    outside = (placed.alpha == 0) & ~placed.mask

    out, _ = composite_locked(layer=layer, scene=scene, transform=transform)

    assert np.array_equal(out[outside], scene[outside])


@SETTINGS
@given(layer=layers())
def test_identity_transform_output_equals_the_photo_under_the_mask(layer: ProductLayer) -> None:
    h, w = layer.mask.shape
    scene = np.zeros((h, w, 3), np.uint8)

    out, cert = composite_locked(layer=layer, scene=scene)

    assert cert.locked_pixels == int(layer.mask.sum())
    assert np.array_equal(out[layer.mask], layer.rgb[layer.mask])
    assert cert.transform.is_identity is True


def _photo_layer(seed: int = 7, size: int = 64) -> ProductLayer:
    """A textured product (a real-looking gradient + noise) under a disc mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    rgb = np.dstack([xx * 3 % 256, yy * 2 % 256, (xx + yy) % 256]).astype(np.int16)
    rgb = np.clip(rgb + rng.integers(-20, 21, rgb.shape), 0, 255).astype(np.uint8)
    mask = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size * 0.35) ** 2
    return ProductLayer(rgb=rgb, alpha=mask.astype(np.float32), mask=mask)


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _vae_like(image: np.ndarray) -> np.ndarray:
    """A small blur and a colour shift, as a diffusion model's VAE round trip does."""
    blurred = cv2.GaussianBlur(image, (0, 0), 0.6).astype(np.int16)
    return np.clip(blurred + np.array([2, -1, 1]), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("degrade", "min_changed_fraction"),
    [
        (lambda im: _jpeg_round_trip(im, 95), 0.5),
        (lambda im: _jpeg_round_trip(im, 75), 0.5),
        (_vae_like, 0.99),
    ],
)
def test_a_raw_diffusion_like_output_does_not_satisfy_the_certificate(
    degrade, min_changed_fraction: float
) -> None:
    layer = _photo_layer()
    scene = backdrop_fill(size=(64, 64))
    locked, _ = composite_locked(layer=layer, scene=scene)
    raw = degrade(locked)  # what a scene model returns without the lock step

    raw_cert = verify_lock(image=raw, layer=layer)
    relocked, relocked_cert = composite_locked(layer=layer, scene=raw)

    assert raw_cert.passed is False
    assert raw_cert.changed_pixels >= min_changed_fraction * raw_cert.locked_pixels
    assert raw_cert.max_abs_diff >= 1
    with pytest.raises(LockViolation, match="pixel lock violated"):
        raw_cert.require()
    assert relocked_cert.passed is True
    assert relocked_cert.product_sha256 == raw_cert.product_sha256


def test_product_hash_changes_when_one_locked_pixel_changes() -> None:
    layer = _photo_layer()
    other_rgb = layer.rgb.copy()
    other_rgb[32, 32, 0] ^= 1
    other = ProductLayer(rgb=other_rgb, alpha=layer.alpha, mask=layer.mask)
    scene = backdrop_fill(size=(64, 64))

    _, cert_a = composite_locked(layer=layer, scene=scene)
    _, cert_b = composite_locked(layer=other, scene=scene)
    cross = verify_lock(image=composite_locked(layer=other, scene=scene)[0], layer=layer)

    assert cert_a.product_sha256 != cert_b.product_sha256
    assert cross.changed_pixels == 1
    assert cross.max_abs_diff == 1


def test_certificate_to_dict_is_plain_json_data() -> None:
    layer = _photo_layer()
    _, cert = composite_locked(
        layer=layer, scene=backdrop_fill(size=(80, 70)), transform=Transform(0.5, 3, -2)
    )

    data = cert.to_dict()

    assert data["transform"] == {"scale": 0.5, "dx": 3, "dy": -2}
    assert data["canvas_size"] == [80, 70]
    assert data["changed_pixels"] == 0
    assert data["passed"] is True
    assert set(data) == {
        "locked_pixels", "changed_pixels", "max_abs_diff", "transform", "canvas_size",
        "product_sha256", "image_sha256", "passed", "kind", "filter", "tolerance", "badge",
        "mask_sha256", "original_sha256", "working_sha256", "working_max_side", "colour_conversion",
        "cutout_revision",
    }
    assert data["kind"] == "resampled"
    assert data["badge"] == "Product resized 0.50× from your photo, nothing else changed"


def test_a_failed_certificate_raises_lock_violation() -> None:
    cert = LockCertificate(
        locked_pixels=10, changed_pixels=1, max_abs_diff=3, transform=Transform(),
        canvas_size=(4, 4), product_sha256="a", image_sha256="b",
    )

    with pytest.raises(LockViolation) as info:
        cert.require()

    assert info.value.certificate is cert
    assert "1 of 10 locked pixels changed (max abs diff 3)" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"scale": 0.0}, ValueError),
        ({"scale": float("nan")}, ValueError),
        ({"dx": 1.5}, TypeError),
        ({"dy": True}, TypeError),
    ],
)
def test_transform_rejects_non_deterministic_placements(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        Transform(**kwargs)


def test_layer_from_segmentation_locks_the_photo_pixels() -> None:
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    alpha = np.zeros((20, 30), np.float32)
    alpha[5:15, 5:25] = 1.0
    alpha[4, 5:25] = 0.5
    decontaminated = np.zeros_like(photo)
    result = result_from_alpha(
        image=photo, alpha=alpha, foreground=decontaminated, edge_confidence=1.0,
        backend="test", version="0",
    )

    out, cert = composite_locked(
        layer=ProductLayer.from_segmentation(result), scene=backdrop_fill(size=(30, 20))
    )

    # The 10x20 solid block minus the matte's outer ring (rows 5 and 14 stay: row 4 is 0.5).
    assert cert.locked_pixels == 9 * 18
    assert np.array_equal(out[5:14, 6:24], photo[5:14, 6:24])
    # Half of the studio grey (236, 235, 232), rounded half to even, over a black foreground.
    assert out[4, 5:25].tolist() == [[118, 118, 116]] * 20


def test_backdrop_fill_is_exact_and_sweeps_from_the_top() -> None:
    plain = backdrop_fill(size=(5, 4), color=WHITE)
    swept = backdrop_fill(size=(2, 3), color=(200, 100, 50), sweep=0.5)

    assert plain.shape == (4, 5, 3)
    assert np.all(plain == 255)
    assert swept[:, 0].tolist() == [[100, 50, 25], [150, 75, 38], [200, 100, 50]]


def test_estimate_backdrop_color_ignores_the_product_and_its_rim() -> None:
    photo = np.full((40, 40, 3), STUDIO_GREY, np.uint8)
    photo[10:30, 10:30] = (255, 0, 0)
    photo[9, 10:30] = (0, 0, 0)  # an unmatted rim: must not leak into the estimate
    alpha = np.zeros((40, 40), np.float32)
    alpha[10:30, 10:30] = 1.0

    assert estimate_backdrop_color(photo, alpha, margin=2) == STUDIO_GREY


def test_contact_shadow_sits_under_the_product_and_fades() -> None:
    mask = np.zeros((100, 100), bool)
    mask[20:60, 30:70] = True

    shadow = contact_shadow(mask=mask, opacity=0.4)

    assert shadow.dtype == np.float32
    assert shadow[:35].min() == 1.0  # nothing above the product's lower half
    assert shadow[59, 49] < 0.8  # darkest at the contact line under the centre
    assert shadow[59, 49] >= 0.6  # never darker than 1 - opacity
    assert shadow[59, 49] < shadow[59, 32] < 1.0  # fades toward the sides
    assert shadow[99, 0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(contact_shadow(mask=np.zeros((5, 5), bool)) == 1.0)
