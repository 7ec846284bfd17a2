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
#: Every worker looks for jobs whose worker died this often (there is no beat process to
#: run it; locked rows are skipped, so workers reaping at once do not collide).
REAP_EVERY_BEATS = 3


def _beat_forever(stop: threading.Event, hostname: str) -> None:
    # Imported late: the app registry is ready only once the worker has booted.
    from catalog.jobs import jobs_reap
    from catalog.services import worker_heartbeat_record

    queues = sorted(q.name for q in app.amqp.queues.consume_from.values()) if app.amqp.queues else []
    beats = 0
    while not stop.is_set():
        try:
            worker_heartbeat_record(hostname=hostname, queues=queues)
            if beats % REAP_EVERY_BEATS == 0:
                jobs_reap()
        except Exception:  # a database blip must not kill the worker; /healthz shows the gap
            logging.getLogger(__name__).warning("worker.heartbeat_failed", exc_info=True)
        beats += 1
        stop.wait(HEARTBEAT_SECONDS)


_stop_heartbeat = threading.Event()


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or socket.gethostname()
    threading.Thread(target=_beat_forever, args=(_stop_heartbeat, hostname), daemon=True).start()


@signals.worker_shutdown.connect
def _stop_heartbeat_thread(**kwargs) -> None:
    _stop_heartbeat.set()
