"""Thin Celery entry points: take ids, re-fetch, guard, call the work."""
from __future__ import annotations

from celery import Task, shared_task

from .jobs import run_job
from .models import PhotoJob
from .work import photo_decode_make, photo_thumbnail_make


@shared_task(bind=True, acks_late=True)
def photo_decode_task(self: Task, job_id: int) -> None:
    """Decode a large photo and make its working copy (cpu queue)."""
    run_job(self, job_id, lambda job, progress: photo_decode_make(photo=job.photo, progress=progress), model=PhotoJob)


@shared_task(bind=True, acks_late=True)
def photo_thumbnail_task(self: Task, job_id: int) -> None:
    """Make a photo's thumbnail (cpu queue)."""
    run_job(self, job_id, lambda job, progress: photo_thumbnail_make(photo=job.photo, progress=progress), model=PhotoJob)
