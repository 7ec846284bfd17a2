"""The one job machinery: the abstract row every kind of background work is, its transitions,
and `run_job`, which drives a row around a piece of work inside a Celery task.

Thumbnails and cutouts (`catalog.PhotoJob`), touch-ups and scene generation
(`studio.GenerationJob`) are all rows of `JobRow`; none of them copies its fields or its
state machine. Each transition checks the current state under `select_for_update`, so a
redelivered message, a cancel racing a finish, or two workers never move a job twice."""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
ACTIVE = Q(status__in=[s.value for s in ACTIVE_JOB_STATUSES])


class JobRow(models.Model):
    """The truth about one piece of background work: what state it is in, how far it got,
    what it is doing now, why it failed, how often it was tried, and whether someone asked
    it to stop."""

    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=200, blank=True, help_text="what the job is doing now, for the progress bar")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES


Row = TypeVar("Row", bound=JobRow)


# What work tells the machinery -------------------------------------------------------------


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


# Transitions ------------------------------------------------------------------------------


def job_start(*, model: type[Row], job_id: int) -> Row | None:
    """queued → running. None when the job is gone or not queued (already handled, or
    cancelled): a redelivered message then does nothing."""
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != JobStatus.QUEUED:
            return None
        if job.cancel_requested:
            job.status, job.finished_at = JobStatus.CANCELLED, timezone.now()
            job.save(update_fields=["status", "finished_at"])
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.save(update_fields=["status", "attempts", "started_at"])
    return job


def job_progress(*, job: JobRow, progress: int, message: str | None = None) -> None:
    """Record progress (0–100) and, when given, what the job is doing now."""
    progress = max(0, min(100, int(progress)))
    fields: dict = {"progress": progress}
    if message is not None:
        fields["message"] = message[:200]
        job.message = fields["message"]
    type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(**fields)
    job.progress = progress


def job_cancel_requested(*, job: JobRow) -> bool:
    """Whether someone asked this running job to stop (read fresh from the database)."""
    return type(job).objects.filter(pk=job.pk, cancel_requested=True).exists()


def _job_finish(*, job: JobRow, status: str, error: str = "", expected: tuple[str, ...] = (JobStatus.RUNNING,)) -> bool:
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
    job.status, job.error, job.progress, job.finished_at = current.status, current.error, current.progress, current.finished_at
    return True


def job_succeed(*, job: JobRow) -> bool:
    return _job_finish(job=job, status=JobStatus.SUCCEEDED)


def job_fail(*, job: JobRow, error: str) -> bool:
    return _job_finish(job=job, status=JobStatus.FAILED, error=error)


def job_requeue(*, job: JobRow) -> bool:
    """running → queued, for a transient failure or missing input that will be retried."""
    return _job_finish(job=job, status=JobStatus.QUEUED)


def job_cancel(*, job: JobRow) -> JobRow:
    """A queued job is cancelled at once; a running one is asked to stop and does so at its
    next progress report. Finished jobs are left as they are."""
    if not _job_finish(job=job, status=JobStatus.CANCELLED, expected=(JobStatus.QUEUED,)):
        type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


# Driving a job inside a task ----------------------------------------------------------------

# Failures worth another try: the database or storage blinked. Everything else is a fact
# about the input and fails the job at once with its reason.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 3

USER_ERROR = "Something went wrong while processing this photo. Try again; if it keeps failing, contact support."

#: `work(job, progress)`: `progress(percent, message=None)` records how far it got.
Work = Callable[[Row, Callable[..., None]], object]


def run_job(task, job_id: int, work: Work, *, model: type[JobRow]) -> JobRow | None:
    """Drive one job row through running → succeeded / failed / cancelled around `work`,
    retrying only transient errors, with backoff, a bounded number of times, and
    re-checking later when the work's input is not ready yet."""
    job = job_start(model=model, job_id=job_id)
    name = model._meta.label
    if job is None:
        logger.info("job.skipped", extra={"job_id": job_id, "model": name})
        return None
    logger.info("job.started", extra={"job_id": job.pk, "model": name, "kind": getattr(job, "kind", "")})
    try:
        work(job, lambda percent, message=None: job_progress(job=job, progress=percent, message=message))
    except TRANSIENT_ERRORS as exc:
        if task.request.retries >= MAX_RETRIES:
            job_fail(job=job, error=USER_ERROR)
            logger.exception("job.failed", extra={"job_id": job.pk, "model": name})
            return job
        job_requeue(job=job)
        raise task.retry(exc=exc, countdown=2 ** task.request.retries, max_retries=MAX_RETRIES)
    except JobWaiting as exc:
        # Waiting is not an attempt: the work did not run.
        model.objects.filter(pk=job.pk).update(attempts=max(0, job.attempts - 1))
        if task.request.retries >= exc.max_waits:
            job_fail(job=job, error=exc.message)
            return job
        job_requeue(job=job)
        raise task.retry(countdown=exc.countdown, max_retries=exc.max_waits)
    except JobCancelled:
        _job_finish(job=job, status=JobStatus.CANCELLED)
        logger.info("job.cancelled", extra={"job_id": job.pk, "model": name})
        return job
    except JobFailed as exc:
        job_fail(job=job, error=exc.message)
        logger.info("job.failed", extra={"job_id": job.pk, "model": name, "reason": exc.message})
        return job
    except Exception:
        job_fail(job=job, error=USER_ERROR)
        logger.exception("job.failed", extra={"job_id": job.pk, "model": name})
        return job
    job_succeed(job=job)
    logger.info("job.succeeded", extra={"job_id": job.pk, "model": name})
    return job
