"""Reads of the studio (cutouts, generation jobs, assets), scoped to the caller's workspace, and
the adapters that turn stored photos and cutouts back into the engine's plain values."""
from __future__ import annotations

import numpy as np
from django.db.models import QuerySet
from PIL import Image

from catalog.jobs import JobStatus
from catalog.models import ProductPhoto, Workspace
from catalog.selectors import filter_jobs, get_or_404
from generation.segmentation import SegmentationResult

from .models import Asset, Cutout, GenerationJob


def cutout_list(*, workspace: Workspace, photo_id=None) -> QuerySet[Cutout]:
    cutouts = Cutout.objects.filter(workspace=workspace).select_related("photo")
    if photo_id is not None:
        cutouts = cutouts.filter(photo_id=photo_id)
    return cutouts.order_by("-created_at", "-revision")


def cutout_get(*, workspace: Workspace, cutout_id) -> Cutout:
    return get_or_404(Cutout.objects.filter(workspace=workspace).select_related("photo"), cutout_id)


def cutout_current(*, photo: ProductPhoto) -> Cutout | None:
    """The newest revision: the one generation uses."""
    return photo.cutouts.order_by("-revision").first()


def photo_rgb(photo: ProductPhoto) -> np.ndarray:
    """The photo's working copy as the uint8 RGB array every imaging step starts from."""
    with photo.working.open("rb") as fh:
        image = Image.open(fh)
        image.load()
    return np.asarray(image.convert("RGB"))


def cutout_result(cutout: Cutout) -> SegmentationResult:
    """A stored cutout as a SegmentationResult (the mask file is the lock region)."""
    with cutout.cutout.open("rb") as fh:
        rgba = np.asarray(Image.open(fh).convert("RGBA"))
    with cutout.mask.open("rb") as fh:
        mask = np.asarray(Image.open(fh).convert("L")) >= 128
    alpha = rgba[:, :, 3].astype(np.float32) / 255.0
    alpha[mask] = 1.0
    return SegmentationResult(
        alpha=alpha,
        mask=mask,
        foreground=np.ascontiguousarray(rgba[:, :, :3]),
        bbox=tuple(cutout.bbox) if cutout.bbox else None,
        coverage=cutout.coverage,
        edge_confidence=cutout.edge_confidence,
        confident=cutout.confident,
        backend=cutout.backend,
        version=cutout.backend_version,
        notes=tuple(cutout.notes),
    )


def generation_job_list(*, workspace: Workspace, photo_id=None, status: str | None = None) -> QuerySet[GenerationJob]:
    return filter_jobs(GenerationJob.objects.filter(workspace=workspace).select_related("preset"), photo_id=photo_id, status=status)


def generation_job_get(*, workspace: Workspace, job_id) -> GenerationJob:
    return get_or_404(GenerationJob.objects.filter(workspace=workspace).select_related("photo", "preset"), job_id)


def _deliverable(workspace: Workspace) -> QuerySet[Asset]:
    # A job that has not succeeded (still running, crashed and being redone, failed,
    # cancelled) delivers nothing: its assets so far are not shown anywhere.
    return Asset.objects.filter(workspace=workspace, job__status=JobStatus.SUCCEEDED)


def asset_list(*, workspace: Workspace, job_id=None, photo_id=None) -> QuerySet[Asset]:
    assets = _deliverable(workspace).select_related("photo")
    if job_id is not None:
        assets = assets.filter(job_id=job_id)
    if photo_id is not None:
        assets = assets.filter(photo_id=photo_id)
    return assets.order_by("-job_id", "channel", "variant")


def asset_get(*, workspace: Workspace, asset_id) -> Asset:
    return get_or_404(_deliverable(workspace).select_related("job", "photo", "cutout"), asset_id)
