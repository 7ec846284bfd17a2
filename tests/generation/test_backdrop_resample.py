"""backdrop-mini's resolution changes: no blocks, no product bleed, a crisp horizon, no banding."""

from __future__ import annotations

import numpy as np

from generation.backdrop.resample import (
    add_grain_and_quantize,
    estimate_horizon,
    fill_behind,
    product_to_working,
    upsample_smooth,
    upsample_with_horizon,
    working_size,
)


def two_tone(h: int = 32, w: int = 32, boundary: int = 12) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:boundary] = (0.8, 0.3, 0.3)
    img[boundary:] = (0.3, 0.3, 0.8)
    return img


def test_working_size_keeps_aspect_on_a_multiple_of_four():
    assert working_size(1024, 1024, 32) == (32, 32)
    assert working_size(1350, 1080, 32) == (40, 32)
    assert working_size(1080, 1920, 32) == (32, 56)


def test_product_to_working_ignores_pixels_outside_mask():
    product = np.zeros((64, 64, 3), np.float32)
    product[...] = (1.0, 0.0, 1.0)  # magenta outside the product
    mask = np.zeros((64, 64), bool)
    mask[16:48, 20:44] = True
    product[mask] = (0.2, 0.6, 0.4)
    known, colour = product_to_working(product, mask, (32, 32))
    assert known.sum() == 16 * 12
    np.testing.assert_allclose(colour[known], np.tile([0.2, 0.6, 0.4], (16 * 12, 1)), atol=1e-6)


def test_smooth_upsampling_keeps_a_ramp_linear():
    ramp = np.tile(np.linspace(0.2, 0.8, 32, dtype=np.float32)[None, :, None], (32, 1, 3))
    up = upsample_smooth(ramp, 1024, 1024)
    row = up[512, 128:-128, 0]
    # A blocky or kinked upsampler leaves steps in the first difference; this one does not.
    steps = np.diff(row)
    assert steps.min() > 0
    assert steps.max() - steps.min() < 2e-4


def test_fill_behind_takes_backdrop_not_product():
    img = np.full((32, 32, 3), 0.5, np.float32)
    known = np.zeros((32, 32), bool)
    known[8:24, 10:20] = True
    img[known] = (1.0, 0.0, 0.0)
    filled = fill_behind(img, known)
    np.testing.assert_allclose(filled, np.full((32, 32, 3), 0.5, np.float32), atol=1e-5)


def test_horizon_is_found_and_kept_crisp():
    img = two_tone()
    horizon = estimate_horizon(img, np.zeros((32, 32), bool))
    assert abs(horizon - 12 / 32) < 0.02
    up = upsample_with_horizon(img, horizon, 512, 512, softness=0.004)
    red = up[:, 256, 0]
    lo, hi = red.min(), red.max()
    transition = np.nonzero((red > lo + 0.1 * (hi - lo)) & (red < hi - 0.1 * (hi - lo)))[0]
    assert len(transition) <= 4  # ≤ 4 px at 512 px, where plain upsampling smears ~ 30 px


def test_horizon_absent_on_a_sweep():
    sweep = np.tile(np.linspace(0.9, 0.6, 32, dtype=np.float32)[:, None, None], (1, 32, 3))
    assert estimate_horizon(sweep, np.zeros((32, 32), bool)) is None


def test_grain_dithers_a_gradient_instead_of_banding():
    # A gradient spanning 4 levels over 1024 px: without grain it is 4 flat bands.
    grad = np.tile(np.linspace(100 / 255, 104 / 255, 1024, dtype=np.float32)[None, :, None], (64, 1, 3))
    flat = add_grain_and_quantize(grad, np.random.default_rng(0), sigma=0)
    dithered = add_grain_and_quantize(grad, np.random.default_rng(0))
    longest_run = lambda r: max(len(s) for s in np.split(r, np.nonzero(np.diff(r.astype(int)))[0] + 1))  # noqa: E731
    assert longest_run(flat[32, :, 0]) >= 200
    assert longest_run(dithered[32, :, 0]) < 30
    np.testing.assert_allclose(dithered.mean(axis=(0, 2)).reshape(16, 64).mean(1), flat.mean(axis=(0, 2)).reshape(16, 64).mean(1), atol=0.6)
