"""Celery tasks through a real worker process over Redis, against the test database."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import PhotoJob, JobStatus
from catalog.services import job_enqueue
from catalog.tasks import photo_thumbnail_task
from studio.services import photo_add
from tests.conftest import wait_for
from tests.factories import MembershipFactory
from tests.images import image_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

def test_upload_is_thumbnailed_by_a_real_worker(worker, client, settings):
    settings.VITRINE_HEALTH_TOKEN = "monitoring-token"
    membership = MembershipFactory()
    photo = photo_add(workspace=membership.workspace, file=SimpleUploadedFile("a.jpg", image_bytes("JPEG", size=(800, 600)))).photo
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")

    wait_for(lambda: PhotoJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, 60, "the thumbnail job")

    photo.refresh_from_db()
    assert photo.thumbnail.name.endswith("thumbnail.webp")
    assert PhotoJob.objects.get(pk=job.pk).attempts == 1
    health = client.get("/healthz", HTTP_AUTHORIZATION="Bearer monitoring-token").json()
    assert health["status"] == "ok"
    assert [w["queues"] for w in health["checks"]["workers"]["workers"]] == [["cpu", "gpu", "io"]]


def test_a_real_worker_writes_the_failure_reason_on_the_row(worker):
    membership = MembershipFactory()
    photo = photo_add(workspace=membership.workspace, file=SimpleUploadedFile("b.jpg", image_bytes("JPEG", seed=4))).photo
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")
    wait_for(lambda: PhotoJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, 60, "the first job")
    photo.working.storage.delete(photo.working.name)  # now the photo cannot be read: not transient

    retry = job_enqueue(photo=photo, kind="thumbnail", task=photo_thumbnail_task)

    wait_for(lambda: PhotoJob.objects.get(pk=retry.pk).status == JobStatus.FAILED, 60, "the failing job")
    assert PhotoJob.objects.get(pk=retry.pk).error.startswith("Something went wrong while processing this photo.")
