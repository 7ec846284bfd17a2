import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from catalog.services import worker_heartbeat_record

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


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
