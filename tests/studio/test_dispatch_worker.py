"""Fairness through a real worker over Redis: one job of a second workspace starts right after
the job that was running when it was queued, not after every job the first workspace queued."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.jobs import JobStatus
from studio.models import Cutout, GenerationJob
from studio.services import generation_job_create, photo_add
from tests.conftest import wait_for
from tests.images import product_on_white

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

A_JOBS = 12


def test_another_workspaces_job_does_not_wait_behind_a_big_batch(settings, spawn_worker, workspace, user, other_membership):
    settings.VITRINE_GPU_IN_FLIGHT = 1  # this process dispatches on create, the worker after each job
    spawn_worker("fair", env={"VITRINE_GPU_IN_FLIGHT": "1"})
    photos = []
    for seed, ws in enumerate((workspace, other_membership.workspace)):
        workspace_defaults_ensure(workspace=ws)
        ScenePreset.objects.filter(workspace=ws).update(steps=2)
        photos.append(photo_add(workspace=ws, file=SimpleUploadedFile("box.png", product_on_white(size=(96, 72), seed=seed))).photo)
    wait_for(lambda: Cutout.objects.filter(photo__in=photos).count() == 2, 60, "both cutouts")

    a_jobs = [generation_job_create(photo=photos[0], user=user, variants=1, seed=i, channels=["as-photo"]).pk for i in range(A_JOBS)]
    b_job = generation_job_create(photo=photos[1], user=other_membership.user, variants=1, seed=0, channels=["as-photo"]).pk

    every = [*a_jobs, b_job]
    finished = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
    wait_for(lambda: GenerationJob.objects.filter(pk__in=every, status__in=finished).count() == len(every), 240, "every job to finish")
    jobs = {job.pk: job for job in GenerationJob.objects.filter(pk__in=every)}
    assert {pk: (job.status, job.error) for pk, job in jobs.items()} == {pk: (JobStatus.SUCCEEDED, "") for pk in every}
    a_before_b = sorted((pk for pk in a_jobs if jobs[pk].started_at < jobs[b_job].started_at), key=lambda pk: jobs[pk].started_at)
    # When B's job was queued one of A's was in flight (or a second, had the first just
    # finished): B's goes next, ahead of the rest of A's batch, which then runs oldest first.
    assert 1 <= len(a_before_b) <= 2
    assert a_before_b == a_jobs[: len(a_before_b)]
    assert sorted(a_jobs, key=lambda pk: jobs[pk].started_at) == a_jobs
