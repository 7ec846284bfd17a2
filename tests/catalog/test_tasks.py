"""PhotoJob rows and the tasks that drive them."""
import pytest
from celery.exceptions import Retry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from PIL import Image

from catalog import tasks
from catalog.models import PhotoJob, JobKind, JobStatus
from catalog import jobs
from catalog.jobs import job_cancel
from catalog.services import job_enqueue
from studio.services import photo_add
from config.celery import Queue, app
from tests.images import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo(workspace):
    data = image_bytes("JPEG", size=(900, 600))
    return photo_add(workspace=workspace, file=SimpleUploadedFile("bottle.jpg", data)).photo


def test_upload_enqueues_thumbnail_only_after_commit(workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        photo = photo_add(workspace=workspace, file=SimpleUploadedFile("a.jpg", image_bytes("JPEG"))).photo

    jobs = PhotoJob.objects.filter(photo=photo).order_by("kind")
    assert [(job.kind, job.status) for job in jobs] == [(JobKind.CUTOUT, JobStatus.QUEUED), (JobKind.THUMBNAIL, JobStatus.QUEUED)]
    assert len(callbacks) == 2


def test_thumbnail_task_makes_a_bounded_webp_and_finishes_the_job(photo, settings):
    settings.VITRINE_THUMBNAIL_SIDE = 256
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")

    tasks.photo_thumbnail_task.apply(args=[job.pk])

    job.refresh_from_db()
    photo.refresh_from_db()
    assert (job.status, job.progress, job.attempts, job.error) == (JobStatus.SUCCEEDED, 100, 1, "")
    assert job.started_at <= job.finished_at
    with photo.thumbnail.open("rb") as fh:
        thumb = Image.open(fh)
        assert (thumb.format, thumb.size) == ("WEBP", (256, 171))


def test_a_redelivered_message_does_nothing_the_second_time(photo):
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")
    tasks.photo_thumbnail_task.apply(args=[job.pk])

    tasks.photo_thumbnail_task.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1)


def test_a_cancelled_job_is_not_started(photo):
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")
    assert job_cancel(job=job).status == JobStatus.CANCELLED

    tasks.photo_thumbnail_task.apply(args=[job.pk])

    job.refresh_from_db()
    photo.refresh_from_db()
    assert (job.status, job.attempts, bool(photo.thumbnail)) == (JobStatus.CANCELLED, 0, False)


def test_enqueue_returns_the_live_job_instead_of_a_second_one(photo):
    live = PhotoJob.objects.get(photo=photo, kind="thumbnail")

    again = job_enqueue(photo=photo, kind=JobKind.THUMBNAIL, task=tasks.photo_thumbnail_task)

    assert again.pk == live.pk
    assert PhotoJob.objects.filter(photo=photo, kind=JobKind.THUMBNAIL).count() == 1


def test_transient_error_requeues_the_job_and_retries(photo, monkeypatch):
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")

    def blink(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tasks, "photo_thumbnail_make", blink)

    with pytest.raises(Retry):
        tasks.photo_thumbnail_task.apply(args=[job.pk], throw=True)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == (JobStatus.QUEUED, 1, "")


def test_transient_error_after_the_last_retry_fails_the_job(photo, monkeypatch):
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")
    monkeypatch.setattr(tasks, "photo_thumbnail_make", lambda **kw: (_ for _ in ()).throw(OperationalError("down")))

    tasks.photo_thumbnail_task.apply(args=[job.pk], retries=jobs.MAX_RETRIES)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == jobs.USER_ERROR


def test_terminal_error_fails_at_once_with_the_reason(photo, monkeypatch):
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")
    photo.working.storage.delete(photo.working.name)  # the working copy vanished: not transient

    tasks.photo_thumbnail_task.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert job.error == jobs.USER_ERROR


def test_tasks_are_routed_to_their_queue():
    route = app.amqp.router.route({}, "catalog.tasks.photo_thumbnail_task")

    assert route["queue"].name == Queue.CPU
