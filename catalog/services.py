"""Every write in the catalog: workspaces, people, products, photos, jobs."""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image

from .models import Job, JobKind, JobStatus, Membership, Product, ProductPhoto, Role, User, Workspace, WorkerHeartbeat
from .uploads import UploadRejected, validate_image

logger = logging.getLogger(__name__)

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


# Workspaces and people -------------------------------------------------------------------


def workspace_create(*, name: str, owner: User, slug: str | None = None) -> Workspace:
    with transaction.atomic():
        workspace = Workspace.objects.create(name=name, slug=slug or slugify(name)[:80])
        Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


def member_add(*, workspace: Workspace, email: str, role: str, password: str | None = None) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first() or User.objects.create_user(email=email, password=password)
        membership, _ = Membership.objects.update_or_create(workspace=workspace, user=user, defaults={"role": role})
    return membership


DEMO_PASSWORD = "vitrine-demo"
DEMO_USERS = (("merchant@demo.vitrine", Role.MERCHANT), ("brand@demo.vitrine", Role.BRAND_MANAGER))


def demo_workspace_seed() -> Workspace:
    """The demo workspace and its two logins; refuses outside demo mode."""
    if not settings.VITRINE_DEMO:
        raise RuntimeError("The demo workspace is only created when VITRINE_DEMO is true.")
    with transaction.atomic():
        workspace, _ = Workspace.objects.get_or_create(slug="demo", defaults={"name": "Demo Store"})
        for email, role in DEMO_USERS:
            user, created = User.objects.get_or_create(email=email)
            if created or not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            Membership.objects.update_or_create(workspace=workspace, user=user, defaults={"role": role})
        for title, sku in (("Amber glass bottle", "AGB-100"), ("Ceramic mug", "CM-220"), ("Leather wallet", "LW-030")):
            Product.objects.get_or_create(workspace=workspace, handle=slugify(title), defaults={"title": title, "sku": sku})
    return workspace


# Products --------------------------------------------------------------------------------


def _unique_handle_error(handle: str) -> ValidationError:
    return ValidationError({"handle": f"Another product in this workspace already uses the handle '{handle}'."})


def product_create(*, workspace: Workspace, title: str, handle: str = "", sku: str = "", storefront_product_id: str = "") -> Product:
    handle = handle or slugify(title)
    if not handle:
        raise ValidationError({"title": "Give the product a title with at least one letter or digit."})
    try:
        with transaction.atomic():
            return Product.objects.create(
                workspace=workspace, title=title, handle=handle, sku=sku, storefront_product_id=storefront_product_id
            )
    except IntegrityError:
        raise _unique_handle_error(handle) from None


def product_update(*, product: Product, **fields) -> Product:
    allowed = {"title", "handle", "sku", "storefront_product_id"}
    for name, value in fields.items():
        if name not in allowed:
            raise TypeError(f"product_update() got an unexpected field {name!r}")
        setattr(product, name, value)
    try:
        with transaction.atomic():
            product.save()
    except IntegrityError:
        raise _unique_handle_error(product.handle) from None
    return product


def product_delete(*, product: Product) -> None:
    product.delete()


# Photos ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoUploadResult:
    photo: ProductPhoto
    created: bool  # False: the same bytes were already in this workspace


def _photo_dir(workspace: Workspace, sha256: str) -> str:
    return f"photos/{workspace.pk}/{sha256[:2]}/{sha256}"


def photo_upload(*, workspace: Workspace, file: File, uploaded_by: User | None = None, product: Product | None = None) -> PhotoUploadResult:
    """Validate, store and register one photo, then enqueue its thumbnail.

    The one path for the page, the API and imports. A rejection raises UploadRejected and
    leaves no row and no file; the same bytes uploaded twice return the first photo."""
    if product is not None and product.workspace_id != workspace.pk:
        raise UploadRejected("That product does not exist in this workspace.", "unknown_product")
    accepted = validate_image(
        file,
        size_bytes=file.size,
        max_bytes=settings.VITRINE_UPLOAD_MAX_BYTES,
        max_pixels=settings.VITRINE_UPLOAD_MAX_PIXELS,
        working_max_side=settings.VITRINE_WORKING_MAX_SIDE,
    )
    existing = ProductPhoto.objects.filter(workspace=workspace, original_sha256=accepted.sha256).first()
    if existing is not None:
        return PhotoUploadResult(photo=existing, created=False)

    directory = _photo_dir(workspace, accepted.sha256)
    stored: list[str] = []
    try:
        file.seek(0)
        stored.append(default_storage.save(f"{directory}/original.{_EXTENSIONS[accepted.format]}", file))
        stored.append(default_storage.save(f"{directory}/working.png", ContentFile(accepted.working_png)))
        with transaction.atomic():
            photo = ProductPhoto.objects.create(
                workspace=workspace,
                product=product,
                uploaded_by=uploaded_by,
                original=stored[0],
                original_sha256=accepted.sha256,
                original_name=(getattr(file, "name", "") or "photo")[:255],
                original_format=accepted.format,
                original_bytes=accepted.size_bytes,
                original_width=accepted.original_width,
                original_height=accepted.original_height,
                working=stored[1],
                working_sha256=accepted.working_sha256,
                width=accepted.width,
                height=accepted.height,
                has_alpha=accepted.has_alpha,
            )
            job_enqueue(photo=photo, kind=JobKind.THUMBNAIL)
            job_enqueue(photo=photo, kind=JobKind.CUTOUT, params={"segmenter": settings.VITRINE_SEGMENTER})
    except IntegrityError:
        # A concurrent upload of the same bytes won the race: keep theirs, drop ours.
        _delete_files(stored)
        return PhotoUploadResult(photo=ProductPhoto.objects.get(workspace=workspace, original_sha256=accepted.sha256), created=False)
    except BaseException:
        _delete_files(stored)
        raise
    logger.info("catalog.photo.uploaded", extra={"photo_id": photo.pk, "workspace_id": workspace.pk})
    return PhotoUploadResult(photo=photo, created=True)


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # best effort; the row is the truth and does not point at it
            logger.warning("catalog.storage.delete_failed", extra={"name": name}, exc_info=True)


def photo_delete(*, photo: ProductPhoto) -> None:
    names = [f.name for f in (photo.original, photo.working, photo.thumbnail) if f]
    with transaction.atomic():
        photo.delete()
        transaction.on_commit(lambda: _delete_files(names))


def photo_assign(*, photo: ProductPhoto, product: Product | None) -> ProductPhoto:
    if product is not None and product.workspace_id != photo.workspace_id:
        raise ValidationError({"product": "That product does not exist in this workspace."})
    photo.product = product
    photo.save(update_fields=["product"])
    return photo


def photo_thumbnail_make(*, photo: ProductPhoto, progress: Callable[[int], None]) -> None:
    """Render the photo's thumbnail (WebP, long side VITRINE_THUMBNAIL_SIDE) from its working copy."""
    with photo.working.open("rb") as fh:
        image = Image.open(fh)
        image.load()
    progress(40)
    side = settings.VITRINE_THUMBNAIL_SIDE
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=82, method=4)
    progress(80)
    old = photo.thumbnail.name if photo.thumbnail else None
    name = default_storage.save(f"{_photo_dir(photo.workspace, photo.original_sha256)}/thumbnail.webp", ContentFile(buffer.getvalue()))
    ProductPhoto.objects.filter(pk=photo.pk).update(thumbnail=name)
    photo.thumbnail.name = name
    if old and old != name:
        _delete_files([old])


# Jobs ------------------------------------------------------------------------------------


class JobFailed(Exception):
    """A job cannot succeed with this input; `message` is written on the job for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class JobCancelled(Exception):
    """The work stopped because someone cancelled the job."""


class JobWaiting(Exception):
    """The job's input is not ready yet (e.g. the photo's cutout is still running): try again
    in `countdown` seconds, at most `max_waits` times, then fail with `message`."""

    def __init__(self, message: str, *, countdown: float = 3.0, max_waits: int = 200):
        super().__init__(message)
        self.message, self.countdown, self.max_waits = message, countdown, max_waits



def _job_task(kind: str):
    # Resolved at call time: the task modules import these services.
    from catalog.tasks import photo_thumbnail_task
    from generation.tasks import cutout_photo_task

    return {JobKind.THUMBNAIL: photo_thumbnail_task, JobKind.CUTOUT: cutout_photo_task}[kind]


def job_enqueue(*, photo: ProductPhoto, kind: str, params: dict | None = None) -> Job:
    """Create the job row (or return the live one of that kind, whatever its params) and send
    its task once the row is committed."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                job = Job.objects.create(workspace_id=photo.workspace_id, photo=photo, kind=kind, params=params or {})
        except IntegrityError:
            return Job.objects.get(photo=photo, kind=kind, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        task = _job_task(kind)
        transaction.on_commit(lambda: task.delay(job.pk))
    return job


def job_start(*, job_id: int, model: type = Job):
    """queued → running. None when the job is gone or not queued (already handled, or
    cancelled): a redelivered message then does nothing. `model` is Job or any job row with
    the same status fields (generation.GenerationJob)."""
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != JobStatus.QUEUED:
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.save(update_fields=["status", "attempts", "started_at"])
    return job


def job_progress(*, job, progress: int, **fields) -> None:
    """Record progress (0–100) and any extra display fields (e.g. a message) of a running job."""
    progress = max(0, min(100, int(progress)))
    type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(progress=progress, **fields)
    job.progress = progress


def _job_finish(*, job, status: str, error: str = "", expected: tuple[str, ...] = (JobStatus.RUNNING,)) -> bool:
    with transaction.atomic():
        current = type(job).objects.select_for_update().get(pk=job.pk)
        if current.status not in expected:
            return False
        current.status = status
        current.error = error
        current.finished_at = timezone.now() if status != JobStatus.QUEUED else None
        if status == JobStatus.SUCCEEDED:
            current.progress = 100
        current.save(update_fields=["status", "error", "finished_at", "progress"])
    job.status, job.error, job.progress = current.status, current.error, current.progress
    return True


def job_succeed(*, job) -> bool:
    return _job_finish(job=job, status=JobStatus.SUCCEEDED)


def job_fail(*, job, error: str) -> bool:
    return _job_finish(job=job, status=JobStatus.FAILED, error=error)


def job_requeue(*, job) -> bool:
    """running → queued, for a transient failure or missing input that will be retried."""
    return _job_finish(job=job, status=JobStatus.QUEUED)


def job_cancel(*, job, expected: tuple[str, ...] = (JobStatus.QUEUED, JobStatus.RUNNING)) -> bool:
    return _job_finish(job=job, status=JobStatus.CANCELLED, expected=expected)


# Workers ---------------------------------------------------------------------------------


def worker_heartbeat_record(*, hostname: str, queues: list[str]) -> None:
    WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"queues": queues, "seen_at": timezone.now()})
