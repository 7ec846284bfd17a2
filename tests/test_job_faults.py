"""Fault tests: real workers over Redis on PostgreSQL, killed with SIGKILL in the middle of
scene jobs. Every job must still end succeeded, with exactly the assets it asked for, and
no row may stay running."""
import os
import signal

import pytest

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.jobs import JobStatus
from studio.models import Asset, GenerationJob
from studio.services import generation_job_create
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

#: Short leases and reaping, so that a dead worker is noticed in seconds, not a minute.
FAST_RECOVERY = {"VITRINE_JOB_LEASE_SECONDS": "4", "VITRINE_JOB_REAP_SECONDS": "2"}
VARIANTS, CHANNELS = 2, ["square-2048"]


@pytest.fixture
def slow_jobs(workspace, user, upload_product_photo):
    """Jobs long enough to be killed in the middle: the bundled model, many steps, a large
    channel."""
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=60)
    photo = upload_product_photo((320, 240))

    def make(count: int) -> list[int]:
        return [generation_job_create(photo=photo, user=user, variants=VARIANTS, seed=10 * i, channels=CHANNELS).pk for i in range(count)]

    return make


def _running(job_ids: list[int], *, not_pid: int | None = None) -> tuple[int, int] | None:
    """(job id, pid of the process running it) for a job in the middle of its work."""
    for job in GenerationJob.objects.filter(pk__in=job_ids, status=JobStatus.RUNNING, progress__gte=5, progress__lt=90).exclude(worker=""):
        pid = int(job.worker.rsplit(":", 1)[1])
        if pid != not_pid:
            return job.pk, pid
    return None


def _assert_all_delivered_once(job_ids: list[int]) -> None:
    for job_id in job_ids:
        job = GenerationJob.objects.get(pk=job_id)
        assert (job_id, job.status, job.error) == (job_id, JobStatus.SUCCEEDED, "")
        made = sorted(Asset.objects.filter(job=job).values_list("channel", "variant"))
        assert made == sorted((c, v) for c in CHANNELS for v in range(VARIANTS))
    assert not GenerationJob.objects.filter(status=JobStatus.RUNNING).exists()


def test_jobs_survive_their_pool_child_being_killed(spawn_worker, slow_jobs):
    worker = spawn_worker("faults", pool="prefork", env=FAST_RECOVERY)
    job_ids = slow_jobs(3)

    killed, last_pid = [], None
    for _ in range(2):
        job_id, pid = wait_for(lambda: _running(job_ids, not_pid=last_pid), 180, "a job in the middle of its work")
        assert pid != worker.process.pid  # the pool child, not the worker
        os.kill(pid, signal.SIGKILL)
        killed.append(job_id)
        last_pid = pid

    wait_for(lambda: not GenerationJob.objects.filter(pk__in=job_ids).exclude(status=JobStatus.SUCCEEDED).exists(), 300, "every job to finish")
    _assert_all_delivered_once(job_ids)
    assert all(GenerationJob.objects.get(pk=job_id).attempts >= 2 for job_id in killed)


def test_a_job_survives_its_whole_worker_being_killed(spawn_worker, slow_jobs):
    first = spawn_worker("doomed", env=FAST_RECOVERY)
    job_ids = slow_jobs(2)

    job_id, pid = wait_for(lambda: _running(job_ids), 180, "a job in the middle of its work")
    assert pid == first.process.pid  # the solo pool runs jobs in the worker itself
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    # Redis gives the dead worker's unacknowledged message back only after the visibility
    # timeout (longer than any task); the new worker's reaper is what notices the lapsed lease.
    spawn_worker("rescuer", env=FAST_RECOVERY)

    wait_for(lambda: not GenerationJob.objects.filter(pk__in=job_ids).exclude(status=JobStatus.SUCCEEDED).exists(), 300, "every job to finish")
    _assert_all_delivered_once(job_ids)
    assert GenerationJob.objects.get(pk=job_id).attempts == 2
