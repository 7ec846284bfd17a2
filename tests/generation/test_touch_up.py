"""The touch-up rule of the engine, on small arrays whose every pixel is checked."""

from __future__ import annotations

import numpy as np
import pytest

from generation.segmentation import SegmentationResult
from generation.segmentation.touch_up import ERASE_EDGE_PX, touch_up

W, H = 40, 30


def _previous() -> SegmentationResult:
    """A product at x 10..30, y 5..25: solid and locked inside, with a soft one-pixel rim."""
    alpha = np.zeros((H, W), np.float32)
    alpha[4:26, 9:31] = 0.5  # the soft rim
    alpha[5:25, 10:30] = 1.0
    mask = alpha == 1.0
    foreground = np.zeros((H, W, 3), np.uint8)
    foreground[alpha > 0] = (200, 20, 20)  # decontaminated colours, not the photo's
    return SegmentationResult(
        alpha=alpha, mask=mask, foreground=foreground, bbox=(9, 4, 31, 26), coverage=float(alpha.mean()),
        edge_confidence=0.42, confident=False, backend="graphcut", version="7", notes=("weak-edges",),
    )


def _photo() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_added_pixels_become_solid_product_with_the_photos_colours():
    previous, photo = _previous(), _photo()
    mask = previous.mask.copy()
    mask[0:3, 0:5] = True  # a patch far from the product

    result = touch_up(previous=previous, image=photo, mask=mask)

    assert np.array_equal(result.mask, mask)
    assert np.array_equal(result.foreground[mask], photo[mask])
    assert result.alpha[0:3, 0:5].min() == 1.0
    # Nothing was erased: the soft rim and the colours outside the lock are the previous ones.
    assert np.array_equal(result.alpha[~mask], previous.alpha[~mask])
    assert np.array_equal(result.foreground[~mask], previous.foreground[~mask])
    assert result.bbox == (0, 0, 31, 26)


def test_erased_pixels_and_the_soft_edge_within_the_erase_radius_become_background():
    previous, photo = _previous(), _photo()
    mask = previous.mask.copy()
    mask[5:25, 10:15] = False  # erase the product's left quarter (x 10..15)

    result = touch_up(previous=previous, image=photo, mask=mask)

    near = np.zeros((H, W), bool)
    near[5 - ERASE_EDGE_PX : 25 + ERASE_EDGE_PX, 10 - ERASE_EDGE_PX : 15 + ERASE_EDGE_PX] = True
    expected = previous.alpha.copy()
    expected[near] = 0.0
    expected[mask] = 1.0
    assert np.array_equal(result.alpha, expected)
    assert result.alpha[4, 15 + ERASE_EDGE_PX] == 0.5  # the rim beyond the radius is kept
    assert result.alpha[4, 15 + ERASE_EDGE_PX - 1] == 0.0
    assert np.array_equal(result.mask, mask)


def test_a_touched_up_result_is_confident_and_says_so():
    previous = _previous()

    result = touch_up(previous=previous, image=_photo(), mask=previous.mask.copy())

    assert (result.confident, result.notes, result.backend, result.version, result.edge_confidence) == (
        True, ("touched-up",), "graphcut", "7", 0.42,
    )
    assert result.coverage == float(result.alpha.mean(dtype=np.float64))
    assert (result.alpha.dtype, result.mask.dtype, result.foreground.dtype) == (np.float32, np.bool_, np.uint8)


def test_the_inputs_are_not_changed():
    previous, photo = _previous(), _photo()
    alpha, foreground, old_mask = previous.alpha.copy(), previous.foreground.copy(), previous.mask.copy()
    mask = np.zeros((H, W), bool)

    touch_up(previous=previous, image=photo, mask=mask)

    assert (np.array_equal(previous.alpha, alpha), np.array_equal(previous.foreground, foreground), np.array_equal(previous.mask, old_mask)) == (True, True, True)
    assert not mask.any()


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.zeros((H, W + 1), bool), "the mask must be bool 40x30, got bool (41, 30)"),
        (np.zeros((H, W), np.uint8), "the mask must be bool 40x30, got uint8 (40, 30)"),
    ],
    ids=["wrong-size", "not-bool"],
)
def test_a_mask_of_another_shape_or_type_is_refused(mask, message):
    with pytest.raises(ValueError) as excinfo:
        touch_up(previous=_previous(), image=_photo(), mask=mask)

    assert str(excinfo.value) == message
