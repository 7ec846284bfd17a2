"""Every write of the generation app: making, revising and resetting cutouts."""
from __future__ import annotations

import hashlib
import importlib.metadata
import io
import logging
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction
from django.db.models import Max
from PIL import Image

from brand.models import BrandKit, ScenePreset
from brand.services import brand_kit_snapshot, palette_rgb, preset_snapshot, workspace_defaults_ensure
from catalog.models import Job, JobKind, JobStatus, ProductPhoto, User
from catalog.services import JobCancelled, JobFailed, JobWaiting, job_cancel, job_enqueue, job_progress
from generation.compose import AS_PHOTO
from generation.lock import ProductLayer
from generation.pipelines.base import GenerationCancelled, OutOfMemory
from generation.preflight import CHANNELS
from generation.prompts import BannedTerm, build_prompts
from generation.registry import get_model, load_scene_backend
from generation.render import LoraRef, RenderedAsset, RenderPlan, channel_spec, render
from catalog.uploads import UploadRejected
from generation.imaging import bbox_of_mask
from generation.segmentation import (
    SegmentationError,
    SegmentationResult,
    cutout_rgba,
    get_segmenter,
    lock_mask_image,
)

from .models import Asset, Cutout, CutoutSource, GenerationJob
from .selectors import cutout_current, cutout_result, photo_rgb

logger = logging.getLogger(__name__)

try:
    VITRINE_VERSION = importlib.metadata.version("vitrine")
except importlib.metadata.PackageNotFoundError:  # running from a checkout that was not installed
    VITRINE_VERSION = "0+unknown"

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




# Generation jobs -------------------------------------------------------------------------

MAX_VARIANTS = 8
PROGRESS_EVERY_S = 0.5  # the step callback writes the job row at most this often


def _valid_channels(channels: list[str]) -> list[str]:
    unknown = []
    for name in channels:
        try:
            channel_spec(name)
        except KeyError:
            unknown.append(name)
    if unknown or not channels:
        known = ", ".join([AS_PHOTO.name, *CHANNELS, "or WIDTHxHEIGHT"])
        raise ValidationError({"channels": f"Choose one or more of: {known}." + (f" Unknown: {', '.join(unknown)}." if unknown else "")})
    return list(dict.fromkeys(channels))


def generation_plan(*, preset: ScenePreset, brand_kit: BrandKit, prompt: str, seed: int, variants: int, channels: list[str]) -> dict:
    """Everything the task needs, resolved now: a later edit of the preset or brand kit does not
    change a queued job, and a recipe can replay it."""
    spec = get_model(preset.model)
    preset_data, kit_data = preset_snapshot(preset), brand_kit_snapshot(brand_kit)
    try:
        full_prompt, negative = build_prompts(preset=preset_data, brand_kit=kit_data, user_prompt=prompt, banned_terms=brand_kit.banned_terms)
    except BannedTerm as exc:
        raise ValidationError({"prompt": str(exc)}) from None
    return {
        "model": spec.name,
        "backend": spec.backend,
        "prompt": full_prompt,
        "negative_prompt": negative,
        "user_prompt": prompt,
        "seeds": [seed + i for i in range(variants)],
        "channels": channels,
        "steps": preset.steps,
        "guidance": preset.guidance,
        "strength": preset.strength,
        "scheduler": preset.scheduler,
        "style": preset.style or None,
        "palette": [list(rgb) for rgb in palette_rgb(brand_kit.palette)],
        # The bundled model has no attention layers to adapt: a brand kit's LoRAs apply to the
        # diffusion backends only, and the plan says so rather than pretending.
        "loras": kit_data["loras"] if spec.backend != "backdrop" else [],
        "loras_skipped": [lora["name"] for lora in kit_data["loras"]] if spec.backend == "backdrop" else [],
        "preset": preset_data,
        "brand_kit": kit_data,
    }


def generation_job_create(
    *,
    photo: ProductPhoto,
    user: User | None,
    variants: int = 4,
    seed: int | None = None,
    preset: ScenePreset | None = None,
    brand_kit: BrandKit | None = None,
    prompt: str = "",
    channels: list[str] | None = None,
) -> GenerationJob:
    """Queue scenes for a photo. What is not given comes from the workspace's default brand kit
    and preset; the job waits for the photo's cutout if it is still being made."""
    if not 1 <= variants <= MAX_VARIANTS:
        raise ValidationError({"variants": f"Ask for 1 to {MAX_VARIANTS} variants."})
    workspace = photo.workspace
    workspace_defaults_ensure(workspace=workspace)
    brand_kit = brand_kit or BrandKit.objects.filter(workspace=workspace, is_default=True).first() or BrandKit.objects.filter(workspace=workspace).first()
    preset = preset or ScenePreset.objects.filter(workspace=workspace, is_default=True).first() or ScenePreset.objects.filter(workspace=workspace).first()
    for row, label in ((brand_kit, "brand kit"), (preset, "scene preset")):
        if row is None or row.workspace_id != workspace.pk:
            raise ValidationError({label.replace(" ", "_"): f"That {label} does not exist in this workspace."})
    channels = _valid_channels(channels or brand_kit.default_channels or ["square-2048"])
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    if not 0 <= seed < 2**31:
        raise ValidationError({"seed": "The seed must be between 0 and 2147483647."})
    plan = generation_plan(preset=preset, brand_kit=brand_kit, prompt=prompt, seed=seed, variants=variants, channels=channels)
    return _generation_job_enqueue(photo=photo, user=user, plan=plan, preset=preset, brand_kit=brand_kit, prompt=prompt, cutout=None)


def _generation_job_enqueue(*, photo, user, plan, preset, brand_kit, prompt, cutout) -> GenerationJob:
    from .tasks import generate_scenes_task

    with transaction.atomic():
        if cutout is None and not photo.cutouts.exists() and not photo.jobs.filter(kind=JobKind.CUTOUT, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists():
            cutout_request(photo=photo)  # the last one failed or never ran: try again, the job waits
        job = GenerationJob.objects.create(
            workspace_id=photo.workspace_id, photo=photo, cutout=cutout, brand_kit=brand_kit, preset=preset,
            prompt=prompt, variants=len(plan.get("keep_variants") or plan["seeds"]), seed=plan["seeds"][0],
            channels=plan["channels"], plan=plan,
            created_by=user,
        )
        transaction.on_commit(lambda: generate_scenes_task.delay(job.pk))
    logger.info("generation.job.queued", extra={"job_id": job.pk, "photo_id": photo.pk, "model": plan["model"]})
    return job


def generation_job_cancel(*, job: GenerationJob) -> GenerationJob:
    """A queued job is cancelled at once; a running one stops at its next step."""
    if not job_cancel(job=job, expected=(JobStatus.QUEUED,)):
        GenerationJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def asset_regenerate(*, asset: Asset, user: User | None) -> GenerationJob:
    """A new job that replays the asset's recipe: same cutout revision, model, prompts,
    settings, seed and channel. On the same hardware and versions: the same pixels."""
    plan = {**asset.recipe["plan"], "channels": [asset.channel], "keep_variants": [asset.variant]}
    return _generation_job_enqueue(
        photo=asset.photo, user=user, plan=plan, preset=asset.job.preset, brand_kit=asset.job.brand_kit,
        prompt=plan.get("user_prompt", ""), cutout=asset.cutout,
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


def generation_run(*, job: GenerationJob, progress: Callable[[int], None]) -> list[Asset]:
    """Make, lock, check and store every asset of a job (called by the gpu task)."""
    cutout = _job_cutout(job)
    result = cutout_result(cutout)
    layer = ProductLayer.from_segmentation(result)
    plan = render_plan(job.plan)
    try:
        backend = load_scene_backend(plan.model)
    except FileNotFoundError as exc:
        raise JobFailed(f"The scene model '{plan.model}' is not installed on this worker: {exc}") from exc
    described = backend.describe()

    last = {"at": 0.0}

    def report(fraction: float, message: str) -> bool:
        now = time.monotonic()
        if now - last["at"] < PROGRESS_EVERY_S and fraction < 1.0:
            return False
        last["at"] = now
        job_progress(job=job, progress=int(5 + fraction * 90), message=message[:200])
        return GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()

    def on_retry(reason: str) -> None:
        GenerationJob.objects.filter(pk=job.pk).update(message="Out of GPU memory: retrying with smaller batches")
        logger.warning("generation.job.oom_retry", extra={"job_id": job.pk, "reason": reason})

    assets: list[Asset] = []
    try:
        for rendered in render(plan=plan, layer=layer, bbox=result.bbox, backend=backend, progress=report, on_retry=on_retry):
            assets.append(_asset_store(job=job, cutout=cutout, rendered=rendered, described=described))
    except GenerationCancelled as exc:
        raise JobCancelled(str(exc)) from exc
    except OutOfMemory as exc:
        raise JobFailed("The GPU ran out of memory even with smaller batches. Ask for fewer variants or a smaller model.") from exc
    job_progress(job=job, progress=100, message=f"{len(assets)} image(s) ready")
    return assets


def _asset_store(*, job: GenerationJob, cutout: Cutout, rendered: RenderedAsset, described: dict) -> Asset:
    name = f"assets/{job.workspace_id}/{job.pk}/{rendered.channel}-{rendered.variant}-{rendered.sha256[:12]}.png"
    recipe = {
        "plan": job.plan,
        "seed": rendered.seed,
        "channel": rendered.channel,
        "transform": rendered.transform.to_dict(),
        "native_size": list(rendered.native_size) if rendered.native_size else None,
        "cutout": {"id": cutout.pk, "revision": cutout.revision, "mask_sha256": cutout.mask_sha256},
        "backend": described,
        "vitrine_version": VITRINE_VERSION,
    }
    existing = Asset.objects.filter(job=job, channel=rendered.channel, variant=rendered.variant).first()
    if existing is not None:  # a retried task made this one already
        return existing
    stored = [default_storage.save(name, ContentFile(rendered.png))]
    try:
        stored.append(default_storage.save(name.removesuffix(".png") + "-preview.webp", ContentFile(rendered.preview)))
        return Asset.objects.create(
            workspace_id=job.workspace_id, job=job, photo_id=job.photo_id, cutout=cutout, variant=rendered.variant,
            seed=rendered.seed, channel=rendered.channel, file=stored[0], preview=stored[1], sha256=rendered.sha256, width=rendered.width,
            height=rendered.height, lock_certificate=rendered.certificate.to_dict(), preflight=rendered.preflight,
            preflight_passed=rendered.preflight_passed, recipe=recipe,
        )
    except BaseException:
        for stored_name in stored:
            default_storage.delete(stored_name)
        raise
