"""Where a photo's files live in storage, and removing stored files on the way out."""
from __future__ import annotations

import logging

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
