"""A merchant's touch-up of a cutout: the brushed mask becomes the new lock region.

Plain arrays in, a :class:`SegmentationResult` out; the studio's touch-up job decodes the
stored files, calls :func:`touch_up` and stores what it returns as the next revision.

Memory matters here: a 24 MP photo's matte is 96 MB as float32 and its colours 72 MB, so the
function edits copies of those once and otherwise works on bool/uint8 arrays, never float64.
"""

from __future__ import annotations

import cv2
import numpy as np

from generation.imaging import bbox_of_mask
from generation.segmentation.base import SegmentationResult

__all__ = ["ERASE_EDGE_PX", "touch_up"]

#: Soft matte pixels this close to an erased area go with it, so erasing a wrongly included
#: region (a cast shadow, a prop) leaves no faint outline behind.
ERASE_EDGE_PX = 4

_ERASE_KERNEL = np.ones((2 * ERASE_EDGE_PX + 1, 2 * ERASE_EDGE_PX + 1), np.uint8)


def touch_up(*, previous: SegmentationResult, image: np.ndarray, mask: np.ndarray) -> SegmentationResult:
    """The cutout `previous` with `mask` as its new lock region.

    Args:
        previous: the revision the merchant edited.
        image: the photo, ``uint8 (H, W, 3)``: added pixels take its colours exactly.
        mask: ``bool (H, W)``, the new lock region (``True`` = product).

    Pixels added to the lock region become solid product with the photo's own colours;
    pixels removed become background, together with soft matte pixels within
    :data:`ERASE_EDGE_PX` of an erased area; the rest of the soft edge is kept. A person has
    looked at it, so the result is ``confident`` with the note ``"touched-up"``.

    Raises:
        ValueError: `mask` or `image` does not have the photo's size.
    """
    height, width = previous.mask.shape
    if mask.shape != (height, width) or mask.dtype != np.bool_:
        raise ValueError(f"the mask must be bool {width}x{height}, got {mask.dtype} {mask.shape[1::-1]}")
    if image.shape != (height, width, 3) or image.dtype != np.uint8:
        raise ValueError(f"the photo must be uint8 {width}x{height}x3, got {image.dtype} {image.shape}")
    mask = np.ascontiguousarray(mask)

    removed = previous.mask & ~mask
    alpha = previous.alpha.astype(np.float32, copy=True)
    alpha[mask] = 1.0
    if removed.any():
        # Viewing bool as uint8 (0/1) lets OpenCV dilate without a converted copy.
        near_erased = cv2.dilate(removed.view(np.uint8), _ERASE_KERNEL).view(np.bool_)
        near_erased[mask] = False  # what the merchant painted as product stays product
        alpha[near_erased] = 0.0  # includes every removed pixel
    foreground = previous.foreground.copy()
    np.copyto(foreground, image, where=mask[:, :, None])  # in place: no third colour array
    return SegmentationResult(
        alpha=alpha,
        mask=mask.copy(),
        foreground=foreground,
        bbox=bbox_of_mask(alpha > 0),
        coverage=float(alpha.mean(dtype=np.float64)),  # a float64 accumulator, not a copy
        edge_confidence=previous.edge_confidence,
        confident=True,  # a person has looked at it and decided
        backend=previous.backend,
        version=previous.version,
        notes=("touched-up",),
    )
