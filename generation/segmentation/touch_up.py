"""A merchant's touch-up of a cutout: the brushed mask becomes the new lock region.

Plain arrays in, a :class:`SegmentationResult` out; the studio's touch-up job decodes the
stored files, calls :func:`touch_up` and stores what it returns as the next revision.

Two helpers make a rough brush good enough: :func:`snap_to_edges` (a graph cut re-decides the
brushed pixels, seeded by the pixels the merchant left alone, so a stroke that runs over the
product's edge stops at it) and :func:`fill_holes` / :func:`open_holes` (the "Fill holes" and
"Open holes" actions of the editor).

Memory matters here: a 24 MP photo's matte is 96 MB as float32 and its colours 72 MB, so the
function edits copies of those once and otherwise works on bool/uint8 arrays, never float64.
"""

from __future__ import annotations

import cv2
import numpy as np

from generation.imaging import bbox_of_mask, downscale_to_pixels
from generation.segmentation.base import SegmentationResult
from generation.segmentation.graphcut import GRABCUT_SEED, fit_background

__all__ = ["ERASE_EDGE_PX", "HOLE_ACTIONS", "fill_holes", "open_holes", "snap_to_edges", "touch_up"]

#: What :func:`touch_up` can do to the holes of the brushed mask (``None``: nothing).
HOLE_ACTIONS = ("fill", "open")

#: The graph cut of :func:`snap_to_edges` sees the brushed pixels' bounding box plus this much
#: context on each side (at least), so it has product and background colours to compare with.
SNAP_CONTEXT_PX = 32

#: Unchanged pixels this close to a stroke are only probable seeds for the graph cut.
SNAP_BAND_PX = 16
_SNAP_BAND_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * SNAP_BAND_PX + 1, 2 * SNAP_BAND_PX + 1))

#: A stroke (a connected run of added or erased pixels) of which the graph cut would keep less
#: than this share as brushed has no edge to snap to (an erase inside the product, an add of
#: a part that looks like the backdrop): it is kept exactly as brushed.
SNAP_KEEP_MIN = 0.2

#: Larger crops are shrunk to about this many pixels for the graph cut (GrabCut's time grows
#: with the pixel count: one stroke across a 24 MP photo must not take minutes).
SNAP_MAX_PIXELS = 1_000_000

#: A region inside the product is "background-like" for :func:`open_holes` where every
#: channel is within this many noise sigmas (or :data:`OPEN_HOLE_MIN_LEVELS` levels) of the
#: background model fitted to the frame border.
OPEN_HOLE_SIGMAS = 4.0
OPEN_HOLE_MIN_LEVELS = 10.0
#: Smaller background-like regions (a highlight, a speck) stay product.
OPEN_HOLE_MIN_PX = 24

#: Soft matte pixels this close to an erased area go with it, so erasing a wrongly included
#: region (a cast shadow, a prop) leaves no faint outline behind.
ERASE_EDGE_PX = 4

_ERASE_KERNEL = np.ones((2 * ERASE_EDGE_PX + 1, 2 * ERASE_EDGE_PX + 1), np.uint8)


def touch_up(
    *,
    previous: SegmentationResult,
    image: np.ndarray,
    mask: np.ndarray,
    snap_edges: bool = False,
    holes: str | None = None,
) -> SegmentationResult:
    """The cutout `previous` with `mask` as its new lock region.

    Args:
        previous: the revision the merchant edited.
        image: the photo, ``uint8 (H, W, 3)``: added pixels take its colours exactly.
        mask: ``bool (H, W)``, the new lock region (``True`` = product).
        snap_edges: first trim the brushed pixels to the product's edges
            (:func:`snap_to_edges`).
        holes: then ``"fill"`` (:func:`fill_holes`) or ``"open"`` (:func:`open_holes`) the
            mask's holes; ``None`` leaves them.

    Pixels added to the lock region become solid product with the photo's own colours;
    pixels removed become background, together with soft matte pixels within
    :data:`ERASE_EDGE_PX` of an erased area; the rest of the soft edge is kept. A person has
    looked at it, so the result is ``confident`` with the note ``"touched-up"``.

    Raises:
        ValueError: `mask` or `image` does not have the photo's size, or `holes` is not one
            of :data:`HOLE_ACTIONS`.
    """
    height, width = previous.mask.shape
    if mask.shape != (height, width) or mask.dtype != np.bool_:
        raise ValueError(f"the mask must be bool {width}x{height}, got {mask.dtype} {mask.shape[1::-1]}")
    if image.shape != (height, width, 3) or image.dtype != np.uint8:
        raise ValueError(f"the photo must be uint8 {width}x{height}x3, got {image.dtype} {image.shape}")
    if holes is not None and holes not in HOLE_ACTIONS:
        raise ValueError(f"holes must be one of {HOLE_ACTIONS} or None, got {holes!r}")
    mask = np.ascontiguousarray(mask)
    if snap_edges:
        mask = snap_to_edges(image=image, previous=previous.mask, mask=mask)
    if holes == "fill":
        mask = fill_holes(mask)
    elif holes == "open":
        mask = open_holes(image=image, mask=mask)

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


def snap_to_edges(*, image: np.ndarray, previous: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`mask` with its brushed pixels (those that differ from `previous`) re-decided by a
    graph cut, so a rough stroke stops at the product's edge.

    The pixels the merchant left alone are the seeds: unchanged product is sure foreground,
    unchanged background sure background, except within :data:`SNAP_BAND_PX` of a stroke,
    where they are only probable (the old mask may be wrong there too); added pixels start as
    probable product, erased ones as probable background, and ``cv2.grabCut`` (mask init, on
    a crop around the strokes) moves each to the side whose colours it matches, with the cut
    along strong edges. Snapping only ever trims a stroke: an added pixel may stay background and an erased
    one may stay product, but no pixel the merchant did not brush changes. A stroke that the
    cut would undo almost entirely (less than :data:`SNAP_KEEP_MIN` kept) had no edge to snap
    to and is kept as brushed: erasing a region of the product's own colour works. Where the crop
    holds no colour of one side (a stroke over the whole photo) the strokes are kept as they
    are.

    Args:
        image: the photo, ``uint8 (H, W, 3)``.
        previous: ``bool (H, W)``, the lock region before the strokes.
        mask: ``bool (H, W)``, the lock region after the strokes.
    """
    mask = np.ascontiguousarray(mask)
    changed = previous != mask
    box = bbox_of_mask(changed)
    if box is None:
        return mask.copy()
    height, width = mask.shape
    x0, y0, x1, y1 = box
    context = max(SNAP_CONTEXT_PX, (x1 - x0 + y1 - y0) // 4)
    x0, y0 = max(0, x0 - context), max(0, y0 - context)
    x1, y1 = min(width, x1 + context), min(height, y1 + context)
    crop_mask, crop_prev, crop_changed = mask[y0:y1, x0:x1], previous[y0:y1, x0:x1], changed[y0:y1, x0:x1]

    # Near the strokes the old mask may be wrong too (the part the merchant is fixing goes on
    # past the stroke): there it is only probable, so it cannot teach the cut wrong colours.
    near = cv2.dilate(crop_changed.view(np.uint8), _SNAP_BAND_KERNEL).view(np.bool_)
    labels = np.where(crop_mask, np.uint8(cv2.GC_FGD), np.uint8(cv2.GC_BGD))
    labels[near & crop_mask] = cv2.GC_PR_FGD
    labels[near & ~crop_mask] = cv2.GC_PR_BGD
    labels[crop_mask & ~crop_prev] = cv2.GC_PR_FGD
    labels[~crop_mask & crop_prev] = cv2.GC_PR_BGD
    is_product = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if is_product.all() or not is_product.any():  # GrabCut needs colours of both sides
        return mask.copy()

    crop_image = np.ascontiguousarray(image[y0:y1, x0:x1])
    scale = min(1.0, float(np.sqrt(SNAP_MAX_PIXELS / crop_mask.size)))
    if scale < 1.0:
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        crop_image = cv2.resize(crop_image, size, interpolation=cv2.INTER_AREA)
        labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(GRABCUT_SEED)  # the same strokes snap the same way every time
    try:
        cv2.grabCut(crop_image, labels, None, background_model, foreground_model, 4, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a GMM with too few distinct colours to fit: keep the strokes as brushed
        return mask.copy()
    product = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).view(np.uint8)
    if scale < 1.0:
        product = cv2.resize(product * 255, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR) >= 128
    else:
        product = product.view(np.bool_)

    decided = np.where(crop_changed, product, crop_mask)
    for stroke in (crop_mask & ~crop_prev, ~crop_mask & crop_prev):  # added, erased
        count, runs = cv2.connectedComponents(stroke.view(np.uint8), connectivity=8)
        if count < 2:
            continue
        on_stroke = runs[stroke]
        kept = np.bincount(on_stroke, weights=decided[stroke] == crop_mask[stroke], minlength=count)
        size = np.bincount(on_stroke, minlength=count)
        as_brushed = kept < SNAP_KEEP_MIN * np.maximum(size, 1)
        as_brushed[0] = False
        keep = as_brushed[runs] & stroke
        decided[keep] = crop_mask[keep]

    out = mask.copy()
    out[y0:y1, x0:x1] = decided
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """`mask` (``bool (H, W)``) with every background region it encloses made product: only
    background connected to the frame's edge stays background."""
    height, width = mask.shape
    # One pixel of background around the frame joins every edge-touching region into one.
    padded = np.zeros((height + 2, width + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood_mask = np.zeros((height + 4, width + 4), np.uint8)
    cv2.floodFill(padded, flood_mask, (0, 0), 2, flags=4)
    return padded[1:-1, 1:-1] != 2


def open_holes(*, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`mask` (``bool (H, W)``) with the background-like regions it encloses made background:
    the inside of a handle, a wheel or a frame that the cutout filled.

    "Background-like" is measured against the smooth background model fitted to the frame
    border (:func:`generation.segmentation.graphcut.fit_background`): every channel within
    :data:`OPEN_HOLE_SIGMAS` noise sigmas (at least :data:`OPEN_HOLE_MIN_LEVELS` levels).
    A region opens only if it does not touch the background outside the product (that is the
    product's outline, not a hole) and has at least :data:`OPEN_HOLE_MIN_PX` pixels. A part of
    the product of exactly the backdrop's colour, enclosed by the rest, opens too: the merchant
    sees it and paints it back.
    """
    box = bbox_of_mask(mask)
    if box is None:
        return mask.copy()
    height, width = mask.shape
    # One pixel more on each side, so the background around the outline is in the crop.
    x0, y0, x1, y1 = max(0, box[0] - 1), max(0, box[1] - 1), min(width, box[2] + 1), min(height, box[3] + 1)
    # The surface is in frame-relative coordinates: fitting it on a shrunk copy gives the same
    # model (a 24 MP border strip takes seconds to fit); its noise is then an underestimate,
    # which OPEN_HOLE_MIN_LEVELS bounds.
    model = fit_background(downscale_to_pixels(image, 1_000_000)[0])
    threshold = np.maximum(OPEN_HOLE_SIGMAS * model.noise, OPEN_HOLE_MIN_LEVELS).astype(np.float32)
    like = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for top in range(y0, y1, 256):  # strips: the model is float32 (h, w, 3), 288 MB at 24 MP
        bottom = min(y1, top + 256)
        expected = model.evaluate(width=width, height=height, box=(x0, top, x1, bottom))
        distance = np.abs(image[top:bottom, x0:x1].astype(np.float32) - expected) / threshold
        like[top - y0 : bottom - y0] = distance.max(axis=2) <= 1.0
    like &= mask[y0:y1, x0:x1].view(np.uint8)
    like = cv2.morphologyEx(like, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))  # no one-pixel threads

    outside = ~fill_holes(mask)  # background reachable from the frame's edge
    touches_outside = cv2.dilate(outside[y0:y1, x0:x1].view(np.uint8), np.ones((3, 3), np.uint8))
    # A region cut by the frame's edge is not enclosed either.
    if x0 == 0:
        touches_outside[:, 0] = 1
    if x1 == width:
        touches_outside[:, -1] = 1
    if y0 == 0:
        touches_outside[0] = 1
    if y1 == height:
        touches_outside[-1] = 1
    count, components, stats, _ = cv2.connectedComponentsWithStats(like, connectivity=4)
    opened = np.zeros(count, bool)
    opened[1:] = stats[1:, cv2.CC_STAT_AREA] >= OPEN_HOLE_MIN_PX
    touching = np.unique(components[(touches_outside > 0) & (like > 0)])
    opened[touching] = False
    out = mask.copy()
    out[y0:y1, x0:x1] &= ~opened[components]
    return out
