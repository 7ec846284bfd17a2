"""Every write in the catalog: workspaces, people, products, photos, jobs."""
from __future__ import annotations

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

from generation.decoding import UploadRejected, validate_image

from .files import delete_files, photo_dir
from .jobs import ACTIVE_JOB_STATUSES
from .models import JobKind, Membership, PhotoJob, Product, ProductPhoto, Role, User, Workspace, WorkerHeartbeat
from .tasks import photo_thumbnail_task

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


def photo_upload(
    *,
    workspace: Workspace,
    file: File,
    uploaded_by: User | None = None,
    product: Product | None = None,
    then: Callable[[ProductPhoto], object] | None = None,
) -> PhotoUploadResult:
    """Validate, store and register one photo, then enqueue its thumbnail.

    `then(photo)` runs inside the same transaction for a new photo: the work other apps
    start on it (studio's cutout), so that a failure there leaves nothing behind either.
    A rejection raises UploadRejected and leaves no row and no file; the same bytes uploaded
    twice return the first photo."""
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

    directory = photo_dir(workspace_id=workspace.pk, sha256=accepted.sha256)
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
            job_enqueue(photo=photo, kind=JobKind.THUMBNAIL, task=photo_thumbnail_task)
            if then is not None:
                then(photo)
    except IntegrityError:
        # A concurrent upload of the same bytes won the race: keep theirs, drop ours.
        delete_files(stored)
        return PhotoUploadResult(photo=ProductPhoto.objects.get(workspace=workspace, original_sha256=accepted.sha256), created=False)
    except BaseException:
        delete_files(stored)
        raise
    logger.info("catalog.photo.uploaded", extra={"photo_id": photo.pk, "workspace_id": workspace.pk})
    return PhotoUploadResult(photo=photo, created=True)


def photo_delete(*, photo: ProductPhoto) -> None:
    names = [f.name for f in (photo.original, photo.working, photo.thumbnail) if f]
    with transaction.atomic():
        photo.delete()
        transaction.on_commit(lambda: delete_files(names))


def photo_assign(*, photo: ProductPhoto, product: Product | None) -> ProductPhoto:
    if product is not None and product.workspace_id != photo.workspace_id:
        raise ValidationError({"product": "That product does not exist in this workspace."})
    photo.product = product
    photo.save(update_fields=["product"])
    return photo


# Jobs ------------------------------------------------------------------------------------


def job_enqueue(*, photo: ProductPhoto, kind: str, task, params: dict | None = None) -> PhotoJob:
    """Create the job row (or return the live one of that kind, whatever its params) and send
    `task` (a Celery task taking the job id, owned by the app that does the work) once the row
    is committed."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                job = PhotoJob.objects.create(
                    workspace_id=photo.workspace_id, photo=photo, kind=kind, params=params or {}, task_name=task.name
                )
        except IntegrityError:
            return PhotoJob.objects.get(photo=photo, kind=kind, status__in=ACTIVE_JOB_STATUSES)
        transaction.on_commit(lambda: task.delay(job.pk))
    return job


# Workers ---------------------------------------------------------------------------------


def worker_heartbeat_record(*, hostname: str, queues: list[str]) -> None:
    WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"queues": queues, "seen_at": timezone.now()})
