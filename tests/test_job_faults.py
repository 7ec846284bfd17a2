"""Fault tests: real workers on PostgreSQL, over Redis and over `make run`'s embedded
filesystem broker, while their processes are killed with SIGKILL, the broker restarts and
forgets its queue, the database drops their connections, and storage refuses writes. Every
job must still end succeeded (or failed with its reason, where storage never comes back),
with exactly the assets it asked for, and no row may stay running.

The first tests are quick ones of the lost-message re-send itself, without a worker."""
import os
import shutil
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.jobs import STORAGE_ERROR, JobStatus, jobs_reap, jobs_resend_lost
from catalog.management.commands.storage_sweep import referenced_names, stored_names
from catalog.models import PhotoJob, WorkerHeartbeat
from catalog.services import photo_upload
from config.celery import app
from studio.models import Asset, GenerationJob
from studio.services import generation_job_create
from tests.conftest import FILESYSTEM_BROKER, sending_to, wait_for
from tests.images import image_bytes

#: Short leases, reaping and re-sending, so that a dead worker or a lost message is noticed
#: in seconds, not minutes.
FAST_RECOVERY = {"VITRINE_JOB_LEASE_SECONDS": "4", "VITRINE_JOB_REAP_SECONDS": "2", "VITRINE_JOB_RESEND_SECONDS": "8"}
VARIANTS, CHANNELS = 2, ["as-photo"]


@pytest.fixture
def slow_jobs(workspace, user, upload_product_photo):
    """Jobs long enough to be killed in the middle (the bundled model, 16 steps: about 8 s
    on two cores, so a test process starved for a few seconds on a loaded machine still sees
    one running), short enough to keep the file to a few minutes."""
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=16)
    photo = upload_product_photo((320, 240))

    def make(count: int, *, first_seed: int = 0) -> list[int]:
        return [
            generation_job_create(photo=photo, user=user, variants=VARIANTS, seed=first_seed + 10 * i, channels=CHANNELS).pk
            for i in range(count)
        ]

    return make


@pytest.fixture
def quick_jobs(workspace, user, upload_product_photo):
    """Jobs for the faults that need no kill in the middle: a few steps."""
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=4)
    photo = upload_product_photo((320, 240))

    def make(count: int, *, first_seed: int = 0) -> list[int]:
        return [
            generation_job_create(photo=photo, user=user, variants=VARIANTS, seed=first_seed + i, channels=CHANNELS).pk
            for i in range(count)
        ]

    return make


def _running(job_ids: list[int], *, not_pid: int | None = None) -> tuple[int, int] | None:
    """(job id, pid of the process running it) for a job in the middle of its work."""
    for job in GenerationJob.objects.filter(pk__in=job_ids, status=JobStatus.RUNNING, progress__gte=5, progress__lt=90).exclude(worker=""):
        pid = int(job.worker.rsplit(":", 1)[1])
        if pid != not_pid:
            return job.pk, pid
    return None


def _all_finished(job_ids: list[int]) -> bool:
    return not GenerationJob.objects.filter(pk__in=job_ids, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists()


def _assert_all_delivered_once(job_ids: list[int]) -> None:
    for job_id in job_ids:
        job = GenerationJob.objects.get(pk=job_id)
        assert (job_id, job.status, job.error) == (job_id, JobStatus.SUCCEEDED, "")
        made = sorted(Asset.objects.filter(job=job).values_list("channel", "variant"))
        assert made == sorted((c, v) for c in CHANNELS for v in range(VARIANTS))
    assert not GenerationJob.objects.filter(status=JobStatus.RUNNING).exists()
    # One file (and one preview) per asset: nothing a killed attempt wrote is left over.
    assert sorted(n for n in stored_names("assets") if n not in referenced_names()) == []


# The re-send of lost messages, without a worker -------------------------------------------


@pytest.fixture
def queued_thumbnail(workspace):
    """A thumbnail job whose message never reached the broker: the upload's transaction is the
    test's, which never commits, so the on-commit send never happens."""

    def make(*, sent_ago_s: float, name: str = "a.jpg", seed: int = 0) -> PhotoJob:
        photo = photo_upload(workspace=workspace, file=SimpleUploadedFile(name, image_bytes("JPEG", size=(64, 48), seed=seed))).photo
        job = PhotoJob.objects.get(photo=photo, kind="thumbnail")
        PhotoJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=sent_ago_s))
        return job

    return make


def _purge(queue: str) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


@pytest.mark.django_db
@override_settings(VITRINE_JOB_RESEND_SECONDS=600)
def test_a_queued_job_whose_message_was_lost_is_sent_again_and_runs_once(queued_thumbnail):
    job = queued_thumbnail(sent_ago_s=601)

    resent = jobs_resend_lost()

    job.refresh_from_db()
    assert (resent, job.status, job.attempts) == (1, JobStatus.SUCCEEDED, 1)
    assert job.photo.thumbnail.name.endswith("thumbnail.webp")
    assert jobs_resend_lost() == 0  # finished: never sent again


@pytest.mark.django_db
@override_settings(VITRINE_JOB_RESEND_SECONDS=600)
def test_a_job_sent_recently_or_cancelled_is_not_sent_again(queued_thumbnail):
    recent = queued_thumbnail(sent_ago_s=30)
    cancelled = queued_thumbnail(sent_ago_s=3600, name="b.jpg", seed=1)
    PhotoJob.objects.filter(pk=cancelled.pk).update(cancel_requested=True)

    assert jobs_resend_lost() == 0

    assert [PhotoJob.objects.get(pk=pk).status for pk in (recent.pk, cancelled.pk)] == [JobStatus.QUEUED, JobStatus.QUEUED]


@pytest.mark.django_db
@override_settings(VITRINE_JOB_RESEND_SECONDS=600)
def test_a_requeued_job_is_due_again_one_period_after_its_requeue(queued_thumbnail):
    job = queued_thumbnail(sent_ago_s=3600)
    PhotoJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker="gone:1", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1))
    app.conf.task_always_eager = False  # the reaper's own send goes to the broker, as a worker's would
    try:
        assert jobs_reap() == 1
    finally:
        app.conf.task_always_eager = True
        _purge("cpu")
    requeued = PhotoJob.objects.get(pk=job.pk)
    assert requeued.status == JobStatus.QUEUED
    assert timezone.now() + timedelta(seconds=590) < requeued.lease_expires_at <= timezone.now() + timedelta(seconds=600)

    assert jobs_resend_lost() == 0  # its new message may still be on its way

    PhotoJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert jobs_resend_lost() == 1
    assert PhotoJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")  # send_task reaches the broker: the point
@override_settings(VITRINE_JOB_RESEND_SECONDS=600)
def test_only_as_many_jobs_are_sent_again_as_the_queue_is_short_of_messages_oldest_first(queued_thumbnail):
    oldest = queued_thumbnail(sent_ago_s=3000)
    newer = queued_thumbnail(sent_ago_s=2000, name="b.jpg", seed=1)
    # One message still waits on the broker (a backlog, not a loss): one of the two is lost.
    app.send_task("catalog.tasks.photo_thumbnail_task", args=[newer.pk], queue="cpu")
    try:
        resent = jobs_resend_lost()
    finally:
        _purge("cpu")

    assert resent == 1
    assert [PhotoJob.objects.get(pk=pk).status for pk in (oldest.pk, newer.pk)] == [JobStatus.SUCCEEDED, JobStatus.QUEUED]


@pytest.mark.django_db
@override_settings(VITRINE_JOB_RESEND_SECONDS=600)
def test_a_generation_job_waiting_for_its_turn_is_not_sent_by_the_reaper(workspace, user, upload_product_photo):
    photo = upload_product_photo((64, 48))
    with override_settings(VITRINE_GPU_IN_FLIGHT=0):  # nothing is dispatched: every job waits its turn
        job = generation_job_create(photo=photo, user=user, variants=1, seed=1, channels=CHANNELS)
    GenerationJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=2))

    assert jobs_resend_lost() == 0

    job.refresh_from_db()
    assert (job.status, job.dispatched_at) == (JobStatus.QUEUED, None)


# Killed processes, over Redis and over `make run`'s embedded broker --------------------------


@pytest.fixture(params=["redis", "filesystem"])
def broker(request, spawn_worker):
    """The broker of the workers and of this process (listed before the job fixtures: the
    photo's upload sends its jobs too): the suite's Redis, or the filesystem transport that
    `make run` uses when REDIS_URL is unset."""
    if request.param == "filesystem":
        with sending_to(FILESYSTEM_BROKER):
            yield FILESYSTEM_BROKER
    else:
        yield None


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_jobs_survive_a_killed_pool_child_then_a_killed_worker(spawn_worker, broker, slow_jobs):
    worker = spawn_worker("faults", pool="prefork", env=FAST_RECOVERY, broker=broker)
    job_ids = slow_jobs(2)

    # The busy pool child dies: its message comes back at once (acks_late with
    # reject_on_worker_lost), the new child takes the job over once the dead one's lease
    # lapsed, and the worker goes on receiving: a job queued after the kill runs too (under
    # the filesystem broker the issue saw the consumer wedge here).
    first_job, child = wait_for(lambda: _running(job_ids), 180, "a job in the middle of its work")
    assert child != worker.process.pid
    os.kill(child, signal.SIGKILL)
    job_ids += slow_jobs(1, first_seed=100)

    # Then the whole machine goes, the worker and its pool child with it. Neither broker hands
    # the messages that worker held to anyone soon (Redis: after the visibility timeout,
    # longer than any task; the filesystem broker: never), so the new worker's reaper requeues
    # the job that was running and re-sends the queued ones whose message is gone.
    second_job, second_child = wait_for(lambda: _running(job_ids, not_pid=child), 180, "a job running in the new pool child")
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()
    for pid in {second_child, *_children(worker.process.pid)}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    spawn_worker("rescuer", pool="prefork", env=FAST_RECOVERY, broker=broker)

    wait_for(lambda: _all_finished(job_ids), 300, "every job to finish")
    _assert_all_delivered_once(job_ids)
    attempts = {job.pk: job.attempts for job in GenerationJob.objects.filter(pk__in=job_ids)}
    assert attempts[first_job] >= 2 and attempts[second_job] >= 2, attempts


# The broker restarts and forgets its queue ---------------------------------------------------

REDIS_SERVER = "/usr/bin/redis-server"


class PrivateRedis:
    """A Redis server of the test's own (the suite's Redis is shared), without persistence:
    killed, it comes back empty, as a production Redis without AOF does."""

    def __init__(self, port: int, log: Path):
        self.port, self.log = port, log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log.open("a"), stderr=subprocess.STDOUT,
        )
        wait_for(lambda: self._pings(redis), 20, f"redis-server on port {self.port}")

    def _pings(self, redis) -> bool:
        try:
            return redis.Redis(port=self.port, socket_timeout=1).ping()
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture
def private_redis(spawn_worker, tmp_path):
    if not Path(REDIS_SERVER).exists():
        pytest.skip(f"{REDIS_SERVER} missing (apt-get install redis-server)")
    server = PrivateRedis(6390, tmp_path / "redis.log")
    server.start()
    try:
        with sending_to(server.url):
            yield server
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_redis_restart_mid_batch_loses_no_job(spawn_worker, private_redis, quick_jobs):
    spawn_worker("restart", env=FAST_RECOVERY, broker=private_redis.url)
    job_ids = quick_jobs(3)  # two on the broker (VITRINE_GPU_IN_FLIGHT), one waiting its turn

    wait_for(lambda: GenerationJob.objects.filter(pk__in=job_ids, status=JobStatus.RUNNING).exists(), 180, "the first job to start")
    private_redis.kill()  # the queue and the unacknowledged messages are gone with it
    assert GenerationJob.objects.filter(pk__in=job_ids, status=JobStatus.QUEUED, dispatched_at__isnull=False).exists()
    time.sleep(1)
    private_redis.start()

    wait_for(lambda: _all_finished(job_ids), 300, "every job to finish")
    _assert_all_delivered_once(job_ids)


# The database drops the worker's connections ----------------------------------------------


def _terminate_other_backends() -> int:
    """pg_terminate_backend on every connection to the test database but this process's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_database_connection_drops_is_retried_and_succeeds(spawn_worker, slow_jobs):
    worker = spawn_worker("dbdrop", env=FAST_RECOVERY)
    job_ids = slow_jobs(1)

    job_id, _ = wait_for(lambda: _running(job_ids), 180, "a job in the middle of its work")
    dropped_at = timezone.now()
    assert _terminate_other_backends() >= 2  # the job's, its lease keeper's, the heartbeat's

    wait_for(lambda: _all_finished(job_ids), 240, "the job to finish")
    _assert_all_delivered_once(job_ids)
    assert GenerationJob.objects.get(pk=job_id).attempts == 2
    # The heartbeat thread (which also reaps) reconnected instead of failing from then on.
    wait_for(
        lambda: WorkerHeartbeat.objects.filter(hostname__startswith=f"{worker.name}@", seen_at__gt=dropped_at).exists(),
        30, "a heartbeat after the drop",
    )


# Storage refuses writes ---------------------------------------------------------------------


@pytest.fixture
def read_only_media():
    """`read_only(True/False)` remounts the media folder read-only (EROFS for every process,
    root too) or writable again; needs mount privileges (CI runs as root)."""
    media = str(settings.MEDIA_ROOT)
    if shutil.which("mount") is None or subprocess.run(["mount", "--bind", media, media], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("CI=true but the media folder cannot be bind-mounted (the storage fault test needs root)")
        pytest.skip("cannot bind-mount the media folder (needs root): storage fault test skipped")

    def read_only(on: bool) -> None:
        subprocess.run(["mount", "-o", f"remount,bind,{'ro' if on else 'rw'}", media], check=True)

    try:
        yield read_only
    finally:
        subprocess.run(["umount", "-l", media], check=False)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_storage_refusing_writes_fails_the_job_with_its_reason_or_is_retried_when_it_comes_back(
    spawn_worker, quick_jobs, read_only_media
):
    spawn_worker("storage", env=FAST_RECOVERY)
    wait_for(lambda: not PhotoJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists(), 60, "the photo's thumbnail and cutout")
    files_before = stored_names()

    read_only_media(True)
    [failing] = quick_jobs(1)
    wait_for(lambda: _all_finished([failing]), 180, "the job to give up")

    job = GenerationJob.objects.get(pk=failing)
    assert (job.status, job.error) == (JobStatus.FAILED, STORAGE_ERROR.format(reason="Read-only file system"))
    assert job.attempts == 4  # the first try and three retries with backoff
    assert not Asset.objects.filter(job=job).exists()
    read_only_media(False)
    assert stored_names() == files_before  # nothing half-written

    # Read-only for a moment: the retry after it succeeds.
    read_only_media(True)
    [retried] = quick_jobs(1, first_seed=50)
    wait_for(
        lambda: GenerationJob.objects.filter(pk=retried, status=JobStatus.QUEUED, attempts=1, started_at__isnull=False).exists(),
        120, "the first try to fail and be requeued",
    )
    read_only_media(False)
    wait_for(lambda: _all_finished([retried]), 120, "the retried job")
    _assert_all_delivered_once([retried])
    assert GenerationJob.objects.get(pk=retried).attempts == 2
