import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from catalog.models import Role, WorkerHeartbeat
from catalog.selectors import membership_for
from catalog.services import api_token_create
from config.celery import app
from tests.factories import MembershipFactory, WorkspaceFactory

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent

# One Chromium for the whole session, for every test folder: two sync Playwrights in one
# process fail (the second finds the first's event loop). Its sync API runs an event loop in
# the test thread; the ORM calls the test itself makes are still plain synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether their test failed (the worker prints its log then).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(config, items):
    from config.settings import test as test_settings

    ci = test_settings.CI
    if ci and not Path(CHROMIUM).exists():
        raise pytest.UsageError(f"CI=true but {CHROMIUM} is missing (apt-get install chromium)")
    skip_redis = pytest.mark.skip(reason="Redis not reachable: real-worker tests skipped (they run under CI=true)")
    skip_browser = pytest.mark.skip(reason=f"{CHROMIUM} missing: browser tests skipped (they run under CI=true)")
    skip_postgres = pytest.mark.skip(reason="PostgreSQL not reachable: PostgreSQL-only tests skipped")
    for item in items:
        if "integration" in item.keywords and not test_settings.REDIS_AVAILABLE:
            item.add_marker(skip_redis)
        if "browser" in item.keywords and not Path(CHROMIUM).exists():
            item.add_marker(skip_browser)
        if "postgres" in item.keywords and not test_settings.POSTGRES_AVAILABLE:
            item.add_marker(skip_postgres)


@pytest.fixture(autouse=True)
def _media_root_is_fresh():
    """Each test starts with an empty media folder, so 'nothing was stored' is checkable."""
    root = Path(settings.MEDIA_ROOT)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    yield


def stored_files() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def membership(db):
    return MembershipFactory(role=Role.MERCHANT)


@pytest.fixture
def workspace(membership):
    return membership.workspace


@pytest.fixture
def user(membership):
    return membership.user


@pytest.fixture
def other_membership(db):
    return MembershipFactory(workspace=WorkspaceFactory(name="Rival Shop"), role=Role.OWNER)


def _client_for(user) -> APIClient:
    client = APIClient()
    _, key = api_token_create(membership=membership_for(user=user), name="tests")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    return _client_for(user)


@pytest.fixture
def other_api(other_membership) -> APIClient:
    return _client_for(other_membership.user)


# A real Celery worker over Redis (tests marked integration) ---------------------------------



def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


#: `make run`'s embedded broker (kombu's filesystem transport under VITRINE_VAR_DIR/broker).
FILESYSTEM_BROKER = "filesystem://"


@contextmanager
def sending_to(broker: str):
    """Send this process's tasks to `broker` (`FILESYSTEM_BROKER`, or a Redis URL such as a
    private server's) instead of the suite's Redis, with the transport options the workers
    use for it; the suite's broker again afterwards."""
    from config.settings.base import broker_transport_options

    def reset_pools() -> None:
        # Celery caches its connection and producer pools for the first broker it talked to;
        # kombu keeps them per broker, so the suite's are there again afterwards (open).
        app._pool = None
        app.amqp._producer_pool = None

    before = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url = broker
    app.conf.broker_transport_options = broker_transport_options(broker, settings.VAR_DIR)
    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = before
        reset_pools()


class WorkerProcess:
    """One real Celery worker process on every queue, over Redis (or `broker`), on the test
    database. Its log goes to a file (a pipe nobody reads fills up and blocks the worker)."""

    def __init__(self, *, name: str, log_path: Path, pool: str = "solo", env: dict | None = None, broker: str | None = None):
        self.name, self.log_path = name, log_path
        self._log = log_path.open("w")
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": _database_url(),
            # An empty REDIS_URL is `make run`'s embedded broker (config/settings/base.py).
            "REDIS_URL": "" if broker == FILESYSTEM_BROKER else (broker or settings.CELERY_BROKER_URL),
            "VITRINE_VAR_DIR": str(settings.VAR_DIR),
            "VITRINE_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            **(env or {}),
        }
        pool_args = ["-P", "solo"] if pool == "solo" else ["-P", "prefork", "--concurrency", "1"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "cpu,gpu,io", *pool_args,
             "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT, text=True,
        )

    def wait_ready(self) -> None:
        wait_for(
            lambda: WorkerHeartbeat.objects.filter(hostname__startswith=f"{self.name}@").exists() or self.process.poll() is not None,
            90, f"the heartbeat of worker {self.name}",
        )
        assert self.process.poll() is None, self.log_path.read_text()

    def log(self) -> str:
        return self.log_path.read_text()[-20000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def spawn_worker(transactional_db, tmp_path, request):
    """Start real workers (`spawn_worker(name, pool=..., env=...)`); all are stopped at the
    end and their logs printed when the test failed."""
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no message left from an earlier run
    shutil.rmtree(Path(settings.VAR_DIR) / "broker", ignore_errors=True)  # nor on the filesystem broker
    started: list[WorkerProcess] = []

    def spawn(name: str = "integration", *, pool: str = "solo", env: dict | None = None, broker: str | None = None) -> WorkerProcess:
        process = WorkerProcess(name=name, log_path=tmp_path / f"worker-{name}-{len(started)}.log", pool=pool, env=env, broker=broker)
        started.append(process)
        process.wait_ready()
        return process

    app.conf.task_always_eager = False
    try:
        yield spawn
    finally:
        app.conf.task_always_eager = True
        failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
        for process in started:
            process.stop()
            if failed:
                print(f"--- worker {process.name} log ---\n{process.log()}")


@pytest.fixture
def worker(spawn_worker):
    """One real worker process consuming every queue (see spawn_worker)."""
    return spawn_worker().process


@pytest.fixture
def upload_product_photo(workspace, django_capture_on_commit_callbacks):
    """Upload a studio product photo of `size` to the caller's workspace and run its thumbnail
    and cutout jobs, as the worker would once the upload is committed."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from studio.services import photo_add
    from tests.images import product_on_white

    def upload(size: tuple[int, int], seed: int = 0):
        with django_capture_on_commit_callbacks(execute=True):
            data = product_on_white(size=size, seed=seed)
            return photo_add(workspace=workspace, file=SimpleUploadedFile("box.png", data)).photo

    return upload
