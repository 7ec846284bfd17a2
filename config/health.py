"""GET /healthz: is each part of Vitrine answering? 200 when the database, broker and storage
are; workers are reported (a web node can be healthy while workers restart), and so are the
jobs: running rows whose lease lapsed (their worker died and nothing has requeued them yet),
per job table, and the age of the oldest queued job per queue. No worker alive, or a lapsed
lease, answers 200 with "degraded": restarting the web process would not fix either.

Anyone gets only the status line, {"status": "ok" | "degraded" | "down"}, with the same HTTP
code: worker hostnames, queue names, the database vendor and error texts are for a staff
session or `Authorization: Bearer <VITRINE_HEALTH_TOKEN>`. The storage check writes and
deletes a file, so it runs at most every VITRINE_HEALTH_STORAGE_SECONDS per process and its
last result answers in between (probes call every few seconds)."""
import hmac
import threading
import time
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _timed(check):
    started = time.perf_counter()
    try:
        detail = check()
        result = {"ok": True}
        if detail:
            result.update(detail)
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _broker():
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {"transport": conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_type}


def _storage():
    name = default_storage.save(f"healthz/{uuid.uuid4().hex}", ContentFile(b"ok"))
    default_storage.delete(name)
    return {"backend": settings.STORAGE_BACKEND}


class _StorageCheck:
    """The last storage check's result, reused for VITRINE_HEALTH_STORAGE_SECONDS. One lock per
    process, so a burst of probes makes one write, not one each."""

    def __init__(self):
        self._lock = threading.Lock()
        self._result: dict | None = None
        self._at = 0.0

    def __call__(self) -> dict:
        with self._lock:
            now = time.monotonic()
            if self._result is None or now - self._at >= settings.VITRINE_HEALTH_STORAGE_SECONDS:
                self._result, self._at = _timed(_storage), now
                self._result["checked_seconds_ago"] = 0.0
                return dict(self._result)
            return {**self._result, "checked_seconds_ago": round(now - self._at, 1)}

    def forget(self) -> None:
        """Drop the remembered result (tests; a changed storage setting)."""
        with self._lock:
            self._result = None


storage_check = _StorageCheck()


def _may_see_details(request) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active and user.is_staff:
        return True
    token = settings.VITRINE_HEALTH_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _workers():
    from catalog.models import WorkerHeartbeat

    cutoff = timezone.now() - timezone.timedelta(seconds=settings.VITRINE_WORKER_STALE_SECONDS)
    alive = list(WorkerHeartbeat.objects.filter(seen_at__gte=cutoff).values("hostname", "queues", "seen_at"))
    if not alive:
        raise RuntimeError("no worker has reported in the last %d s" % settings.VITRINE_WORKER_STALE_SECONDS)
    return {"count": len(alive), "workers": [{"hostname": w["hostname"], "queues": w["queues"]} for w in alive]}


def _now():
    return timezone.now()


def _queue_of(task_name: str) -> str:
    """The queue a job row's task goes to: CELERY_TASK_ROUTES by the row's task name, else the
    default queue (rows without a task name included)."""
    route = settings.CELERY_TASK_ROUTES.get(task_name) if task_name else None
    return (route or {}).get("queue") or settings.CELERY_TASK_DEFAULT_QUEUE


def _jobs():
    from django.db.models import Min, Q

    from catalog.jobs import JobStatus, job_models
    from config.celery import Queue

    now = _now()
    lapsed: dict[str, int] = {}
    oldest: dict[str, float | None] = {queue.value: None for queue in Queue}
    for model in sorted(job_models(), key=lambda m: m._meta.label):
        # The same test as JobRow.lease_lapsed, in SQL.
        lapsed[model._meta.label] = model.objects.filter(
            Q(lease_expires_at__lte=now) | Q(lease_expires_at__isnull=True), status=JobStatus.RUNNING
        ).count()
        queued = model.objects.filter(status=JobStatus.QUEUED).order_by().values("task_name").annotate(oldest=Min("created_at"))
        for row in queued:
            queue = _queue_of(row["task_name"])
            age = max(0.0, round((now - row["oldest"]).total_seconds(), 1))
            oldest[queue] = age if oldest.get(queue) is None else max(oldest[queue], age)
    return {"lapsed_leases": lapsed, "oldest_queued_seconds": oldest}


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _timed(_database), "broker": _timed(_broker), "storage": storage_check()}
    checks["workers"] = _timed(_workers) if checks["database"]["ok"] else {"ok": False, "error": "database unavailable"}
    core_ok = all(checks[name]["ok"] for name in ("database", "broker", "storage"))
    jobs = _timed(_jobs) if checks["database"]["ok"] else {"ok": False, "error": "database unavailable"}
    if jobs["ok"]:
        jobs["ok"] = not any(jobs["lapsed_leases"].values())
    healthy = core_ok and checks["workers"]["ok"] and jobs["ok"]
    body = {"status": "ok" if healthy else ("degraded" if core_ok else "down")}
    if _may_see_details(request):
        body.update(checks=checks, jobs=jobs)
    return JsonResponse(body, status=200 if core_ok else 503)
