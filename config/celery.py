"""The Celery app, its queues, and the worker heartbeat that /healthz reads."""
import enum
import logging
import os
import socket
import threading

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


class Queue(enum.StrEnum):
    """Queues by kind of work; the one place their names are written."""

    CPU = "cpu"  # cutouts, thumbnails, QA
    GPU = "gpu"  # scene generation; model resident; concurrency 1 per GPU
    IO = "io"  # storefront export and sync


app = Celery("vitrine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_SECONDS = 10


def _beat_forever(stop: threading.Event, hostname: str) -> None:
    """Write this worker's heartbeat, look for jobs whose worker died and for queued jobs
    whose message the broker lost, and (an io worker) queue the storefront syncs that are due
    (there is no beat process to do it; locked rows are skipped, so workers reaping at once do
    not collide)."""
    # Imported late: the app registry is ready only once the worker has booted.
    import time

    from django.conf import settings
    from django.db import connection

    from catalog.jobs import jobs_reap, jobs_resend_lost
    from catalog.services import worker_heartbeat_record
    from storefront.sync import sync_due
    from studio.dispatch import generation_jobs_dispatch

    queues = _consumed_queues()
    reap_every = settings.VITRINE_JOB_REAP_SECONDS
    next_beat = next_reap = 0.0
    while not stop.is_set():
        now = time.monotonic()
        try:
            if now >= next_beat:
                worker_heartbeat_record(hostname=hostname, queues=queues)
                next_beat = now + HEARTBEAT_SECONDS
            if now >= next_reap:
                jobs_reap()
                generation_jobs_dispatch()  # a gpu slot freed with no task to notice
                jobs_resend_lost()
                if Queue.IO.value in queues:
                    sync_due()  # scheduled storefront syncs, and runs whose message was lost
                next_reap = now + reap_every
        except Exception:  # a database blip must not kill the worker; /healthz shows the gap
            logging.getLogger(__name__).warning("worker.heartbeat_failed", exc_info=True)
            # Django keeps a connection the database dropped until a request ends, and this
            # thread has none: without this every later round would fail on it.
            connection.close()
        stop.wait(max(0.5, min(next_beat, next_reap) - time.monotonic()))


_stop_heartbeat = threading.Event()


def heartbeat_id(nodename: str | None, pid: int | None = None) -> str:
    """How a worker names itself in its heartbeat row: Celery's node name (`-n gpu@%h`; the
    default `celery@<host>` is the same for every worker on a host) and the worker's pid, so
    that two workers on one host never share (and overwrite) one row."""
    return f"{nodename or 'celery@' + socket.gethostname()}:{os.getpid() if pid is None else pid}"


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    hostname = heartbeat_id(getattr(sender, "hostname", None))
    threading.Thread(target=_beat_forever, args=(_stop_heartbeat, hostname), daemon=True).start()


@signals.worker_shutdown.connect
def _stop_heartbeat_thread(**kwargs) -> None:
    _stop_heartbeat.set()


def _consumed_queues() -> list[str]:
    return sorted(app.amqp.queues.consume_from) if app.amqp.queues else []


@signals.worker_init.connect
def _gpu_warm_up_at_start(sender=None, **kwargs) -> None:
    """GPU warm-up (generation.pipelines.warmup) happens before the worker takes work: in
    each prefork pool process as it starts (below), given the time to compile; a solo or
    threads pool warms up here, in the worker's own process."""
    from generation.pipelines.warmup import may_warm_up, warm_up_timeout, warm_up_worker

    queues = _consumed_queues()
    if not may_warm_up(queues):  # torch-free: CUDA is not touched before the fork
        return
    pool = getattr(sender, "pool_cls", "prefork")
    if (pool if isinstance(pool, str) else getattr(pool, "__module__", "")).rsplit(".", 1)[-1] in ("solo", "threads"):
        warm_up_worker(queues)
    else:
        sender.app.conf.worker_proc_alive_timeout = max(sender.app.conf.worker_proc_alive_timeout or 4.0, warm_up_timeout())


@signals.worker_process_init.connect
def _gpu_warm_up_pool_process(**kwargs) -> None:
    from generation.pipelines.warmup import warm_up_worker

    warm_up_worker(_consumed_queues())
