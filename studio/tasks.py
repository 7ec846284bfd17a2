"""Thin Celery entry points of the studio: take ids, re-fetch, guard, call the work."""
from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError

from catalog.jobs import JobStatus, run_job
from catalog.models import PhotoJob

from .dispatch import generation_jobs_dispatch
from .models import GenerationJob
from .reviews import regenerated_assets_submit
from .work import cutout_make, cutout_touch_up, generation_run, touch_up_upload_discard

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True)
def cutout_photo_task(self: Task, job_id: int) -> None:
    """Cut the product out of a photo (cpu queue)."""
    run_job(
        self, job_id, lambda job, progress: cutout_make(photo=job.photo, segmenter=job.params["segmenter"], progress=progress),
        model=PhotoJob,
    )


@shared_task(bind=True, acks_late=True)
def cutout_touch_up_task(self: Task, job_id: int) -> None:
    """Apply a merchant's brushed mask as the photo's next cutout revision (cpu queue)."""
    try:
        run_job(self, job_id, lambda job, progress: cutout_touch_up(job=job, progress=progress), model=PhotoJob)
    finally:
        # After every outcome, including a job cancelled before it started; a job queued
        # again for a retry keeps its mask (the discard checks).
        touch_up_upload_discard(job_id=job_id)


@shared_task(
    bind=True,
    acks_late=True,
    soft_time_limit=settings.VITRINE_GENERATION_SOFT_TIME_LIMIT,
    time_limit=settings.VITRINE_GENERATION_SOFT_TIME_LIMIT + 60,
)
def generate_scenes_task(self: Task, job_id: int) -> None:
    """Make a generation job's scenes (gpu queue; the model stays loaded in the worker)."""
    try:
        run_job(self, job_id, lambda job, progress: generation_run(job=job, progress=progress), model=GenerationJob)
        job = GenerationJob.objects.filter(pk=job_id, status=JobStatus.SUCCEEDED).select_related("created_by").first()
        if job is not None:
            regenerated_assets_submit(job=job)
    finally:
        # However it ended, a gpu slot may be free: send the next workspace's job. A database
        # blip here is not the job's failure; the workers' periodic dispatch catches up.
        try:
            generation_jobs_dispatch()
        except DatabaseError:
            logger.warning("generation.dispatch_failed", extra={"job_id": job_id}, exc_info=True)
