"""What a worker does for a catalog job (called by `catalog.tasks`)."""
from __future__ import annotations

import io
from typing import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from .files import delete_files, photo_dir
from .models import ProductPhoto


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
