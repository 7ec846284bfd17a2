"""Deleting a photo: files and rows agree afterwards; generated images go only when asked."""
import pytest

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.models import PhotoJob, ProductPhoto
from studio.models import Asset, Cutout, GenerationJob
from tests.conftest import stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo(upload_product_photo):
    return upload_product_photo((96, 72))


@pytest.fixture
def generated(api, workspace, photo, django_capture_on_commit_callbacks):
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "channels": ["as-photo"]}, format="json")
    assert Asset.objects.filter(photo=photo).count() == 1
    return photo


def test_deleting_a_photo_removes_its_cutouts_and_their_files(api, photo, django_capture_on_commit_callbacks):
    assert Cutout.objects.filter(photo=photo).count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/v1/photos/{photo.pk}/")

    assert response.status_code == 204
    assert (ProductPhoto.objects.count(), Cutout.objects.count(), PhotoJob.objects.count()) == (0, 0, 0)
    assert stored_files() == []


def test_a_photo_with_generated_images_answers_409_and_keeps_everything(api, generated):
    before = stored_files()

    response = api.delete(f"/api/v1/photos/{generated.pk}/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "photo_has_assets"
    assert "1 generated image(s)" in response.json()["error"]["message"]
    assert (ProductPhoto.objects.count(), Asset.objects.count()) == (1, 1)
    assert stored_files() == before


def test_delete_assets_true_removes_the_photo_with_its_images(api, generated, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/v1/photos/{generated.pk}/?delete_assets=true")

    assert response.status_code == 204
    assert (ProductPhoto.objects.count(), Cutout.objects.count(), GenerationJob.objects.count(), Asset.objects.count()) == (0, 0, 0, 0)
    assert [name for name in stored_files() if not name.startswith("brand/")] == []  # the presets' thumbnails stay


def test_another_workspace_cannot_delete_the_photo(other_api, photo):
    assert other_api.delete(f"/api/v1/photos/{photo.pk}/").status_code == 404
    assert ProductPhoto.objects.filter(pk=photo.pk).exists()
