"""Where a photo's files live in storage, storing several files all or none, and removing
stored files on the way out."""
from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

logger = logging.getLogger(__name__)


def photo_dir(*, workspace_id: int, sha256: str) -> str:
    """The storage folder of one photo's files (original, working copy, thumbnail, cutouts)."""
    return f"photos/{workspace_id}/{sha256[:2]}/{sha256}"


def delete_files(names: list[str]) -> None:
    """Best effort: the row is the truth and no longer points at these files."""
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            logger.warning("storage.delete_failed", extra={"name": name}, exc_info=True)


def save_files(files: list[tuple[str, bytes]]) -> list[str]:
    """Store each (name, bytes) and return the names used; on any failure none remain.

    Each name is reserved before its write, so a write that fails half-way (a full disk)
    leaves no partial file behind under a name nobody knows: the reserved names are deleted
    whether or not their write finished."""
    reserved: list[str] = []
    used: list[str] = []
    try:
        for name, data in files:
            target = default_storage.get_available_name(name)
            reserved.append(target)
            saved = default_storage.save(target, ContentFile(data))
            if saved != target:  # another writer took the name in between
                reserved.append(saved)
            used.append(saved)
        return used
    except BaseException:
        delete_files(reserved)
        raise
