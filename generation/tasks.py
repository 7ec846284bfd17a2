"""Thin Celery entry points of the generation app."""
from __future__ import annotations

from celery import Task, shared_task

from catalog.tasks import run_job

from .services import cutout_make


@shared_task(bind=True, acks_late=True)
def cutout_photo_task(self: Task, job_id: int) -> None:
    """Cut the product out of a photo (cpu queue)."""
    run_job(self, job_id, lambda job, progress: cutout_make(photo=job.photo, segmenter=job.params["segmenter"], progress=progress))
