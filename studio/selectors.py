"""Reads of the studio (cutouts, generation jobs, assets), scoped to the caller's workspace, and
the adapters that turn stored photos and cutouts back into the engine's plain values."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from PIL import Image

from catalog.jobs import JobStatus
from catalog.models import ProductPhoto, Workspace
from catalog.selectors import filter_jobs, get_or_404
from generation.segmentation import SegmentationResult

from .models import Asset, AssetComment, AuditEvent, AuditVerb, Cutout, GenerationJob, Notification, Review, ReviewState


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


@dataclass(frozen=True)
class AssetFilters:
    """What the gallery, the review queue and the API narrow assets by. Ids arrive as text
    from query strings: a value that is not a whole number is a 400, never a 500."""

    job: int | None = None
    photo: int | None = None
    product: int | None = None
    preset: int | None = None
    channel: str | None = None
    review_state: str | None = None
    gates: str | None = None  # "pass" (every gate passes) or "fail" (one fails)

    @classmethod
    def from_query(cls, params) -> "AssetFilters":
        errors, values = {}, {}
        for name in ("job", "photo", "product", "preset"):
            raw = (params.get(name) or "").strip()
            if raw:
                if not (raw.isascii() and raw.isdigit()):  # "²".isdigit() is true, int("²") fails
                    errors[name] = [f"'{raw[:40]}' is not an id: use a whole number."]
                else:
                    values[name] = int(raw)
        channel = (params.get("channel") or "").strip()
        if channel:
            if not channel.isprintable():  # a NUL cannot even reach PostgreSQL
                errors["channel"] = ["Choose a channel name from the list (printable text only)."]
            values["channel"] = channel[:40]
        state = (params.get("review_state") or params.get("state") or "").strip()
        if state:
            if state not in ReviewState.values:
                errors["review_state"] = [f"Choose one of: {', '.join(ReviewState.values)}."]
            values["review_state"] = state
        gates = (params.get("gates") or "").strip()
        if gates:
            if gates not in ("pass", "fail"):
                errors["gates"] = ["Choose 'pass' or 'fail'."]
            values["gates"] = gates
        if errors:
            raise ValidationError(errors)
        return cls(**values)


def asset_list(*, workspace: Workspace, job_id=None, photo_id=None, filters: AssetFilters | None = None) -> QuerySet[Asset]:
    assets = _deliverable(workspace).select_related("photo", "photo__product", "job__preset")
    f = filters or AssetFilters()
    job_id = job_id if job_id is not None else f.job
    photo_id = photo_id if photo_id is not None else f.photo
    if job_id is not None:
        assets = assets.filter(job_id=job_id)
    if photo_id is not None:
        assets = assets.filter(photo_id=photo_id)
    if f.product is not None:
        assets = assets.filter(photo__product_id=f.product)
    if f.preset is not None:
        assets = assets.filter(job__preset_id=f.preset)
    if f.channel:
        assets = assets.filter(channel=f.channel)
    if f.review_state:
        assets = assets.filter(review_state=f.review_state)
    if f.gates:
        assets = assets.filter(gates_passed=f.gates == "pass")
    return assets.order_by("-job_id", "channel", "variant")


def review_queue(*, workspace: Workspace, filters: AssetFilters | None = None) -> QuerySet[Asset]:
    """Everything awaiting a decision, oldest submission first (first in, first decided)."""
    f = filters or AssetFilters()
    queue = asset_list(workspace=workspace, filters=AssetFilters(**{**f.__dict__, "review_state": ReviewState.IN_REVIEW}))
    open_since = Review.objects.filter(asset=OuterRef("pk"), decision="").values("submitted_at")[:1]
    return queue.annotate(submitted_at=Subquery(open_since)).order_by("submitted_at", "pk")


def asset_get(*, workspace: Workspace, asset_id) -> Asset:
    return get_or_404(_deliverable(workspace).select_related("job", "photo", "cutout", "photo__product", "job__preset"), asset_id)


def assets_get(*, workspace: Workspace, asset_ids) -> list[Asset]:
    """Several assets of the caller's workspace by id; any id that is not one answers 404, so
    a bulk action never acts on a selection it cannot wholly see."""
    try:
        ids = sorted({int(i) for i in asset_ids})
    except (TypeError, ValueError):
        raise ValidationError({"ids": ["Give asset ids as whole numbers."]}) from None
    found = list(_deliverable(workspace).filter(pk__in=ids).select_related("job", "photo", "cutout", "photo__product"))
    missing = sorted(set(ids) - {a.pk for a in found})
    if missing:
        raise Http404(f"No asset with id {', '.join(map(str, missing[:10]))} in this workspace.")
    return found


def asset_reviews(*, asset: Asset) -> QuerySet[Review]:
    return asset.reviews.select_related("submitted_by", "decided_by").order_by("-submitted_at", "-pk")


def asset_comments(*, asset: Asset) -> QuerySet[AssetComment]:
    return asset.comments.select_related("author")


def asset_history(*, asset: Asset) -> QuerySet[AuditEvent]:
    """The asset's whole story: its photo's upload, the cutout revisions up to the one it was
    made from (who touched them up), its making (model, recipe), every review action and
    export — oldest first."""
    photo_events = Q(photo_id=asset.photo_id, verb=AuditVerb.PHOTO_UPLOADED)
    cutout_events = Q(photo_id=asset.photo_id, cutout__revision__lte=asset.cutout.revision, verb__startswith="cutout.")
    return (
        AuditEvent.objects.filter(workspace_id=asset.workspace_id)
        .filter(Q(asset_id=asset.pk) | photo_events | cutout_events)
        .select_related("actor", "cutout")
        .order_by("created_at", "pk")
    )


def audit_list(*, workspace: Workspace) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(workspace=workspace).select_related("actor").order_by("created_at", "pk")


def notification_list(*, user, workspace: Workspace, unread: bool = False) -> QuerySet[Notification]:
    rows = Notification.objects.filter(recipient=user, workspace=workspace).select_related("asset")
    return rows.filter(read_at__isnull=True) if unread else rows


def notification_unread_count(*, user, workspace: Workspace) -> int:
    return notification_list(user=user, workspace=workspace, unread=True).count()
