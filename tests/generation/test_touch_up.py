"""The touch-up rule of the engine, on small arrays whose every pixel is checked."""

from __future__ import annotations

import numpy as np
import pytest

from generation.segmentation import SegmentationResult
from generation.segmentation.touch_up import ERASE_EDGE_PX, fill_holes, open_holes, touch_up

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


def test_an_unknown_hole_action_is_refused():
    previous = _previous()
    with pytest.raises(ValueError) as excinfo:
        touch_up(previous=previous, image=_photo(), mask=previous.mask.copy(), holes="close")

    assert str(excinfo.value) == "holes must be one of ('fill', 'open') or None, got 'close'"


# --- Edge snapping and holes, on a synthetic studio photo -----------------------------------
# A 240 x 180 photo: a light grey sweep that darkens towards the bottom, sensor noise, and a
# textured terracotta product whose right edge is the column x = EDGE (rows 40..140).

SW, SH, EDGE = 240, 180, 150
PRODUCT_ROWS, PRODUCT_LEFT = slice(40, 140), 60


def _studio_photo(*, with_product: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    ys = np.arange(SH, dtype=np.float32)[:, None, None]
    photo = np.broadcast_to(np.float32([222, 220, 216]) - 0.12 * ys, (SH, SW, 3)).copy()
    product = np.zeros((SH, SW), bool)
    product[PRODUCT_ROWS, PRODUCT_LEFT:EDGE] = with_product
    texture = rng.normal(0, 9, (SH, SW, 1)).astype(np.float32)
    photo[product] = (np.float32([176, 92, 60]) + texture)[product]
    photo += rng.normal(0, 2.0, photo.shape).astype(np.float32)
    return np.clip(photo, 0, 255).astype(np.uint8), product


def _result_of(mask: np.ndarray, photo: np.ndarray) -> SegmentationResult:
    return SegmentationResult(
        alpha=mask.astype(np.float32), mask=mask, foreground=photo.copy(), bbox=(0, 0, SW, SH),
        coverage=float(mask.mean()), edge_confidence=0.5, confident=False, backend="graphcut", version="7", notes=(),
    )


def _right_edges(mask: np.ndarray) -> np.ndarray:
    """Per product row, the column just past the mask's rightmost pixel."""
    rows = mask[PRODUCT_ROWS]
    return SW - np.argmax(rows[:, ::-1], axis=1)


def test_an_added_stroke_that_runs_over_the_edge_stops_at_the_edge():
    photo, product = _studio_photo()
    previous = product.copy()
    previous[:, EDGE - 30 :] = False  # the cutout missed the product's right 30 columns
    brushed = previous.copy()
    brushed[PRODUCT_ROWS, EDGE - 34 : EDGE + 18] = True  # a rough stroke 18 px past the edge

    snapped = touch_up(previous=_result_of(previous, photo), image=photo, mask=brushed, snap_edges=True).mask
    unsnapped = touch_up(previous=_result_of(previous, photo), image=photo, mask=brushed).mask

    assert np.abs(_right_edges(snapped) - EDGE).max() <= 2
    assert np.abs(_right_edges(unsnapped) - EDGE).min() == 18  # without snapping the stroke is kept
    assert not (snapped & ~brushed).any()  # snapping never paints where no one brushed
    assert np.array_equal(snapped & ~(previous ^ brushed), brushed & ~(previous ^ brushed))


def test_an_erase_stroke_that_runs_into_the_product_stops_at_the_edge():
    photo, product = _studio_photo()
    previous = product.copy()
    previous[PRODUCT_ROWS, EDGE : EDGE + 30] = True  # the cutout kept 30 columns of backdrop
    brushed = previous.copy()
    brushed[PRODUCT_ROWS, EDGE - 15 : EDGE + 40] = False  # a rough erase 15 px into the product

    snapped = touch_up(previous=_result_of(previous, photo), image=photo, mask=brushed, snap_edges=True).mask

    assert np.abs(_right_edges(snapped) - EDGE).max() <= 2
    assert not (~snapped & brushed).any()  # only erased pixels may become background


def test_snapping_without_strokes_changes_nothing():
    photo, product = _studio_photo()

    snapped = touch_up(previous=_result_of(product, photo), image=photo, mask=product.copy(), snap_edges=True).mask

    assert np.array_equal(snapped, product)


def _ring_product() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo with a square frame product (a hole of backdrop in its middle); the true
    mask; and the mask with the hole filled, as a cutout that missed it would have."""
    photo, _ = _studio_photo()
    backdrop, _ = _studio_photo(with_product=False)
    frame = np.zeros((SH, SW), bool)
    frame[40:140, 60:150] = True
    hole = np.zeros((SH, SW), bool)
    hole[65:115, 85:125] = True
    frame &= ~hole
    rng = np.random.default_rng(5)
    photo[frame] = np.clip(np.float32([40, 60, 150]) + rng.normal(0, 6, (int(frame.sum()), 3)), 0, 255).astype(np.uint8)
    photo[hole] = backdrop[hole]
    return photo, frame, frame | hole


def test_fill_holes_makes_every_enclosed_background_region_product():
    _, frame, filled = _ring_product()
    with_speck = frame.copy()
    with_speck[50, 70] = False  # a one-pixel hole too

    assert np.array_equal(fill_holes(with_speck), filled)
    outside = ~filled
    assert not fill_holes(with_speck)[outside].any()  # the backdrop around the product stays


def test_open_holes_gives_back_the_enclosed_background_and_keeps_the_product():
    photo, frame, filled = _ring_product()

    opened = open_holes(image=photo, mask=filled)

    hole = filled & ~frame
    inner = np.zeros_like(hole)
    inner[66:114, 86:124] = True  # the hole less its one-pixel rim (the 3x3 opening)
    assert not opened[inner].any()
    assert opened[frame].all()
    assert (opened & hole).sum() <= hole.sum() - inner.sum()


def test_open_holes_keeps_a_backdrop_coloured_region_that_touches_the_outline():
    photo, frame, filled = _ring_product()
    notch = filled.copy()
    notch[40:60, 60:150] = True  # a band along the top, kept by the mask
    photo[40:60, 60:150] = _studio_photo(with_product=False)[0][40:60, 60:150]  # ...that is in fact backdrop

    opened = open_holes(image=photo, mask=notch)

    assert opened[40:60, 60:150].all()  # an outline problem, not a hole: left to the brush


def test_touch_up_applies_the_hole_action_to_the_brushed_mask():
    photo, frame, filled = _ring_product()
    previous = _result_of(filled, photo)

    filled_again = touch_up(previous=_result_of(frame, photo), image=photo, mask=frame.copy(), holes="fill")
    opened = touch_up(previous=previous, image=photo, mask=filled.copy(), holes="open")

    assert np.array_equal(filled_again.mask, filled)
    assert opened.mask.sum() < filled.sum() - 1500
    assert not opened.alpha[80:100, 95:115].any()  # the opened hole is transparent, not just unlocked


def test_open_holes_keeps_a_backdrop_coloured_region_cut_by_the_frame_edge():
    photo, _ = _studio_photo(with_product=False)
    mask = np.zeros((SH, SW), bool)
    mask[0:100, 0:100] = True  # backdrop-coloured, at the frame's corner: not a hole

    assert np.array_equal(open_holes(image=photo, mask=mask), mask)


def test_a_stroke_with_no_edge_to_snap_to_is_kept_as_brushed():
    photo, product = _studio_photo()
    brushed = product.copy()
    brushed[70:100, 80:120] = False  # erase a patch of the product's own colour, far from its edges
    brushed[10:20, 10:40] = True  # add a patch of backdrop (a part the merchant knows is there)

    snapped = touch_up(previous=_result_of(product, photo), image=photo, mask=brushed, snap_edges=True).mask

    assert np.array_equal(snapped, brushed)
