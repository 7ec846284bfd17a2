"""The one job machinery: the abstract row every kind of background work is, its transitions,
and `run_job`, which drives a row around a piece of work inside a Celery task.

Thumbnails and cutouts (`catalog.PhotoJob`), touch-ups and scene generation
(`studio.GenerationJob`) are all rows of `JobRow`; none of them copies its fields or its
state machine. Each transition checks the current state under `select_for_update`, so a
redelivered message, a cancel racing a finish, or two workers never move a job twice."""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Callable, TypeVar

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, models, transaction
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
    #: The Celery task that does the work, by name: the reaper sends it again after a crash.
    task_name = models.CharField(max_length=200, blank=True)
    #: Who runs it now ("host:pid") and until when, unless that worker renews the lease.
    #: A running row whose lease lapsed belongs to a worker that died.
    worker = models.CharField(max_length=255, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES

    @property
    def lease_lapsed(self) -> bool:
        return self.status == JobStatus.RUNNING and (self.lease_expires_at is None or self.lease_expires_at <= timezone.now())


Row = TypeVar("Row", bound=JobRow)


def job_models() -> list[type[JobRow]]:
    """Every concrete job table of the project (catalog's and the apps' above it)."""
    return [model for model in apps.get_models() if issubclass(model, JobRow)]


def worker_id() -> str:
    """This process, as a lease names it: a killed pool child and its restarted sibling differ."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_seconds() -> int:
    return settings.VITRINE_JOB_LEASE_SECONDS


# What work tells the machinery -------------------------------------------------------------


class JobFailed(Exception):
    """A job cannot succeed with this input; `message` is written on the job for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class JobCancelled(Exception):
    """The work stopped because someone cancelled the job."""


class JobLeased(Exception):
    """Another live worker holds this job's lease; look again once it could have lapsed."""

    def __init__(self, seconds: float):
        super().__init__(f"leased for another {seconds:.0f} s")
        self.seconds = seconds


class JobLeaseLost(Exception):
    """This worker's lease was taken over (it was presumed dead): stop without touching the row."""


class JobWaiting(Exception):
    """The job's input is not ready yet (e.g. the photo's cutout is still running): try again
    in `countdown` seconds, at most `max_waits` times, then fail with `message`."""

    def __init__(self, message: str, *, countdown: float = 3.0, max_waits: int = 200):
        super().__init__(message)
        self.message, self.countdown, self.max_waits = message, countdown, max_waits


# Transitions ------------------------------------------------------------------------------


def job_start(*, model: type[Row], job_id: int, worker: str | None = None) -> Row | None:
    """queued → running under a lease held by `worker`; or take over a running job whose
    lease lapsed (its worker died: the message came back). None when there is nothing to
    do: the job is gone, finished, cancelled, or failed here for having crashed its workers
    too often. Raises JobLeased while another worker's lease is still valid."""
    worker = worker or worker_id()
    now = timezone.now()
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in ACTIVE_JOB_STATUSES:
            return None
        if job.cancel_requested:
            job.status, job.finished_at, job.lease_expires_at = JobStatus.CANCELLED, now, None
            job.save(update_fields=["status", "finished_at", "lease_expires_at"])
            return None
        if job.status == JobStatus.RUNNING:
            if not job.lease_lapsed:
                raise JobLeased((job.lease_expires_at - now).total_seconds())
            if job.attempts >= settings.VITRINE_JOB_MAX_ATTEMPTS:
                _crashed_too_often(job, now)
                return None
            logger.warning("job.taken_over", extra={"job_id": job.pk, "model": model._meta.label, "from": job.worker})
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = now
        job.worker = worker
        job.lease_expires_at = now + timedelta(seconds=_lease_seconds())
        job.save(update_fields=["status", "attempts", "started_at", "worker", "lease_expires_at"])
    return job


CRASHED = "The worker making this stopped unexpectedly {n} times (for example out of memory or a restart). Try again; if it keeps happening, contact support."


def _crashed_too_often(job: JobRow, now) -> None:
    job.status, job.finished_at, job.lease_expires_at = JobStatus.FAILED, now, None
    job.error = CRASHED.format(n=job.attempts)
    job.save(update_fields=["status", "finished_at", "lease_expires_at", "error"])
    logger.error("job.crashed_too_often", extra={"job_id": job.pk, "model": type(job)._meta.label, "attempts": job.attempts})


def job_lease_renew(*, job: JobRow) -> bool:
    """Extend this worker's lease; False when the job is no longer ours (taken over, or it
    ended)."""
    renewed = type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker=job.worker).update(
        lease_expires_at=timezone.now() + timedelta(seconds=_lease_seconds())
    )
    return renewed == 1


def jobs_reap() -> int:
    """Requeue running jobs whose lease lapsed (their worker died and no message came back)
    and send their task again; a job that crashed its workers too often fails with a reason.
    Safe to run from every worker at once (locked rows are skipped). Returns how many moved."""
    moved = 0
    now = timezone.now()
    for model in job_models():
        with transaction.atomic():
            lapsed = model.objects.select_for_update(skip_locked=True).filter(
                Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True), status=JobStatus.RUNNING
            )
            for job in lapsed:
                moved += 1
                if job.cancel_requested:
                    job.status, job.finished_at, job.lease_expires_at = JobStatus.CANCELLED, now, None
                    job.save(update_fields=["status", "finished_at", "lease_expires_at"])
                    continue
                if job.attempts >= settings.VITRINE_JOB_MAX_ATTEMPTS or not job.task_name:
                    _crashed_too_often(job, now)
                    continue
                job.status, job.worker, job.lease_expires_at = JobStatus.QUEUED, "", None
                job.save(update_fields=["status", "worker", "lease_expires_at"])
                transaction.on_commit(lambda name=job.task_name, pk=job.pk: task_send(name, pk))
                logger.warning("job.reaped", extra={"job_id": job.pk, "model": model._meta.label})
    return moved


def task_send(task_name: str, job_id: int) -> None:
    """Send a job's task by the name its row records, from Celery's registry (eager in tests,
    like `.delay`): catalog never imports the apps that own the tasks."""
    task = current_app.tasks.get(task_name)
    if task is not None:
        task.apply_async(args=[job_id])
    else:
        current_app.send_task(task_name, args=[job_id])


def job_progress(*, job: JobRow, progress: int, message: str | None = None) -> None:
    """Record progress (0–100) and, when given, what the job is doing now; renews the lease."""
    progress = max(0, min(100, int(progress)))
    fields: dict = {"progress": progress, "lease_expires_at": timezone.now() + timedelta(seconds=_lease_seconds())}
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
        if current.status == JobStatus.RUNNING and job.worker and current.worker != job.worker:
            return False  # another worker took it over; its run decides
        current.worker = "" if status == JobStatus.QUEUED else current.worker
        current.status = status
        current.error = error
        current.finished_at = timezone.now() if status != JobStatus.QUEUED else None
        current.lease_expires_at = None
        if status == JobStatus.SUCCEEDED:
            current.progress = 100
        current.save(update_fields=["status", "error", "finished_at", "progress", "lease_expires_at", "worker"])
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
    """A queued job, or a running one whose worker is gone (lapsed lease), is cancelled at
    once; a running one is asked to stop and does so at its next progress report. Finished
    jobs are left as they are."""
    model = type(job)
    with transaction.atomic():
        current = model.objects.select_for_update().get(pk=job.pk)
        if current.status == JobStatus.QUEUED or current.lease_lapsed:
            current.status, current.finished_at, current.lease_expires_at = JobStatus.CANCELLED, timezone.now(), None
            current.save(update_fields=["status", "finished_at", "lease_expires_at"])
        elif current.status == JobStatus.RUNNING:
            current.cancel_requested = True
            current.save(update_fields=["cancel_requested"])
    job.refresh_from_db()
    return job


# Driving a job inside a task ----------------------------------------------------------------

# Failures worth another try: the database or storage blinked. Everything else is a fact
# about the input and fails the job at once with its reason.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 3
#: How often a message for a job leased elsewhere comes back before it is dropped.
LEASED_RETRIES = 60

USER_ERROR = "Something went wrong while processing this photo. Try again; if it keeps failing, contact support."

#: `work(job, progress)`: `progress(percent, message=None)` records how far it got.
Work = Callable[[Row, Callable[..., None]], object]


class _LeaseKeeper(threading.Thread):
    """Renews a running job's lease while its work runs, so a long step without progress
    reports (loading a model, one big segmentation) does not look like a dead worker."""

    def __init__(self, job: JobRow):
        super().__init__(daemon=True, name=f"lease-{job.pk}")
        self.job, self.stopped, self.lost = job, threading.Event(), False

    def run(self) -> None:
        try:
            while not self.stopped.wait(max(1.0, _lease_seconds() / 3)):
                try:
                    if not job_lease_renew(job=self.job):
                        self.lost = True
                        return
                except Exception:  # a database blip: the next round tries again
                    logger.warning("job.lease_renew_failed", extra={"job_id": self.job.pk}, exc_info=True)
        finally:
            connection.close()  # this thread's own connection


def run_job(task, job_id: int, work: Work, *, model: type[JobRow]) -> JobRow | None:
    """Drive one job row through running → succeeded / failed / cancelled around `work`,
    under a lease this worker renews, retrying only transient errors, with backoff, a
    bounded number of times, and re-checking later when the work's input is not ready yet.
    A message for a job another live worker holds comes back when that lease could lapse."""
    name = model._meta.label
    try:
        job = job_start(model=model, job_id=job_id)
    except JobLeased as exc:
        if task.request.retries >= LEASED_RETRIES:
            return None  # the reaper still requeues it if that worker died
        raise task.retry(countdown=exc.seconds + 1, max_retries=LEASED_RETRIES)
    if job is None:
        logger.info("job.skipped", extra={"job_id": job_id, "model": name})
        return None
    logger.info("job.started", extra={"job_id": job.pk, "model": name, "kind": getattr(job, "kind", ""), "attempt": job.attempts})
    # Eager runs (tests, `stage`) share the caller's transaction: a second connection could
    # not see the row, and nobody else can take the job over anyway.
    keeper = None if task.request.is_eager else _LeaseKeeper(job)

    def progress(percent, message=None):
        if keeper is not None and keeper.lost:
            raise JobLeaseLost()
        job_progress(job=job, progress=percent, message=message)

    if keeper is not None:
        keeper.start()
    try:
        work(job, progress)
    except JobLeaseLost:
        logger.warning("job.lease_lost", extra={"job_id": job.pk, "model": name})
        return None
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
    finally:
        if keeper is not None:
            keeper.stopped.set()
    job_succeed(job=job)
    logger.info("job.succeeded", extra={"job_id": job.pk, "model": name})
    return job
