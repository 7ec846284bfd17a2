"""What every segmentation backend returns, and the images made from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from generation.imaging import as_rgb_array, bbox_of_mask

__all__ = [
    "LOCK_ALPHA_THRESHOLD",
    "ModelNotInstalled",
    "NoProductFound",
    "SegmentationError",
    "SegmentationResult",
    "Segmenter",
    "cutout_rgba",
    "lock_mask_from_alpha",
    "lock_mask_image",
    "require_product",
    "result_from_alpha",
]

#: A pixel is locked (copied verbatim from the photo into every output) only when the matte
#: says it is unambiguously product: ``alpha >= 0.98`` *and* it is not on the outer ring of
#: the matte (its 8 neighbours all have ``alpha >= 0.5``). 0.98 rather than 1.0 because
#: matting leaves a little noise inside solid products. The ring rule exists because the
#: sub-pixel coverage of a pixel on the product's outline is the least certain estimate of
#: all (a half-covered pixel on a busy print can be solved as opaque); such pixels are blended
#: by the compositor instead, so an edge estimate is never certified as product.
LOCK_ALPHA_THRESHOLD = 0.98


class SegmentationError(RuntimeError):
    """The segmenter could not produce a cutout for this image."""


class ModelNotInstalled(SegmentationError):
    """A model-backed segmenter was asked for a model whose weights are not on disk."""


class NoProductFound(SegmentationError):
    """The segmenter found no product, or one too small to place, in the photo."""


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """A cutout: soft matte, hard lock mask, decontaminated colours and quality signals.

    Attributes:
        alpha: ``float32 (H, W)`` in ``[0, 1]``; the soft matte.
        mask: ``bool (H, W)``; the hard product mask (:func:`lock_mask_from_alpha`).
            This is the lock region: these pixels reach every output unchanged.
        foreground: ``uint8 (H, W, 3)``; product colours with the old background removed
            from edge pixels. Inside ``mask`` it equals the photo exactly.
        bbox: ``(x0, y0, x1, y1)`` of ``alpha > 0`` (exclusive ends), ``None`` if empty.
        coverage: fraction of the frame covered by the matte (mean of ``alpha``).
        edge_confidence: ``0..1``; how well the boundary is supported by image evidence.
        confident: the backend's own verdict; ``False`` asks for a human look.
        backend: backend name, e.g. ``"graphcut"`` or ``"rembg:u2net"``.
        version: backend version string, stored with the cutout for reproducibility.
        notes: short machine-readable reasons behind ``confident`` (e.g. ``"touches-border"``).
    """

    alpha: np.ndarray
    mask: np.ndarray
    foreground: np.ndarray
    bbox: tuple[int, int, int, int] | None
    coverage: float
    edge_confidence: float
    confident: bool
    backend: str
    version: str
    notes: tuple[str, ...] = field(default=())

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the photo."""
        return int(self.alpha.shape[1]), int(self.alpha.shape[0])


class Segmenter(Protocol):
    """A backend that cuts the product out of a photo."""

    name: str
    version: str

    def segment(self, image: Image.Image | np.ndarray) -> SegmentationResult:
        """Segment ``image`` (PIL image or ``uint8 (H, W, 3)`` array)."""
        ...


def lock_mask_from_alpha(alpha: np.ndarray) -> np.ndarray:
    """The hard lock mask of a matte; see :data:`LOCK_ALPHA_THRESHOLD` for the rule."""
    inside = (alpha >= 0.5).astype(np.uint8)
    interior = cv2.erode(inside, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (alpha >= LOCK_ALPHA_THRESHOLD) & interior.astype(bool)


#: What each cutout note means, in a merchant's words (the notes stay machine-readable).
NOTE_TEXT = {
    "empty": "no product was found in the photo",
    "weak-edges": "the product's outline is faint against the background, so its edges may be wrong",
    "busy-background": "the background is busy, so parts of it may be taken for the product",
    "open-outline": "the outline does not close, so part of the product or of the background may be cut wrongly",
    "touches-border": "the product touches the photo's edge, so it may be cut off there",
    "tiny": "the product covers very little of the photo",
    "fills-frame": "the product fills almost the whole photo, so background may be included",
    "background-above": "the cutout reaches the top of the photo, so the background may be included above the product",
    "second-region": "a second region far from the product was kept; it may be background (a light, a shadow or a reflection)",
    "spans-frame": "the cutout spans the whole width of the photo, so a wall or table edge may be included",
    "leaves-frame": "the cutout runs off two or more edges of the photo, so the backdrop or the table may be included",
    "reflection-removed": "a reflection of the product on a glossy floor was taken out, so check the product's bottom edge",
    "soft-edges": "the product's edges are soft in the photo and its outline is long for its size, so where exactly it ends is uncertain",
    "unstable": "the outline changed when the photo was looked at a little differently, so it is a guess in places",
}


def describe_notes(notes) -> list[str]:
    """The notes of a cutout as sentences; an unknown note is shown as it is."""
    return [NOTE_TEXT.get(note, note.replace("-", " ")) for note in notes]


def result_from_alpha(
    *,
    image: np.ndarray,
    alpha: np.ndarray,
    foreground: np.ndarray,
    edge_confidence: float,
    backend: str,
    version: str,
    notes: tuple[str, ...] = (),
    min_edge_confidence: float = 0.5,
    lockable: np.ndarray | None = None,
) -> SegmentationResult:
    """Build a :class:`SegmentationResult` from a matte, deriving mask, bbox and coverage.

    ``lockable`` (``bool (H, W)``), when given, further restricts the lock mask to pixels the
    backend is sure of, whatever their alpha.

    Forces ``foreground == image`` inside the hard mask, so that the lock region of a
    cutout is always the photo's own decoded pixels whatever decontamination did.
    """
    alpha = np.clip(alpha.astype(np.float32, copy=False), 0.0, 1.0)
    mask = lock_mask_from_alpha(alpha)
    if lockable is not None:
        mask &= lockable
    foreground = np.where(mask[:, :, None], image, foreground).astype(np.uint8)
    bbox = bbox_of_mask(alpha > 0)
    coverage = float(alpha.mean(dtype=np.float64))
    notes_list = list(notes)
    if not mask.any():
        notes_list.append("empty")
    if edge_confidence < min_edge_confidence:
        notes_list.append("weak-edges")
    return SegmentationResult(
        alpha=alpha,
        mask=mask,
        foreground=foreground,
        bbox=bbox,
        coverage=coverage,
        edge_confidence=float(edge_confidence),
        confident=not notes_list,
        backend=backend,
        version=version,
        notes=tuple(notes_list),
    )


#: Below this many locked pixels a product cannot be placed in a scene: every output would be an
#: empty backdrop (a 40 x 40 photo has no pixel left after the lock's edge ring is removed).
MIN_LOCKED_PIXELS = 256
#: ... nor when the locked product is a speck of the frame.
MIN_LOCKED_SHARE = 0.001
#: A photo under this many pixels on its short side is called too small when too little is found.
MIN_PHOTO_SIDE = 64


def require_product(result: SegmentationResult) -> SegmentationResult:
    """``result`` if it holds a product that scenes can be made of, else :class:`NoProductFound`
    with the reason in a merchant's words (shown as the cutout job's error)."""
    width, height = result.size
    locked = int(result.mask.sum())
    too_few = locked < MIN_LOCKED_PIXELS or locked < MIN_LOCKED_SHARE * width * height
    if too_few and min(width, height) < MIN_PHOTO_SIDE:
        raise NoProductFound(
            f"the photo is only {width} x {height} pixels, too small to find the product in. "
            "Upload a larger photo of the product."
        )
    if locked == 0:
        raise NoProductFound(
            "no product was found in the photo. Check that the product is in the frame and stands "
            "out from the background, or upload another photo."
        )
    if too_few:
        raise NoProductFound(
            "the product found covers too little of the photo to be placed in a scene. Upload a "
            "photo where the product fills more of the frame."
        )
    return result


def cutout_rgba(result: SegmentationResult) -> Image.Image:
    """The cutout as an RGBA PIL image: decontaminated colours + the soft matte."""
    a = np.round(result.alpha * 255.0).astype(np.uint8)
    rgba = np.dstack([as_rgb_array(result.foreground), a])
    return Image.fromarray(rgba, mode="RGBA")


def lock_mask_image(result: SegmentationResult) -> Image.Image:
    """The hard lock mask as an ``L`` PIL image: 255 = locked product, 0 = not locked."""
    return Image.fromarray(result.mask.astype(np.uint8) * 255, mode="L")
