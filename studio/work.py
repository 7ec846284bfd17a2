"""What a worker does for one job of the studio (called by `studio.tasks`): load the rows'
files as plain values, call the engine, store what it returns."""
from __future__ import annotations

import hashlib
import importlib.metadata
import io
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction
from django.db.models import Max
import numpy as np
from PIL import Image

from catalog.files import delete_files, photo_dir, save_files
from catalog.jobs import TRANSIENT_ERRORS, JobCancelled, JobFailed, JobLeaseLost, JobStatus, JobWaiting, job_cancel_requested
from catalog.models import JobKind, PhotoJob, ProductPhoto, User
from generation.decoding import UploadRejected, alpha_cutout, decode_mask_png
from generation.gates import CutoutSignals, asset_gates, gates_passed
from generation.imaging import array_sha256
from generation.lock import ProductLayer, SourceRecord
from generation.pipelines.base import GenerationCancelled, OutOfMemory
from generation.preflight import CHANNELS
from generation.provenance import PNG_COMPRESS_LEVEL
from generation.registry import load_scene_backend
from generation.render import LoraRef, RenderedAsset, RenderPlan, render
from generation.segmentation import SegmentationError, SegmentationResult, cutout_rgba, get_segmenter, lock_mask_image, require_product
from generation.segmentation.touch_up import touch_up
from generation.verify import rebuild_working_copy

from .audit import audit_record
from .models import Asset, AuditVerb, Cutout, CutoutSource, GenerationJob
from .selectors import cutout_current, cutout_result, photo_rgb

logger = logging.getLogger(__name__)

try:
    VITRINE_VERSION = importlib.metadata.version("vitrine")
except importlib.metadata.PackageNotFoundError:  # running from a checkout that was not installed
    VITRINE_VERSION = "0+unknown"

PROGRESS_EVERY_S = 0.5  # the step callback writes the job row at most this often


# Cutouts -----------------------------------------------------------------------------------


def cutout_make(*, photo: ProductPhoto, segmenter: str, progress: Callable[[int], None]) -> Cutout:
    """Segment the photo's working copy and store the result as its next revision. A photo
    with real transparency (a PNG or WebP cut out already) is its own cutout: its alpha is
    the matte, no segmenter runs, and the result is confident (backend "file-alpha")."""
    with photo.working.open("rb") as fh:
        working = Image.open(fh)
        working.load()
    progress(10)
    try:
        result = alpha_cutout(np.asarray(working)) if working.mode == "RGBA" else None
        if result is None:
            backend = get_segmenter(segmenter, model_dir=settings.VITRINE_REMBG_HOME)
            result = backend.segment(np.asarray(working.convert("RGB")))
        result = require_product(result)
    except (SegmentationError, ValueError) as exc:
        raise JobFailed(f"The cutout could not be made: {exc}") from exc
    progress(80)
    cutout = _cutout_store(photo=photo, result=result, source=CutoutSource.AUTOMATIC)
    logger.info(
        "generation.cutout.made",
        extra={"photo_id": photo.pk, "revision": cutout.revision, "backend": result.backend, "confident": result.confident},
    )
    return cutout


def cutout_touch_up(*, job: PhotoJob, progress: Callable[..., None]) -> Cutout:
    """A touch-up job (`studio.services.cutout_touch_up_request`): decode the uploaded mask,
    apply it to the base revision and store the result as the photo's next revision.

    A mask that cannot be used fails the job with a reason for the merchant. The uploaded
    file is removed by `touch_up_upload_discard` once the job is over, whatever the outcome."""
    params = job.params
    photo = job.photo
    base = Cutout.objects.select_related("photo").filter(pk=params["base"], photo=photo).first()
    if base is None:
        raise JobFailed("The cutout revision you edited no longer exists. Reload the page and brush again.")
    progress(5, "Reading your mask")
    try:
        with default_storage.open(params["mask"], "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise JobFailed("The uploaded mask is no longer stored. Save your changes again.") from None
    try:
        mask = decode_mask_png(data=data, size=(photo.width, photo.height))
    except UploadRejected as exc:
        raise JobFailed(exc.message) from None
    del data  # up to 20 MB of PNG, not needed while the arrays below are alive
    progress(25, "Applying your touch-up")
    result = touch_up(
        previous=cutout_result(base), image=photo_rgb(photo), mask=mask,
        snap_edges=bool(params.get("snap_edges")), holes=params.get("holes"),  # absent in jobs queued before
    )
    progress(60, "Saving the new revision")
    user = User.objects.filter(pk=params["user"]).first() if params.get("user") else None
    cutout = _cutout_store(photo=photo, result=result, source=CutoutSource.TOUCH_UP, parent=base, user=user)
    logger.info(
        "studio.cutout.touched_up",
        extra={"photo_id": photo.pk, "job_id": job.pk, "revision": cutout.revision, "locked_before": base.locked_pixels, "locked": cutout.locked_pixels},
    )
    return cutout


def touch_up_upload_discard(*, job_id: int) -> None:
    """Remove a touch-up's uploaded mask once its job is over (succeeded, failed or
    cancelled). A job queued again for a retry still needs it, so it is kept then."""
    job = PhotoJob.objects.filter(pk=job_id, kind=JobKind.TOUCH_UP).first()
    if job is None or job.is_active or not job.params.get("mask"):
        return
    delete_files([job.params["mask"]])


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _cutout_store(
    *, photo: ProductPhoto, result: SegmentationResult, source: str, parent: Cutout | None = None, user: User | None = None
) -> Cutout:
    return cutout_files_save(
        photo=photo,
        cutout_png=_png(cutout_rgba(result)),
        mask_png=_png(lock_mask_image(result)),
        source=source,
        parent=parent,
        user=user,
        backend=result.backend,
        backend_version=result.version,
        mask_sha256=hashlib.sha256(result.mask.tobytes()).hexdigest(),
        bbox=list(result.bbox) if result.bbox else None,
        locked_pixels=int(result.mask.sum()),
        coverage=round(result.coverage, 6),
        edge_confidence=round(result.edge_confidence, 6),
        confident=result.confident,
        notes=list(result.notes),
    )


def cutout_files_save(
    *, photo: ProductPhoto, cutout_png: bytes, mask_png: bytes, source: str, parent: Cutout | None, user: User | None, **fields
) -> Cutout:
    """Store a cutout's two files and its row as the photo's next revision; on any failure
    neither the row nor the files remain."""
    stored: list[str] = []
    try:
        with transaction.atomic():
            # Serialise revisions of one photo: the row lock makes "max + 1" safe.
            ProductPhoto.objects.select_for_update(no_key=True).filter(pk=photo.pk).first()
            revision = (photo.cutouts.aggregate(top=Max("revision"))["top"] or 0) + 1
            directory = f"{photo_dir(workspace_id=photo.workspace_id, sha256=photo.original_sha256)}/cutouts/r{revision}"
            stored.extend(save_files([(f"{directory}/cutout.png", cutout_png), (f"{directory}/mask.png", mask_png)]))
            cutout = Cutout.objects.create(
                workspace_id=photo.workspace_id, photo=photo, revision=revision, source=source, parent=parent,
                cutout=stored[0], mask=stored[1], created_by=user, **fields,
            )
            audit_record(
                workspace_id=photo.workspace_id, verb=_CUTOUT_VERBS[source], actor=user, photo=photo, cutout=cutout,
                detail={"revision": revision, "backend": cutout.backend, "mask_sha256": cutout.mask_sha256, "confident": cutout.confident},
            )
            return cutout
    except BaseException:
        delete_files(stored)
        raise


_CUTOUT_VERBS = {CutoutSource.AUTOMATIC: AuditVerb.CUTOUT_MADE, CutoutSource.TOUCH_UP: AuditVerb.CUTOUT_TOUCHED_UP, CutoutSource.RESET: AuditVerb.CUTOUT_RESET}


# Generation --------------------------------------------------------------------------------


def _lock_source(cutout: Cutout) -> SourceRecord:
    """The start of the certificate's hash chain: the uploaded bytes, the pixels decoded from
    them, and what that decode did to the colours (rebuilt from the original file, as the
    verifier will: the record is the decode's own, not a stored claim)."""
    photo = cutout.photo
    with photo.original.open("rb") as fh:
        original = fh.read()
    _, colour = rebuild_working_copy(original, settings.VITRINE_WORKING_MAX_SIDE)
    return SourceRecord(
        original_sha256=photo.original_sha256, working_sha256=array_sha256(photo_rgb(photo)),
        working_max_side=settings.VITRINE_WORKING_MAX_SIDE, colour_conversion=colour, cutout_revision=cutout.revision,
    )


def _job_cutout(job: GenerationJob) -> Cutout:
    if job.cutout_id:
        return job.cutout
    cutout = cutout_current(photo=job.photo)
    if cutout is None:
        latest = job.photo.jobs.filter(kind=JobKind.CUTOUT).order_by("-created_at").first()
        if latest is not None and latest.status == JobStatus.FAILED:
            raise JobFailed(f"The photo's cutout failed, so there is no product to place: {latest.error}")
        raise JobWaiting("The photo's cutout did not finish in time. Try again in a few minutes.")
    GenerationJob.objects.filter(pk=job.pk).update(cutout=cutout)
    job.cutout = cutout
    return cutout


def _local_path(name: str, sha256: str) -> str:
    """A local file path for a stored file a model library must open by path (LoRA weights)."""
    if isinstance(default_storage, FileSystemStorage):
        return default_storage.path(name)
    cache = Path(settings.VAR_DIR) / "cache" / "files"
    target = cache / f"{sha256}{Path(name).suffix}"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with default_storage.open(name, "rb") as src, tempfile.NamedTemporaryFile(dir=cache, delete=False) as tmp:
            shutil.copyfileobj(src, tmp)
        os.replace(tmp.name, target)
    return str(target)


def render_plan(plan: dict) -> RenderPlan:
    return RenderPlan(
        model=plan["model"], backend=plan["backend"], prompt=plan["prompt"], negative_prompt=plan["negative_prompt"],
        seeds=tuple(plan["seeds"]), channels=tuple(plan["channels"]), steps=plan["steps"], guidance=plan["guidance"],
        strength=plan["strength"], scheduler=plan["scheduler"], style=plan.get("style"),
        palette=tuple(tuple(c) for c in plan.get("palette", [])),
        loras=tuple(LoraRef(name=l["name"], path=_local_path(l["file"], l["sha256"]), weight=l["weight"], sha256=l["sha256"]) for l in plan.get("loras", [])),
        software=f"Vitrine {VITRINE_VERSION}",
        keep_variants=tuple(plan["keep_variants"]) if plan.get("keep_variants") is not None else None,
    )


def generation_run(*, job: GenerationJob, progress: Callable[..., None]) -> list[Asset]:
    """Make, lock, check and store every asset of a job (called by the gpu task through
    `run_job`, whose `progress(percent, message)` also renews the lease and stops work whose
    lease was taken over). A job that ends without its assets (failed, cancelled) keeps none
    of them: rows and files go; a transient error keeps them for the retry."""
    cutout = _job_cutout(job)
    result = cutout_result(cutout)
    layer = ProductLayer.from_segmentation(result)
    plan = render_plan(job.plan)
    try:
        backend = load_scene_backend(plan.model)
    except FileNotFoundError as exc:
        raise JobFailed(f"The scene model '{plan.model}' is not installed on this worker: {exc}") from exc
    described = backend.describe()
    if described.get("cpu_offload"):
        # Chosen at load time because the card is too small for the model: say why it is slower.
        GenerationJob.objects.filter(pk=job.pk).update(
            message=f"{plan.model} runs with model CPU offload: it does not fit this GPU's free memory (slower)"
        )

    last = {"at": 0.0}

    def report(fraction: float, message: str) -> bool:
        now = time.monotonic()
        if now - last["at"] < PROGRESS_EVERY_S and fraction < 1.0:
            return False
        last["at"] = now
        progress(int(5 + fraction * 90), message)
        return job_cancel_requested(job=job)

    def on_retry(reason: str) -> None:
        GenerationJob.objects.filter(pk=job.pk).update(message="Out of GPU memory: retrying with smaller batches")
        logger.warning("generation.job.oom_retry", extra={"job_id": job.pk, "reason": reason})

    assets: list[Asset] = []
    try:
        for rendered in render(
            plan=plan, layer=layer, bbox=result.bbox, backend=backend, progress=report, on_retry=on_retry, source=_lock_source(cutout)
        ):
            assets.append(_asset_store(job=job, cutout=cutout, rendered=rendered, described=described))
    except TRANSIENT_ERRORS:
        raise  # retried: what was stored is reused (assets are unique per job, channel, variant)
    except JobLeaseLost:
        raise  # another worker runs the job now; its assets are its own
    except GenerationCancelled as exc:
        _assets_discard(job)
        raise JobCancelled(str(exc)) from exc
    except OutOfMemory as exc:
        _assets_discard(job)
        raise JobFailed("The GPU ran out of memory even with smaller batches. Ask for fewer variants or a smaller model.") from exc
    except BaseException:
        _assets_discard(job)
        raise
    progress(100, f"{len(assets)} image(s) ready")
    return assets


def _assets_discard(job: GenerationJob) -> None:
    """Remove the assets a job stored before it stopped, rows first, then their files."""
    doomed = list(Asset.objects.filter(job=job))
    names = [f.name for asset in doomed for f in (asset.file, asset.preview) if f]
    Asset.objects.filter(pk__in=[asset.pk for asset in doomed]).delete()
    delete_files(names)


def _asset_gates(*, job: GenerationJob, cutout: Cutout, rendered: RenderedAsset):
    kit = job.plan.get("brand_kit", {})
    spec = CHANNELS.get(rendered.channel)
    return asset_gates(
        certificate=rendered.certificate.to_dict(),
        preflight=rendered.preflight,
        cutout=CutoutSignals(confident=cutout.confident, notes=tuple(cutout.notes), locked_pixels=cutout.locked_pixels),
        scale=rendered.transform.scale,
        background_colours=rendered.background_colours,
        palette=job.plan.get("palette", []),
        palette_max_delta_e=kit.get("palette_max_delta_e"),
        white_background=bool(spec and spec.white_background),
        prompt=job.plan.get("prompt", ""),
        banned_terms=job.plan.get("banned_terms", []),
        placement=rendered.placement.to_dict() if rendered.placement else None,
        channel_title=spec.title if spec else rendered.channel,
    )


def _asset_store(*, job: GenerationJob, cutout: Cutout, rendered: RenderedAsset, described: dict) -> Asset:
    name = f"assets/{job.workspace_id}/{job.pk}/{rendered.channel}-{rendered.variant}-{rendered.sha256[:12]}.png"
    recipe = {
        "plan": job.plan,
        "seed": rendered.seed,
        "channel": rendered.channel,
        "transform": rendered.transform.to_dict(),
        "native_size": list(rendered.native_size) if rendered.native_size else None,
        "placement": rendered.placement.to_dict() if rendered.placement else None,
        "cutout": {"id": cutout.pk, "revision": cutout.revision, "mask_sha256": cutout.mask_sha256},
        "backend": described,
        "vitrine_version": VITRINE_VERSION,
    }
    existing = Asset.objects.filter(job=job, channel=rendered.channel, variant=rendered.variant).first()
    if existing is not None:  # a retried task made this one already
        return existing
    gates = [gate.to_dict() for gate in _asset_gates(job=job, cutout=cutout, rendered=rendered)]
    stored = save_files([(name, rendered.png), (name.removesuffix(".png") + "-preview.webp", rendered.preview)])
    try:
        with transaction.atomic():
            asset = Asset.objects.create(
                workspace_id=job.workspace_id, job=job, photo_id=job.photo_id, cutout=cutout, variant=rendered.variant,
                seed=rendered.seed, channel=rendered.channel, file=stored[0], preview=stored[1], sha256=rendered.sha256, width=rendered.width,
                height=rendered.height, lock_certificate=rendered.certificate.to_dict(), preflight=rendered.preflight,
                preflight_passed=rendered.preflight_passed, recipe=recipe, gates=gates, gates_passed=gates_passed(gates),
                regenerated_from_id=job.plan.get("regenerated_from"),
            )
            audit_record(
                workspace_id=job.workspace_id, verb=AuditVerb.ASSET_GENERATED, actor=job.created_by, photo=job.photo, cutout=cutout, asset=asset,
                detail={
                    "job": job.pk, "model": job.plan["model"], "backend": described.get("backend", job.plan["backend"]), "seed": rendered.seed,
                    "channel": rendered.channel, "preset": job.plan.get("preset", {}).get("name"), "preset_version": job.plan.get("preset", {}).get("version"),
                    "brand_kit": job.plan.get("brand_kit", {}).get("name"), "brand_kit_version": job.plan.get("brand_kit", {}).get("version"),
                    "cutout_revision": cutout.revision, "sha256": rendered.sha256,
                    **({"regenerated_from": job.plan["regenerated_from"]} if job.plan.get("regenerated_from") else {}),
                },
            )
        return asset
    except BaseException:
        delete_files(stored)
        raise
