"""What a worker does for a catalog job (called by `catalog.tasks`)."""
from __future__ import annotations

import io
import logging
from typing import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from generation.decoding import UploadRejected, validate_image

from .files import delete_files, photo_dir, save_files
from .jobs import JobFailed
from .models import JobKind, ProductPhoto
from .signals import photo_decoded

logger = logging.getLogger(__name__)


def upload_limits() -> dict:
    """The upload rules' limits from settings, as `generation.decoding` takes them (the
    request's header check and the worker's full decode read the same numbers)."""
    return {
        "max_bytes": settings.VITRINE_UPLOAD_MAX_BYTES,
        "max_pixels": settings.VITRINE_UPLOAD_MAX_PIXELS,
        "max_icc_bytes": settings.VITRINE_UPLOAD_MAX_ICC_BYTES,
        "max_metadata_bytes": settings.VITRINE_UPLOAD_MAX_METADATA_BYTES,
    }


def photo_decode_make(*, photo: ProductPhoto, progress: Callable[..., None]) -> None:
    """Decode a large photo accepted on its header (the photo is checking) and store its
    working copy, with the same rules and code as an upload decoded in the request
    (`validate_image`); then queue what such an upload queues: the thumbnail here, and the
    apps' work through the `photo_decoded` signal (studio's cutout), in one transaction.

    A photo whose pixels cannot be read fails with the reason in the merchant's words (the
    words an upload decoded in the request is refused with); its original file is deleted
    and nothing downstream is queued."""
    from .services import job_enqueue  # services imports this module (through tasks)
    from .tasks import photo_thumbnail_task

    if photo.is_decoded:
        return  # a message delivered twice: the first run did it
    progress(5, "Checking the photo")
    try:
        with photo.original.open("rb") as fh:
            accepted = validate_image(fh, size_bytes=photo.original_bytes, working_max_side=settings.VITRINE_WORKING_MAX_SIDE, **upload_limits())
    except UploadRejected as rejected:
        photo_decode_reject(photo=photo, reason=rejected.message)
        raise JobFailed(rejected.message) from None
    if accepted.sha256 != photo.original_sha256:
        photo_decode_reject(photo=photo, reason=STORED_CHANGED)
        raise JobFailed(STORED_CHANGED)
    progress(80, "Storing the working copy")
    directory = photo_dir(workspace_id=photo.workspace_id, sha256=photo.original_sha256)
    stored = save_files([(f"{directory}/working.png", accepted.working_png)])
    try:
        with transaction.atomic():
            current = ProductPhoto.objects.select_for_update(no_key=True).filter(pk=photo.pk, working="").first()
            if current is None:  # decoded meanwhile by another run, or deleted
                delete_files(stored)
                return
            current.working = stored[0]
            current.working_sha256 = accepted.working_sha256
            current.width, current.height, current.has_alpha = accepted.width, accepted.height, accepted.has_alpha
            current.save(update_fields=["working", "working_sha256", "width", "height", "has_alpha"])
            job_enqueue(photo=current, kind=JobKind.THUMBNAIL, task=photo_thumbnail_task)
            photo_decoded.send(sender=ProductPhoto, photo=current)
    except BaseException:
        delete_files(stored)
        raise
    logger.info("catalog.photo.decoded", extra={"photo_id": photo.pk, "workspace_id": photo.workspace_id})


STORED_CHANGED = "The stored photo no longer matches the uploaded file, so it was not used. Upload it again."


def photo_decode_reject(*, photo: ProductPhoto, reason: str) -> None:
    """A large photo's pixels could not be read: its original file goes (nothing of a
    refused photo is kept but the row that tells the merchant why)."""
    name = photo.original.name
    ProductPhoto.objects.filter(pk=photo.pk).update(original="")
    photo.original.name = ""
    if name:
        delete_files([name])
    logger.info("catalog.photo.decode_failed", extra={"photo_id": photo.pk, "workspace_id": photo.workspace_id, "reason": reason})


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
    directory = photo_dir(workspace_id=photo.workspace_id, sha256=photo.original_sha256)
    name = default_storage.save(f"{directory}/thumbnail.webp", ContentFile(buffer.getvalue()))
    ProductPhoto.objects.filter(pk=photo.pk).update(thumbnail=name)
    photo.thumbnail.name = name
    if old and old != name:
        delete_files([old])
