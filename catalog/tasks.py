"""Thin Celery entry points: take ids, re-fetch, guard, call a service."""
from __future__ import annotations

import logging
from typing import Callable

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from .models import Job, JobStatus
from .services import JobCancelled, JobFailed, JobWaiting, job_cancel, job_fail, job_progress, job_requeue, job_start, job_succeed, photo_thumbnail_make

logger = logging.getLogger(__name__)

# Failures worth another try: the database or storage blinked. Everything else is a fact
# about the input and fails the job at once with its reason.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 3

USER_ERROR = "Something went wrong while processing this photo. Try again; if it keeps failing, contact support."


def run_job(task: Task, job_id: int, work: Callable[[Job, Callable[[int], None]], None], *, model: type = Job) -> Job | None:
    """Drive one job row (`model`: Job or GenerationJob) through running → succeeded / failed /
    cancelled around `work`, retrying only transient errors, with backoff, a bounded number
    of times, and re-checking later when the work's input is not ready yet."""
    job = job_start(job_id=job_id, model=model)
    if job is None:
        logger.info("catalog.job.skipped", extra={"job_id": job_id})
        return None
    logger.info("catalog.job.started", extra={"job_id": job.pk, "kind": getattr(job, "kind", model.__name__)})
    try:
        work(job, lambda p: job_progress(job=job, progress=p))
    except TRANSIENT_ERRORS as exc:
        if task.request.retries >= MAX_RETRIES:
            job_fail(job=job, error=USER_ERROR)
            logger.exception("catalog.job.failed", extra={"job_id": job.pk})
            return job
        job_requeue(job=job)
        raise task.retry(exc=exc, countdown=2 ** task.request.retries, max_retries=MAX_RETRIES)
    except JobWaiting as exc:
        if task.request.retries >= exc.max_waits:
            job_fail(job=job, error=exc.message)
            return job
        job_requeue(job=job)
        raise task.retry(countdown=exc.countdown, max_retries=exc.max_waits)
    except JobCancelled:
        job_cancel(job=job, expected=(JobStatus.RUNNING,))
        logger.info("catalog.job.cancelled", extra={"job_id": job.pk})
        return job
    except JobFailed as exc:
        job_fail(job=job, error=exc.message)
        logger.info("catalog.job.failed", extra={"job_id": job.pk, "reason": exc.message})
        return job
    except Exception:
        job_fail(job=job, error=USER_ERROR)
        logger.exception("catalog.job.failed", extra={"job_id": job.pk})
        return job
    job_succeed(job=job)
    logger.info("catalog.job.succeeded", extra={"job_id": job.pk})
    return job


@shared_task(bind=True, acks_late=True)
def photo_thumbnail_task(self: Task, job_id: int) -> None:
    """Make a photo's thumbnail."""
    run_job(self, job_id, lambda job, progress: photo_thumbnail_make(photo=job.photo, progress=progress))
