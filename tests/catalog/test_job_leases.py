"""Crash-safe jobs: a running row holds a lease; a dead worker's job is taken over or reaped."""
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone

from catalog import tasks
from catalog.jobs import CRASHED, JobStatus, job_cancel, job_progress, job_start, job_succeed, jobs_reap
from catalog.models import PhotoJob
from catalog.services import photo_upload
from tests.images import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(workspace):
    photo = photo_upload(workspace=workspace, file=SimpleUploadedFile("bottle.jpg", image_bytes("JPEG", size=(400, 300)))).photo
    return PhotoJob.objects.get(photo=photo, kind="thumbnail")


def _running(job, *, lease_in_s: float, attempts: int = 1, worker: str = "gpu-7:4242"):
    PhotoJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, worker=worker, attempts=attempts, lease_expires_at=timezone.now() + timedelta(seconds=lease_in_s)
    )


def test_enqueue_records_the_task_that_does_the_work(job):
    assert job.task_name == "catalog.tasks.photo_thumbnail_task"


def test_start_takes_a_lease_for_this_worker(job):
    started = job_start(model=PhotoJob, job_id=job.pk, worker="cpu-1:100")

    assert (started.status, started.worker, started.attempts) == (JobStatus.RUNNING, "cpu-1:100", 1)
    assert timezone.now() + timedelta(seconds=50) < started.lease_expires_at <= timezone.now() + timedelta(seconds=60)


def test_progress_renews_the_lease(job):
    started = job_start(model=PhotoJob, job_id=job.pk, worker="cpu-1:100")
    PhotoJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=2))

    job_progress(job=started, progress=30)

    assert PhotoJob.objects.get(pk=job.pk).lease_expires_at > timezone.now() + timedelta(seconds=50)


def test_a_message_for_a_job_whose_worker_died_takes_it_over_and_finishes_it(job):
    _running(job, lease_in_s=-5)

    tasks.photo_thumbnail_task.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_expires_at) == (JobStatus.SUCCEEDED, 2, None)
    assert job.worker != "gpu-7:4242"
    assert job.photo.thumbnail


def test_a_message_for_a_job_another_live_worker_holds_comes_back_later(job):
    _running(job, lease_in_s=40)

    with pytest.raises(Retry) as excinfo:
        tasks.photo_thumbnail_task.apply(args=[job.pk], throw=True)

    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == (JobStatus.RUNNING, "gpu-7:4242", 1)
    assert 40 <= excinfo.value.when <= 42


@override_settings(VITRINE_JOB_MAX_ATTEMPTS=3)
def test_a_job_that_killed_its_workers_too_often_fails_with_a_reason(job):
    _running(job, lease_in_s=-5, attempts=3)

    tasks.photo_thumbnail_task.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, CRASHED.format(n=3))
    assert not job.photo.thumbnail


def test_the_reaper_requeues_a_dead_workers_job_and_sends_its_task_again(job, django_capture_on_commit_callbacks):
    _running(job, lease_in_s=-5)

    with django_capture_on_commit_callbacks(execute=True):
        moved = jobs_reap()

    job.refresh_from_db()
    assert moved == 1
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 2)


def test_the_reaper_leaves_live_leases_alone(job, django_capture_on_commit_callbacks):
    _running(job, lease_in_s=30)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        moved = jobs_reap()

    job.refresh_from_db()
    assert (moved, len(callbacks), job.status, job.worker) == (0, 0, JobStatus.RUNNING, "gpu-7:4242")


def test_cancel_of_a_job_whose_worker_died_cancels_it_at_once(job):
    _running(job, lease_in_s=-5)

    cancelled = job_cancel(job=job)

    assert (cancelled.status, cancelled.cancel_requested) == (JobStatus.CANCELLED, False)


def test_cancel_of_a_job_a_live_worker_runs_asks_it_to_stop(job):
    _running(job, lease_in_s=30)

    asked = job_cancel(job=job)

    assert (asked.status, asked.cancel_requested) == (JobStatus.RUNNING, True)


def test_a_worker_whose_job_was_taken_over_does_not_finish_it(job):
    mine = job_start(model=PhotoJob, job_id=job.pk, worker="cpu-1:100")
    PhotoJob.objects.filter(pk=job.pk).update(worker="cpu-2:200")  # presumed dead; taken over

    assert job_succeed(job=mine) is False
    assert PhotoJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
