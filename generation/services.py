"""Every write of the generation app: making, revising and resetting cutouts."""
from __future__ import annotations

import hashlib
import io
import logging
from typing import Callable

import cv2
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from PIL import Image

from catalog.models import Job, JobKind, ProductPhoto, User
from catalog.services import JobFailed, job_enqueue
from catalog.uploads import UploadRejected
from generation.imaging import bbox_of_mask
from generation.segmentation import (
    LOCK_ALPHA_THRESHOLD,
    SegmentationError,
    SegmentationResult,
    cutout_rgba,
    get_segmenter,
    lock_mask_image,
)

from .models import Cutout, CutoutSource
from .selectors import cutout_result, photo_rgb

logger = logging.getLogger(__name__)

# Soft matte pixels this close to an erased area go with it, so erasing a wrongly included
# region (a cast shadow, a prop) leaves no faint outline behind.
ERASE_EDGE_PX = 4


def cutout_request(*, photo: ProductPhoto, segmenter: str | None = None) -> Job:
    """Queue an automatic cutout of `photo` (on the cpu queue) with the named segmenter."""
    name = segmenter or settings.VITRINE_SEGMENTER
    _check_segmenter_name(name)
    return job_enqueue(photo=photo, kind=JobKind.CUTOUT, params={"segmenter": name})


def _check_segmenter_name(name: str) -> None:
    if name != "studio" and not name.startswith("rembg:"):
        raise UploadRejected(f"Unknown segmenter '{name}'. Use 'studio' or 'rembg:<model>'.", "unknown_segmenter")


def cutout_make(*, photo: ProductPhoto, segmenter: str, progress: Callable[[int], None]) -> Cutout:
    """Segment the photo's working copy and store the result as its next revision."""
    image = photo_rgb(photo)
    progress(10)
    try:
        backend = get_segmenter(segmenter, model_dir=settings.VITRINE_REMBG_HOME)
        result = backend.segment(image)
    except (SegmentationError, ValueError) as exc:
        raise JobFailed(f"The cutout could not be made: {exc}") from exc
    progress(80)
    cutout = _cutout_store(photo=photo, result=result, source=CutoutSource.AUTOMATIC)
    logger.info(
        "generation.cutout.made",
        extra={"photo_id": photo.pk, "revision": cutout.revision, "backend": result.backend, "confident": result.confident},
    )
    return cutout


def mask_from_png(*, data: bytes, size: tuple[int, int]) -> np.ndarray:
    """Decode an uploaded mask (PNG, white = product) of exactly `size`, or raise UploadRejected."""
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        image.load()
    except Exception:
        raise UploadRejected("The mask must be a PNG image (white = product, black = background).", "invalid_mask") from None
    if image.size != size:
        raise UploadRejected(
            f"The mask is {image.width}×{image.height} px; it must match the photo's {size[0]}×{size[1]} px.", "invalid_mask"
        )
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent = not product, whatever colour the transparent pixels carry.
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    return np.asarray(image.convert("L")) >= 128


def cutout_revise(*, base: Cutout, mask: np.ndarray, user: User | None) -> Cutout:
    """A touch-up: `mask` (bool, photo-sized) is the new lock region.

    Pixels added to the lock region become solid product with the photo's own colours;
    pixels removed become background, with soft matte pixels right beside them; the rest of
    the soft edge is kept from `base`."""
    previous = cutout_result(base)
    image = photo_rgb(base.photo)
    if mask.shape != previous.mask.shape:
        raise UploadRejected("The mask must have the photo's size.", "invalid_mask")
    added = mask & ~previous.mask
    removed = previous.mask & ~mask

    alpha = previous.alpha.copy()
    alpha[mask] = 1.0
    alpha[removed] = 0.0
    if removed.any():
        near_erased = cv2.dilate(removed.astype(np.uint8), np.ones((2 * ERASE_EDGE_PX + 1,) * 2, np.uint8)).astype(bool)
        alpha[near_erased & ~mask] = 0.0
    foreground = np.where(mask[:, :, None], image, previous.foreground).astype(np.uint8)
    result = SegmentationResult(
        alpha=alpha,
        mask=mask.copy(),
        foreground=foreground,
        bbox=bbox_of_mask(alpha > 0),
        coverage=float(alpha.mean(dtype=np.float64)),
        edge_confidence=previous.edge_confidence,
        confident=True,  # a person has looked at it and decided
        backend=previous.backend,
        version=previous.version,
        notes=("touched-up",),
    )
    cutout = _cutout_store(photo=base.photo, result=result, source=CutoutSource.TOUCH_UP, parent=base, user=user)
    logger.info(
        "generation.cutout.revised",
        extra={"photo_id": base.photo_id, "revision": cutout.revision, "added": int(added.sum()), "removed": int(removed.sum())},
    )
    return cutout


def cutout_reset(*, photo: ProductPhoto, user: User | None) -> Cutout:
    """A new revision equal to the newest automatic cutout (touch-ups undone, history kept)."""
    automatic = photo.cutouts.filter(source=CutoutSource.AUTOMATIC).order_by("-revision").first()
    if automatic is None:
        raise UploadRejected("This photo has no automatic cutout yet; wait for it to finish.", "no_cutout")
    return _cutout_store(photo=photo, result=cutout_result(automatic), source=CutoutSource.RESET, parent=automatic, user=user)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _cutout_store(
    *, photo: ProductPhoto, result: SegmentationResult, source: str, parent: Cutout | None = None, user: User | None = None
) -> Cutout:
    mask_png = _png(lock_mask_image(result))
    cutout_png = _png(cutout_rgba(result))
    stored: list[str] = []
    try:
        with transaction.atomic():
            # Serialise revisions of one photo: the row lock makes "max + 1" safe.
            ProductPhoto.objects.select_for_update().filter(pk=photo.pk).first()
            revision = (photo.cutouts.aggregate(top=Max("revision"))["top"] or 0) + 1
            directory = f"photos/{photo.workspace_id}/{photo.original_sha256[:2]}/{photo.original_sha256}/cutouts/r{revision}"
            stored.append(default_storage.save(f"{directory}/cutout.png", ContentFile(cutout_png)))
            stored.append(default_storage.save(f"{directory}/mask.png", ContentFile(mask_png)))
            return Cutout.objects.create(
                workspace_id=photo.workspace_id,
                photo=photo,
                revision=revision,
                source=source,
                parent=parent,
                backend=result.backend,
                backend_version=result.version,
                cutout=stored[0],
                mask=stored[1],
                mask_sha256=hashlib.sha256(result.mask.tobytes()).hexdigest(),
                bbox=list(result.bbox) if result.bbox else None,
                locked_pixels=int(result.mask.sum()),
                coverage=round(result.coverage, 6),
                edge_confidence=round(result.edge_confidence, 6),
                confident=result.confident,
                notes=list(result.notes),
                created_by=user,
            )
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


__all__ = ["LOCK_ALPHA_THRESHOLD", "cutout_make", "cutout_request", "cutout_reset", "cutout_revise", "mask_from_png"]
