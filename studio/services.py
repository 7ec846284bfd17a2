"""Every write a request makes on the work on photos: cutouts (request, touch-up, reset),
generation jobs (plan, queue, cancel, replay). What a worker then does is in `studio.work`."""
from __future__ import annotations

import logging
import secrets
import uuid
import warnings
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from PIL import Image

from brand.models import BrandKit, ScenePreset
from brand.services import brand_kit_snapshot, palette_rgb, preset_snapshot, workspace_defaults_ensure
from catalog.files import delete_files, photo_dir
from catalog.jobs import ACTIVE_JOB_STATUSES, JobStatus, job_cancel
from catalog.models import JobKind, PhotoJob, Product, ProductPhoto, User, Workspace
from catalog.services import PhotoUploadResult, job_enqueue, photo_delete, photo_upload
from generation.compose import AS_PHOTO
from generation.decoding import UploadRejected, too_large_text
from generation.preflight import CHANNELS
from generation.prompts import BannedTerm, build_prompts
from generation.registry import get_model
from generation.render import channel_spec
from generation.segmentation import check_segmenter_name

from .dispatch import generation_jobs_dispatch
from .audit import audit_record
from .models import Asset, AuditVerb, Cutout, CutoutSource, GenerationJob, ReviewState
from .tasks import cutout_photo_task, cutout_touch_up_task, generate_scenes_task
from .work import cutout_files_save

logger = logging.getLogger(__name__)


# Photos ------------------------------------------------------------------------------------


def photo_add(*, workspace: Workspace, file: File, uploaded_by: User | None = None, product: Product | None = None) -> PhotoUploadResult:
    """Upload one photo under the catalog's rules and queue its cutout in the same
    transaction. The one path for the page, the API and storefront imports. A large photo
    is still checking (its decode runs on a worker): its cutout is queued when it has been
    decoded (`photo_decoded_receive`), and not at all if it cannot be read."""

    def then(photo: ProductPhoto) -> None:
        audit_record(
            workspace_id=workspace.pk, verb=AuditVerb.PHOTO_UPLOADED, actor=uploaded_by, photo=photo,
            detail={"name": photo.original_name, "sha256": photo.original_sha256, "bytes": photo.original_bytes},
        )
        if photo.is_decoded:
            cutout_request(photo=photo)

    return photo_upload(workspace=workspace, file=file, uploaded_by=uploaded_by, product=product, then=then)


def photo_decoded_receive(*, photo: ProductPhoto, **kwargs) -> None:
    """`catalog.signals.photo_decoded` (connected in StudioConfig.ready): a large photo's
    working copy exists now, so its cutout is queued, as an upload decoded in the request
    queues it (in the decode job's transaction)."""
    cutout_request(photo=photo)


def photo_not_ready_reason(photo: ProductPhoto) -> str | None:
    """Why nothing can be made from this photo yet (still being checked, or it could not be
    read), in the merchant's words; None once it has its working copy."""
    if photo.is_decoded:
        return None
    if photo.status == "checking":
        return "This photo is still being checked; wait until it is ready, then try again."
    # The decode job's reason, the words the upload would have been refused with.
    return photo.decode_error or "This photo could not be read. Delete it and upload it again."


class PhotoHasAssets(Exception):
    """Deleting this photo would delete generated images too; the caller must say so."""

    def __init__(self, count: int):
        self.count = count
        self.message = (
            f"This photo has {count} generated image(s). Delete them along with the photo "
            "(delete_assets=true), or keep the photo."
        )
        super().__init__(self.message)


class PhotoHasApprovedAssets(Exception):
    """Deleting this photo would lose approved images that are not published yet: a brand
    manager's decision that exists nowhere else. The caller must say so a second time."""

    def __init__(self, count: int):
        self.count = count
        images, are, them = ("image", "is", "it") if count == 1 else ("images", "are", "them")
        self.message = (
            f"Deleting this photo would lose {count} approved {images} that {are} not published yet. "
            f"Publish or download {them} first, or confirm that {them} should be deleted too."
        )
        super().__init__(self.message)


@dataclass(frozen=True)
class PhotoRemoval:
    """What deleting a photo takes along, for the confirmation a person reads first."""

    cutouts: int  # cutout revisions (their cutout and mask files are removed)
    generation_jobs: int
    assets: int  # generated images, files included
    approved: int  # of those, approved and not yet published


def photo_removal_summary(*, photo: ProductPhoto) -> PhotoRemoval:
    """Count what `photo_remove` would delete, by the same rules it refuses by."""
    assets = Asset.objects.filter(photo=photo).aggregate(
        total=Count("pk"), approved=Count("pk", filter=Q(review_state=ReviewState.APPROVED))
    )
    return PhotoRemoval(
        cutouts=Cutout.objects.filter(photo=photo).count(),
        generation_jobs=GenerationJob.objects.filter(photo=photo).count(),
        assets=assets["total"],
        approved=assets["approved"],
    )


def photo_remove(*, photo: ProductPhoto, delete_assets: bool = False, delete_approved: bool = False) -> None:
    """Delete a photo with everything made from it: cutout revisions, touch-up uploads,
    generation jobs and (only when asked) their assets. A photo with generated images raises
    PhotoHasAssets unless `delete_assets`; one with approved, unpublished images also raises
    PhotoHasApprovedAssets unless `delete_approved`. Rows go in one transaction; their files
    are removed once it has committed, so a failure leaves both in place."""
    with transaction.atomic():
        # The photo row locked first: a worker storing a new asset of it (a foreign key to
        # this row) waits until we are done, so no image arrives unchecked between the count
        # and the delete; the assets locked too, so none is approved in between.
        ProductPhoto.objects.select_for_update().filter(pk=photo.pk).exists()
        assets = list(Asset.objects.select_for_update().filter(photo=photo).order_by("pk"))
        if assets and not delete_assets:
            raise PhotoHasAssets(len(assets))
        approved = sum(asset.review_state == ReviewState.APPROVED for asset in assets)
        if approved and not delete_approved:
            raise PhotoHasApprovedAssets(approved)
        names = [f.name for asset in assets for f in (asset.file, asset.preview) if f]
        names += [f.name for cutout in Cutout.objects.filter(photo=photo) for f in (cutout.cutout, cutout.mask) if f]
        names += [job.params["mask"] for job in photo.jobs.filter(kind=JobKind.TOUCH_UP) if job.params.get("mask")]
        # Assets and jobs protect the cutouts they were made from; they go first.
        Asset.objects.filter(photo=photo).delete()
        GenerationJob.objects.filter(photo=photo).delete()
        Cutout.objects.filter(photo=photo).delete()
        photo_delete(photo=photo)
        transaction.on_commit(lambda: delete_files(names))
    logger.info("studio.photo.removed", extra={"photo_id": photo.pk, "assets": len(assets), "approved": approved, "files": len(names)})


# Cutouts -----------------------------------------------------------------------------------


def cutout_request(*, photo: ProductPhoto, segmenter: str | None = None) -> PhotoJob:
    """Queue an automatic cutout of `photo` (on the cpu queue) with the named segmenter."""
    name = segmenter or settings.VITRINE_SEGMENTER
    reason = photo_not_ready_reason(photo)
    if reason is not None:
        raise UploadRejected(reason, "photo_not_ready")
    try:
        check_segmenter_name(name)
    except ValueError as exc:
        raise UploadRejected(str(exc), "unknown_segmenter") from None
    return job_enqueue(photo=photo, kind=JobKind.CUTOUT, task=cutout_photo_task, params={"segmenter": name})


TOUCH_UP_MAX_BYTES = 20 * 1024 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_A_MASK = "The mask must be a PNG image (white = product, black = background)."


class TouchUpInProgress(Exception):
    """The photo already has a touch-up queued or running (`job`); a second one is refused
    rather than dropped silently, so the merchant knows to save again once it is done."""

    def __init__(self, job: PhotoJob):
        self.job = job
        self.message = "A touch-up of this photo is still being saved. Wait until it finishes, then save your changes again."
        super().__init__(self.message)


def _mask_header_check(mask: File, *, size: tuple[int, int]) -> None:
    """Refuse a mask that is not a PNG of `size` (width, height), reading only its header:
    Pillow's open parses the header and decodes no pixel."""
    expected = f"it must match the photo's {size[0]}×{size[1]} px."
    mask.seek(0)
    try:
        if mask.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
            raise UploadRejected(NOT_A_MASK, "invalid_mask")
        mask.seek(0)
        with warnings.catch_warnings():
            # A declared size over Pillow's bomb limit cannot match a photo: it is refused
            # below with the sizes, like any other mismatch.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(mask, formats=["PNG"]) as image:
                    declared = image.size
            except Image.DecompressionBombError:
                raise UploadRejected(f"The mask has far more pixels than the photo; {expected}", "invalid_mask") from None
            except Exception:
                raise UploadRejected(NOT_A_MASK, "invalid_mask") from None
    finally:
        mask.seek(0)
    if declared != size:
        raise UploadRejected(f"The mask is {declared[0]}×{declared[1]} px; {expected}", "invalid_mask")


def cutout_touch_up_request(
    *, photo: ProductPhoto, base: Cutout | None, mask: File, user: User | None,
    snap_edges: bool = False, holes: str | None = None,
) -> PhotoJob:
    """Queue a touch-up (cpu queue): `mask` (a PNG of the photo's size, white = product)
    becomes the lock region of the photo's next cutout revision, made from `base` (default:
    the newest revision); with `snap_edges` the brushed pixels are first trimmed to the
    product's edges, and `holes` ("fill" / "open") then fills or opens the mask's holes
    (`generation.segmentation.touch_up.touch_up`).

    Only cheap checks happen here (size cap, PNG signature, the header's width × height, the
    base belongs to the photo); the worker decodes the mask and fails the job with a reason if
    it cannot be used. The upload is stored under the photo's folder until the job is over.
    Raises UploadRejected for a bad request (nothing stored, no job) and TouchUpInProgress
    while another touch-up of the photo is queued or running (nothing stored either)."""
    if base is None:
        base = photo.cutouts.order_by("-revision").first()
        if base is None:
            raise UploadRejected("This photo has no cutout yet; wait for it to finish.", "no_cutout")
    elif base.photo_id != photo.pk:
        raise UploadRejected("That cutout revision belongs to another photo.", "invalid_base")
    if mask.size > TOUCH_UP_MAX_BYTES:
        raise UploadRejected(too_large_text(mask.size, TOUCH_UP_MAX_BYTES, what="The mask file"), "invalid_mask")
    _mask_header_check(mask, size=(photo.width, photo.height))

    directory = photo_dir(workspace_id=photo.workspace_id, sha256=photo.original_sha256)
    stored = default_storage.save(f"{directory}/touch-ups/{uuid.uuid4().hex}.png", mask)
    try:
        job = job_enqueue(
            photo=photo, kind=JobKind.TOUCH_UP, task=cutout_touch_up_task,
            params={"base": base.pk, "mask": stored, "user": user.pk if user else None, "snap_edges": snap_edges, "holes": holes},
        )
    except BaseException:
        delete_files([stored])
        raise
    if job.params.get("mask") != stored:  # the live touch-up of this photo, not ours
        delete_files([stored])
        raise TouchUpInProgress(job)
    logger.info("studio.touch_up.queued", extra={"job_id": job.pk, "photo_id": photo.pk, "base": base.pk})
    return job


def cutout_reset(*, photo: ProductPhoto, user: User | None) -> Cutout:
    """A new revision equal to the newest automatic cutout (touch-ups undone, history kept).
    The files are copied byte for byte: nothing is decoded in the request."""
    automatic = photo.cutouts.filter(source=CutoutSource.AUTOMATIC).order_by("-revision").first()
    if automatic is None:
        raise UploadRejected("This photo has no automatic cutout yet; wait for it to finish.", "no_cutout")
    with automatic.cutout.open("rb") as fh:
        cutout_png = fh.read()
    with automatic.mask.open("rb") as fh:
        mask_png = fh.read()
    fields = {
        name: getattr(automatic, name)
        for name in ("backend", "backend_version", "mask_sha256", "bbox", "locked_pixels", "coverage", "edge_confidence", "confident", "notes")
    }
    return cutout_files_save(
        photo=photo, cutout_png=cutout_png, mask_png=mask_png, source=CutoutSource.RESET, parent=automatic, user=user, **fields
    )


# Generation jobs -------------------------------------------------------------------------

MAX_VARIANTS = 8


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
        # The QA gate re-checks the final prompt (preset and kit fragments included) with them.
        "banned_terms": list(brand_kit.banned_terms),
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
    reason = photo_not_ready_reason(photo)
    if reason is not None:
        raise ValidationError({"photo": reason})
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


class WorkspaceLimitReached(ValidationError):
    """A workspace asked for more generation than its limits allow; the message says which
    limit and what to do (the API answers 429, the page shows it on the form)."""

    def __init__(self, message: str, *, code: str):
        # Not a field's error: the page shows it above the form.
        super().__init__({NON_FIELD_ERRORS: ValidationError(message, code=code)})
        self.message, self.code = message, code


def _workspace_limits_check(*, workspace_id: int, images: int) -> None:
    """Refuse a job that would pass the workspace's queued-jobs or images-per-day limit.
    Called with the workspace row locked, so two requests cannot both take the last place."""
    max_queued = settings.VITRINE_WORKSPACE_MAX_QUEUED_JOBS
    jobs = GenerationJob.objects.filter(workspace_id=workspace_id)
    if jobs.filter(status=JobStatus.QUEUED).count() >= max_queued:
        raise WorkspaceLimitReached(
            f"This workspace already has {max_queued} scene jobs waiting, the most it may queue at once. "
            "Wait for some to finish, or cancel some, then try again.",
            code="too_many_queued_jobs",
        )
    max_images = settings.VITRINE_WORKSPACE_MAX_IMAGES_PER_DAY
    since = timezone.now() - timedelta(hours=24)
    # Jobs cancelled before they started cost nothing and do not count.
    recent = jobs.filter(created_at__gte=since).exclude(status=JobStatus.CANCELLED, started_at__isnull=True)
    asked = sum(variants * len(channels) for variants, channels in recent.values_list("variants", "channels"))
    if asked + images > max_images:
        raise WorkspaceLimitReached(
            f"This workspace may ask for {max_images} images in any 24 hours and has asked for {asked}; "
            f"this request would add {images}. Ask for fewer variants or channels, or try again later.",
            code="daily_image_limit",
        )


def _generation_job_enqueue(*, photo, user, plan, preset, brand_kit, prompt, cutout) -> GenerationJob:
    """Store the job queued but undispatched; the dispatcher sends it when its workspace's
    turn comes (`studio.dispatch`). Refused, with nothing stored, past the workspace's limits."""
    variants = len(plan.get("keep_variants") or plan["seeds"])
    with transaction.atomic():
        Workspace.objects.select_for_update(no_key=True).filter(pk=photo.workspace_id).first()
        _workspace_limits_check(workspace_id=photo.workspace_id, images=variants * len(plan["channels"]))
        if cutout is None and not photo.cutouts.exists() and not photo.jobs.filter(kind=JobKind.CUTOUT, status__in=ACTIVE_JOB_STATUSES).exists():
            cutout_request(photo=photo)  # the last one failed or never ran: try again, the job waits
        job = GenerationJob.objects.create(
            workspace_id=photo.workspace_id, photo=photo, cutout=cutout, brand_kit=brand_kit, preset=preset,
            prompt=prompt, variants=variants, seed=plan["seeds"][0],
            channels=plan["channels"], plan=plan, task_name=generate_scenes_task.name,
            created_by=user,
        )
        transaction.on_commit(generation_jobs_dispatch)
    logger.info("generation.job.queued", extra={"job_id": job.pk, "photo_id": photo.pk, "model": plan["model"]})
    return job


def generation_job_cancel(*, job: GenerationJob) -> GenerationJob:
    """A queued job is cancelled at once; a running one stops at its next step."""
    return job_cancel(job=job)


def asset_regenerate(*, asset: Asset, user: User | None) -> GenerationJob:
    """A new job that replays the asset's recipe: same cutout revision, model, prompts,
    settings, seed and channel. On the same hardware and versions: the same pixels."""
    plan = {
        **asset.recipe["plan"], "channels": [asset.channel], "keep_variants": [asset.variant],
        # New pixels need their own decision: an asset that was in front of the brand
        # managers puts its regenerated image there again (studio.reviews).
        "regenerated_from": asset.pk, "submit_for_review": asset.review_state != ReviewState.GENERATED,
    }
    return _generation_job_enqueue(
        photo=asset.photo, user=user, plan=plan, preset=asset.job.preset, brand_kit=asset.job.brand_kit,
        prompt=plan.get("user_prompt", ""), cutout=asset.cutout,
    )


