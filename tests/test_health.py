import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from catalog.services import worker_heartbeat_record

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
HEALTH_TOKEN = "probe-secret-for-tests"


@pytest.fixture(autouse=True)
def _health_details(settings):
    """These tests read the details: they send the configured health token (the anonymous
    answer is tested in tests/test_security_doors.py). Each starts without a remembered
    storage check."""
    from config.health import storage_check

    settings.VITRINE_HEALTH_TOKEN = HEALTH_TOKEN
    storage_check.forget()
    yield
    storage_check.forget()


@pytest.fixture
def client(client):
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {HEALTH_TOKEN}"
    return client


def test_healthz_reports_each_part_and_a_missing_worker(client):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "storage": True,
        "workers": False,
    }
    assert body["status"] == "degraded"


def test_healthz_is_ok_with_a_fresh_worker_heartbeat(client):
    worker_heartbeat_record(hostname="celery@gpu-1", queues=["gpu"])

    body = client.get("/healthz").json()

    assert body["status"] == "ok"
    assert body["checks"]["workers"]["workers"] == [{"hostname": "celery@gpu-1", "queues": ["gpu"]}]


def test_healthz_ignores_a_stale_heartbeat(client, settings):
    from catalog.models import WorkerHeartbeat

    WorkerHeartbeat.objects.create(hostname="celery@old", queues=["cpu"], seen_at=timezone.now() - timezone.timedelta(minutes=10))

    assert client.get("/healthz").json()["checks"]["workers"]["ok"] is False


def test_healthz_is_503_when_storage_fails(client, monkeypatch):
    from django.core.files.storage import default_storage

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(default_storage, "save", refuse)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["checks"]["storage"]["error"] == "PermissionError: read-only file system"


@pytest.fixture
def photo(workspace):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from catalog.models import PhotoJob
    from catalog.services import photo_upload
    from tests.images import image_bytes

    photo = photo_upload(workspace=workspace, file=SimpleUploadedFile("bottle.jpg", image_bytes("JPEG", size=(64, 48)))).photo
    PhotoJob.objects.all().delete()  # the upload's own jobs; each test writes the rows it counts
    return photo


@pytest.fixture
def frozen_now(monkeypatch):
    now = timezone.now().replace(microsecond=0)
    monkeypatch.setattr("config.health._now", lambda: now)
    return now


def test_healthz_reports_lapsed_leases_per_table_and_the_oldest_queued_job_per_queue(client, photo, frozen_now):
    from catalog.jobs import JobStatus
    from catalog.models import PhotoJob
    from studio.models import GenerationJob

    ago = lambda seconds: frozen_now - timezone.timedelta(seconds=seconds)  # noqa: E731
    worker_heartbeat_record(hostname="cpu@node-1:7", queues=["cpu", "io"])
    common = {"workspace": photo.workspace, "photo": photo}
    PhotoJob.objects.create(**common, kind="thumbnail", task_name="catalog.tasks.photo_thumbnail_task", created_at=ago(30))
    PhotoJob.objects.create(**common, kind="touch_up", task_name="", created_at=ago(90.5))  # no task name: the default queue
    PhotoJob.objects.create(**common, kind="cutout", task_name="studio.tasks.cutout_photo_task", status=JobStatus.RUNNING,
                            worker="cpu-1:100", lease_expires_at=ago(5), created_at=ago(4000))
    scenes = {**common, "variants": 1, "seed": 1, "task_name": "studio.tasks.generate_scenes_task"}
    GenerationJob.objects.create(**scenes, created_at=ago(600))
    GenerationJob.objects.create(**scenes, created_at=ago(20))
    GenerationJob.objects.create(**scenes, status=JobStatus.RUNNING, lease_expires_at=None, created_at=ago(5000))
    GenerationJob.objects.create(**scenes, status=JobStatus.RUNNING, lease_expires_at=ago(-30), created_at=ago(6000))
    GenerationJob.objects.create(**scenes, status=JobStatus.SUCCEEDED, created_at=ago(9000))

    response = client.get("/healthz")

    body = response.json()
    jobs = {k: v for k, v in body["jobs"].items() if k != "ms"}
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["workers"]["ok"] is True
    assert jobs == {
        "ok": False,
        "lapsed_leases": {"catalog.PhotoJob": 1, "studio.GenerationJob": 1},
        "oldest_queued_seconds": {"cpu": 90.5, "gpu": 600.0, "io": None},
    }


def test_healthz_is_ok_when_every_running_job_holds_a_live_lease(client, photo, frozen_now):
    from catalog.jobs import JobStatus
    from catalog.models import PhotoJob

    worker_heartbeat_record(hostname="cpu@node-1:7", queues=["cpu", "io"])
    PhotoJob.objects.create(workspace=photo.workspace, photo=photo, kind="cutout", status=JobStatus.RUNNING,
                            lease_expires_at=frozen_now + timezone.timedelta(seconds=1), created_at=frozen_now)

    body = client.get("/healthz").json()

    assert body["status"] == "ok"
    assert body["jobs"]["ok"] is True
    assert body["jobs"]["lapsed_leases"] == {"catalog.PhotoJob": 0, "studio.GenerationJob": 0}
    assert body["jobs"]["oldest_queued_seconds"] == {"cpu": None, "gpu": None, "io": None}


def test_healthz_reports_a_failing_jobs_query_as_degraded(client, monkeypatch):
    def refuse():
        raise RuntimeError("no job tables")

    worker_heartbeat_record(hostname="cpu@node-1:7", queues=["cpu"])
    monkeypatch.setattr("catalog.jobs.job_models", refuse)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["jobs"]["error"] == "RuntimeError: no job tables"


def test_each_worker_heartbeat_names_its_node_and_process():
    import socket

    from config.celery import heartbeat_id

    assert heartbeat_id("gpu@node-1", pid=42) == "gpu@node-1:42"
    assert heartbeat_id(None, pid=7) == f"celery@{socket.gethostname()}:7"


def test_the_worker_heartbeat_thread_gets_the_unique_id(monkeypatch):
    import os
    import threading
    from types import SimpleNamespace

    import config.celery

    seen, done = [], threading.Event()
    monkeypatch.setattr(config.celery, "_beat_forever", lambda stop, hostname: (seen.append(hostname), done.set()))

    config.celery._start_heartbeat(sender=SimpleNamespace(hostname="cpu-io@pod-abc"))

    assert done.wait(5)
    assert seen == [f"cpu-io@pod-abc:{os.getpid()}"]


def test_the_web_process_never_imports_torch():
    code = (
        "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.local');"
        "import django; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import config.wsgi;"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)

    assert out.stdout.strip() == "False False"


def test_production_settings_pass_the_deploy_checks():
    import os
    import secrets

    # The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE must not reach a production check.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "vitrine.example.com",
        "DATABASE_URL": "postgres://vitrine@db.internal:5432/vitrine",
        "REDIS_URL": "redis://redis.internal:6379/0",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
    )

    assert out.returncode == 0, out.stdout + out.stderr
    assert "System check identified no issues" in out.stdout
