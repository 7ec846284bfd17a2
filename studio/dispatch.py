"""Fair dispatch of scene generation to the gpu queue: workspaces take turns.

A generation job is created queued but *undispatched* (`dispatched_at` is null): its task is
not yet on the broker. `generation_jobs_dispatch` keeps at most `VITRINE_GPU_IN_FLIGHT`
dispatched-but-unfinished jobs on the broker and, for each free slot, sends the next job of
the workspace whose most recent dispatch is the oldest (a workspace never dispatched goes
first), oldest job first within a workspace. So a workspace that queued 500 jobs has at most
its share of the slots, and another workspace's single job waits for about one job, not 500.

It runs when a job is created (on commit), after every generation task (whatever the
outcome), and from every worker's heartbeat loop as a safety net. Dispatchers serialize on a
lock (a PostgreSQL advisory lock; SQLite transactions are serialized already by
`transaction_mode=IMMEDIATE`), so concurrent ones never exceed the limit.

Below `studio.tasks` (which calls it): tasks are sent by the name each row records."""
from __future__ import annotations

import logging
import zlib
from datetime import datetime
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from catalog.jobs import ACTIVE, JobStatus, task_send

from .models import GenerationJob

logger = logging.getLogger(__name__)

#: The PostgreSQL advisory lock every dispatcher takes (any fixed 64-bit number).
LOCK_KEY = zlib.crc32(b"vitrine.studio.dispatch")


def _lock() -> None:
    """Hold the dispatch lock until the current transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
    # SQLite: the transaction began IMMEDIATE and holds the database's write lock already.


def _in_flight() -> int:
    """Jobs on the broker or running: dispatched and not finished."""
    return GenerationJob.objects.filter(ACTIVE, dispatched_at__isnull=False).count()


def _next_job() -> GenerationJob | None:
    """The oldest waiting job of the workspace whose turn it is."""
    waiting = GenerationJob.objects.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True, cancel_requested=False)
    workspace_ids = list(waiting.order_by().values_list("workspace_id", flat=True).distinct())
    if not workspace_ids:
        return None
    last = dict(
        GenerationJob.objects.filter(workspace_id__in=workspace_ids, dispatched_at__isnull=False)
        .order_by().values("workspace_id").annotate(last=Max("dispatched_at")).values_list("workspace_id", "last")
    )
    oldest = {
        workspace_id: waiting.filter(workspace_id=workspace_id).order_by("created_at", "pk").first()
        for workspace_id in workspace_ids
    }
    # Never dispatched before sorts first; ties go to the workspace whose waiting job is oldest.
    epoch = datetime.min.replace(tzinfo=dt_timezone.utc)
    turn = min(workspace_ids, key=lambda w: (last.get(w) or epoch, oldest[w].created_at, oldest[w].pk))
    return oldest[turn]


def _send(task_name: str, job_id: int) -> None:
    """Send the job's task; when the broker refuses it, the job goes back to waiting, so a
    failed send never holds a slot."""
    try:
        task_send(task_name, job_id)
    except Exception:
        GenerationJob.objects.filter(pk=job_id, status=JobStatus.QUEUED, started_at__isnull=True).update(dispatched_at=None)
        raise


def _send_all(jobs: list[tuple[str, int]]) -> None:
    """Send every job even when one send fails (each failure is undone), then raise the first."""
    failed: list[Exception] = []
    for task_name, job_id in jobs:
        try:
            _send(task_name, job_id)
        except Exception as exc:
            failed.append(exc)
    if failed:
        raise failed[0]


def generation_jobs_dispatch() -> list[int]:
    """Send waiting generation jobs to the gpu queue, workspaces in turn, until
    `VITRINE_GPU_IN_FLIGHT` are on the broker or running. Returns the ids sent (each is sent
    once its transaction commits). A dispatched job whose message the broker lost is sent
    again by `catalog.jobs.jobs_resend_lost` (it reads `dispatched_at` for this table)."""
    limit = settings.VITRINE_GPU_IN_FLIGHT
    sent: list[int] = []
    with transaction.atomic():
        _lock()
        to_send: list[tuple[str, int]] = []
        free = limit - _in_flight()
        while free > 0:
            job = _next_job()
            if job is None:
                break
            now = timezone.now()
            # The row's own state decides: a job cancelled a moment ago is not sent.
            if GenerationJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED, dispatched_at__isnull=True).update(dispatched_at=now) != 1:
                continue
            to_send.append((job.task_name, job.pk))
            sent.append(job.pk)
            free -= 1
        if to_send:
            transaction.on_commit(lambda: _send_all(to_send))
    if sent:
        logger.info("generation.jobs.dispatched", extra={"job_ids": sent})
    return sent
