"""The one job machinery: the abstract row every kind of background work is, its transitions,
and `run_job`, which drives a row around a piece of work inside a Celery task.

Thumbnails and cutouts (`catalog.PhotoJob`), touch-ups and scene generation
(`studio.GenerationJob`) are all rows of `JobRow`; none of them copies its fields or its
state machine. Each transition checks the current state under `select_for_update`, so a
redelivered message, a cancel racing a finish, or two workers never move a job twice.

What a crash can lose, and what brings it back: a worker that dies mid-job leaves a running
row whose lease lapses (`jobs_reap` requeues it); a broker that loses messages (Redis
restarted without persistence, a worker killed while holding prefetched messages on the
filesystem broker) leaves queued rows nobody will ever take (`jobs_resend_lost` sends them
again). Both run from every worker's heartbeat loop; `job_start` makes a duplicate message
harmless."""
from __future__ import annotations

import errno
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
from django.db.models import F, Q
from django.utils import timezone

from catalog.errors_text import without_paths

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
    #: A running row whose lease lapsed belongs to a worker that died. On a queued row that
    #: was sent again (requeued, retried, re-sent) the same column says when its message
    #: counts as lost if no worker took it up by then (`jobs_resend_lost`).
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
        job = model.objects.select_for_update(no_key=True).filter(pk=job_id).first()
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
            lapsed = model.objects.select_for_update(skip_locked=True, no_key=True).filter(
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
                job.status, job.worker, job.lease_expires_at = JobStatus.QUEUED, "", _delivery_deadline(now)
                job.save(update_fields=["status", "worker", "lease_expires_at"])
                transaction.on_commit(lambda name=job.task_name, pk=job.pk: task_send(name, pk))
                logger.warning("job.reaped", extra={"job_id": job.pk, "model": model._meta.label})
    return moved


def _resend_seconds() -> int:
    return settings.VITRINE_JOB_RESEND_SECONDS


def _delivery_deadline(now):
    """When a message sent now counts as lost if its job is still queued."""
    return now + timedelta(seconds=_resend_seconds())


#: At most this many lost messages are sent again per queue and pass (a broker that lost a
#: queue of thousands is refilled over a few passes, not in one burst).
RESEND_BATCH = 100


def _queue_of(task_name: str) -> str:
    route = settings.CELERY_TASK_ROUTES.get(task_name) or {}
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


def _sent_at_field(model: type[JobRow]) -> str:
    """The column that says when a never-started row's task went to the broker. A job table
    whose rows wait for a dispatcher (scene generation: workspaces take turns) marks the sent
    ones with `dispatched_at`; its other rows are not on the broker and are not lost."""
    names = {field.name for field in model._meta.get_fields()}
    return "dispatched_at" if "dispatched_at" in names else "created_at"


def _waiting_messages(queues: set[str]) -> dict[str, int] | None:
    """Messages waiting on each broker queue (not those a worker holds); None when the
    broker does not answer (then nothing is presumed lost)."""
    from kombu.exceptions import ChannelError

    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            counts = {}
            for queue in queues:
                try:
                    counts[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:  # Redis drops an empty queue's key: nothing waits
                    counts[queue] = 0
            return counts
    except Exception:
        logger.warning("job.resend_broker_unreachable", exc_info=True)
        return None


def jobs_resend_lost() -> int:
    """Send again the task of queued jobs whose message the broker lost, and return how
    many were sent.

    A queued row is *overdue* once `VITRINE_JOB_RESEND_SECONDS` passed since its task was
    sent (its creation, its dispatch, or its requeue) without any worker taking it up. Being
    overdue alone does not prove the message lost (a long backlog is overdue too), so per
    broker queue only as many overdue rows are re-sent as the queue is short of messages:
    sent-but-queued rows minus messages waiting. The oldest go first (the broker hands
    messages out in order, so a lost one is older than those still waiting). Each re-sent
    row is overdue again only after another period, and at most `RESEND_BATCH` go per queue
    and pass. A duplicate message is harmless: `job_start` runs a job only from queued, and
    a row another worker holds sends its message back until that lease could lapse."""
    now = timezone.now()
    overdue_by_queue: dict[str, list[tuple]] = {}
    sent_by_queue: dict[str, int] = {}
    for model in job_models():
        sent_at = _sent_at_field(model)
        sent = model.objects.filter(status=JobStatus.QUEUED, cancel_requested=False).exclude(task_name="")
        if sent_at != "created_at":
            sent = sent.filter(**{f"{sent_at}__isnull": False})
        for task_name, count in sent.order_by().values_list("task_name").annotate(n=models.Count("pk")):
            queue = _queue_of(task_name)
            sent_by_queue[queue] = sent_by_queue.get(queue, 0) + count
        overdue = sent.filter(
            Q(lease_expires_at__lt=now)
            | Q(lease_expires_at__isnull=True, **{f"{sent_at}__lt": now - timedelta(seconds=_resend_seconds())})
        ).annotate(sent=F(sent_at)).order_by("lease_expires_at", "sent", "pk")
        for pk, task_name, due, sent_time in overdue.values_list("pk", "task_name", "lease_expires_at", "sent")[: RESEND_BATCH * 4]:
            overdue_by_queue.setdefault(_queue_of(task_name), []).append((due or sent_time, model, pk, task_name))
    if not overdue_by_queue:
        return 0
    waiting = _waiting_messages(set(overdue_by_queue))
    if waiting is None:
        return 0
    resent = 0
    for queue, overdue in overdue_by_queue.items():
        missing = min(sent_by_queue.get(queue, 0) - waiting.get(queue, 0), RESEND_BATCH)
        for _, model, pk, task_name in sorted(overdue, key=lambda row: (row[0], row[2]))[: max(0, missing)]:
            # Only a row still queued and still overdue (another worker's pass may have sent
            # it a moment ago) is sent, once, and is due again one period later.
            claimed = model.objects.filter(pk=pk, status=JobStatus.QUEUED).filter(
                Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
            ).update(lease_expires_at=_delivery_deadline(now))
            if claimed != 1:
                continue
            try:
                task_send(task_name, pk)
            except Exception:
                model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(lease_expires_at=now)  # the next pass tries again
                logger.warning("job.resend_failed", extra={"job_id": pk, "model": model._meta.label}, exc_info=True)
                continue
            resent += 1
            logger.warning("job.resent", extra={"job_id": pk, "model": model._meta.label, "queue": queue})
    return resent


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
        current = type(job).objects.select_for_update(no_key=True).get(pk=job.pk)
        if current.status not in expected:
            return False
        if current.status == JobStatus.RUNNING and job.worker and current.worker != job.worker:
            return False  # another worker took it over; its run decides
        current.worker = "" if status == JobStatus.QUEUED else current.worker
        current.status = status
        current.error = without_paths(error)  # people read it: no server paths, no tracebacks
        current.finished_at = timezone.now() if status != JobStatus.QUEUED else None
        # Requeued for a retry: its next message counts as lost if it never arrives.
        current.lease_expires_at = _delivery_deadline(timezone.now()) if status == JobStatus.QUEUED else None
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
        current = model.objects.select_for_update(no_key=True).get(pk=job.pk)
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

#: Storage refusing writes. Read-only or failing I/O may come back in seconds (a volume
#: remounted, a network store blinking): retried like the database, then the job fails with
#: STORAGE_ERROR. Full, over quota or too large waits for a person: it fails at once.
STORAGE_RETRY_ERRNOS = frozenset({errno.EROFS, errno.EIO})
STORAGE_ERRNOS = STORAGE_RETRY_ERRNOS | {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
STORAGE_ERROR = (
    "The images could not be saved: file storage is refusing writes ({reason}). Nothing was kept. "
    "Try again later; if it keeps failing, contact support."
)


def _storage_refused(exc: BaseException, errnos: frozenset[int] = STORAGE_ERRNOS) -> bool:
    return isinstance(exc, OSError) and exc.errno in errnos


def _failure_reason(exc: BaseException) -> str:
    if _storage_refused(exc):
        return STORAGE_ERROR.format(reason=exc.strerror or type(exc).__name__)
    return USER_ERROR


def _drop_broken_connection() -> None:
    """After the database went away mid-task, let the next query connect again (Django
    keeps a dead connection until a request or task ends), so the retry can be recorded."""
    if connection.connection is None or connection.in_atomic_block:
        return
    if not connection.is_usable():
        connection.close()


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
                except Exception:  # a database blip: the next round tries again, on a new connection
                    logger.warning("job.lease_renew_failed", extra={"job_id": self.job.pk}, exc_info=True)
                    connection.close()
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
        return _retry_transient(task, job, exc)
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
    except Exception as exc:
        if _storage_refused(exc, STORAGE_RETRY_ERRNOS):
            return _retry_transient(task, job, exc)
        job_fail(job=job, error=_failure_reason(exc))
        logger.exception("job.failed", extra={"job_id": job.pk, "model": name})
        return job
    finally:
        if keeper is not None:
            keeper.stopped.set()
    job_succeed(job=job)
    logger.info("job.succeeded", extra={"job_id": job.pk, "model": name})
    return job


def _retry_transient(task, job: JobRow, exc: BaseException) -> JobRow:
    """The database or storage blinked: the job goes back to queued and its task comes back
    with backoff, `MAX_RETRIES` times; then it fails with the reason in words."""
    name = type(job)._meta.label
    _drop_broken_connection()
    if task.request.retries >= MAX_RETRIES:
        job_fail(job=job, error=_failure_reason(exc))
        logger.exception("job.failed", extra={"job_id": job.pk, "model": name})
        return job
    try:
        job_requeue(job=job)
    except TRANSIENT_ERRORS:
        # Still no database: the row stays running under this lease, which lapses now that
        # the keeper stops; the retry (or the reaper) takes the job over then.
        logger.warning("job.requeue_failed", extra={"job_id": job.pk, "model": name}, exc_info=True)
    raise task.retry(exc=exc, countdown=2 ** task.request.retries, max_retries=MAX_RETRIES)
