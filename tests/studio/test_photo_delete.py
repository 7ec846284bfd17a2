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


# Approved images that are not published yet: a second, explicit yes ---------------------------


@pytest.fixture
def approved(api, workspace, photo, django_capture_on_commit_callbacks):
    """The photo with two generated images, the first approved (not published)."""
    from studio.models import ReviewState

    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 2, "channels": ["as-photo"]}, format="json")
    first = Asset.objects.filter(photo=photo).order_by("variant").first()
    Asset.objects.filter(pk=first.pk).update(review_state=ReviewState.APPROVED)
    assert Asset.objects.filter(photo=photo).count() == 2
    return photo


def test_approved_unpublished_images_answer_409_even_with_delete_assets(api, approved):
    before = stored_files()

    response = api.delete(f"/api/v1/photos/{approved.pk}/?delete_assets=true")

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "photo_has_approved_assets",
            "message": "Deleting this photo would lose 1 approved image that is not published yet. Publish or download "
            "it first, or confirm that it should be deleted too. To delete it, repeat with delete_approved=true.",
        }
    }
    assert (ProductPhoto.objects.count(), Asset.objects.count(), Cutout.objects.count()) == (1, 2, 1)
    assert stored_files() == before


def test_delete_approved_without_delete_assets_still_asks_about_the_images(api, approved):
    response = api.delete(f"/api/v1/photos/{approved.pk}/?delete_approved=true")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "photo_has_assets"
    assert Asset.objects.count() == 2


def test_delete_approved_true_removes_the_photo_and_its_approved_images(api, approved, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/v1/photos/{approved.pk}/?delete_assets=true&delete_approved=true")

    assert response.status_code == 204
    assert (ProductPhoto.objects.count(), Asset.objects.count(), GenerationJob.objects.count()) == (0, 0, 0)
    assert [name for name in stored_files() if not name.startswith("brand/")] == []


@pytest.mark.parametrize("state", ["in_review", "published"])
def test_images_in_review_or_published_need_no_second_yes(api, approved, state):
    # Published images live on the storefront; images in review have no decision to lose.
    Asset.objects.filter(photo=approved).update(review_state=state)

    response = api.delete(f"/api/v1/photos/{approved.pk}/?delete_assets=true")

    assert response.status_code == 204
    assert not ProductPhoto.objects.filter(pk=approved.pk).exists()


def test_the_summary_counts_what_a_delete_takes_along(approved):
    from studio.services import PhotoRemoval, photo_removal_summary

    assert photo_removal_summary(photo=approved) == PhotoRemoval(cutouts=1, generation_jobs=1, assets=2, approved=1)


def test_the_schema_documents_both_refusals(api):
    operation = api.get("/api/schema/?format=json").json()["paths"]["/api/v1/photos/{id}/"]["delete"]

    assert sorted(p["name"] for p in operation["parameters"] if p["in"] == "query") == ["delete_approved", "delete_assets"]
    assert "photo_has_approved_assets" in operation["responses"]["409"]["description"]
