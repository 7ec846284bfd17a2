"""Faults inside one scene job, in the worker's own process: storage that fails, a database
connection that drops. Files and rows agree afterwards, and a transient fault is retried."""
import pytest
from django.core.files.storage import default_storage
from celery.exceptions import Retry
from django.db import OperationalError

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.jobs import STORAGE_ERROR, JobStatus
from generation.pipelines.base import GenerationCancelled
from studio import work
from studio.models import Asset, GenerationJob
from studio.tasks import generate_scenes_task
from tests.conftest import stored_files

pytestmark = pytest.mark.django_db

CHANNELS = ["as-photo", "square-2048"]


@pytest.fixture
def photo(workspace, upload_product_photo):
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    return upload_product_photo((96, 72))


def _generate(api, photo, django_capture_on_commit_callbacks) -> GenerationJob:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 2, "channels": CHANNELS}, format="json")
    return GenerationJob.objects.get(pk=response.json()["id"])


def _asset_files() -> list[str]:
    return [name for name in stored_files() if name.startswith("assets/")]


def test_storage_failing_part_way_fails_the_job_and_leaves_no_asset_or_file(api, photo, monkeypatch, django_capture_on_commit_callbacks):
    real_save, saves = default_storage.save, []

    def save(name, content, *args, **kwargs):
        if name.startswith("assets/") and len(saves) >= 3:  # the second asset's preview, then nothing
            raise OSError(28, "No space left on device")
        if name.startswith("assets/"):
            saves.append(name)
        return real_save(name, content, *args, **kwargs)

    monkeypatch.setattr(default_storage, "save", save)

    job = _generate(api, photo, django_capture_on_commit_callbacks)

    assert (job.status, job.error) == (JobStatus.FAILED, STORAGE_ERROR.format(reason="No space left on device"))
    assert len(saves) == 3  # one whole asset and half of the next were written before the fault
    assert Asset.objects.filter(job=job).count() == 0
    assert _asset_files() == []


def test_a_dropped_database_connection_is_retried_and_the_job_delivers_every_asset_once(
    api, photo, monkeypatch, django_capture_on_commit_callbacks
):
    real_store, calls = work._asset_store, []

    def store(**kwargs):
        calls.append(kwargs["rendered"].variant)
        if len(calls) == 3:
            raise OperationalError("server closed the connection unexpectedly")
        return real_store(**kwargs)

    monkeypatch.setattr(work, "_asset_store", store)

    with pytest.raises(Retry):
        _generate(api, photo, django_capture_on_commit_callbacks)
    job = GenerationJob.objects.get(photo=photo)
    assert (job.status, job.attempts, Asset.objects.filter(job=job).count()) == (JobStatus.QUEUED, 1, 2)  # kept for the retry

    generate_scenes_task.apply(args=[job.pk], retries=1)  # the retry the broker delivers

    job.refresh_from_db()
    assert (job.status, job.error, job.attempts) == (JobStatus.SUCCEEDED, "", 2)
    made = sorted(Asset.objects.filter(job=job).values_list("channel", "variant"))
    assert made == sorted((channel, variant) for channel in CHANNELS for variant in range(2))
    assert len(_asset_files()) == 2 * len(made)  # each asset's PNG and preview, none twice


def test_a_cancelled_job_keeps_none_of_the_assets_it_made(api, photo, monkeypatch, django_capture_on_commit_callbacks):
    real_store = work._asset_store

    def store(**kwargs):
        asset = real_store(**kwargs)
        if Asset.objects.filter(job=kwargs["job"]).count() == 2:
            raise GenerationCancelled(0, 2)  # the backend saw the cancel at its next step
        return asset

    monkeypatch.setattr(work, "_asset_store", store)

    job = _generate(api, photo, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.CANCELLED
    assert Asset.objects.filter(job=job).count() == 0
    assert _asset_files() == []
