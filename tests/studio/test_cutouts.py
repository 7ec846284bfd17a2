"""Cutout rows, revisions and their API (the Django side of the imaging core)."""
import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from catalog.models import PhotoJob, JobKind, JobStatus
from studio.models import Cutout, CutoutSource
from studio.selectors import cutout_result, photo_rgb
from studio.services import cutout_reset
from studio.work import cutout_revise
from tests.conftest import stored_files

pytestmark = pytest.mark.django_db

W, H = 240, 180


@pytest.fixture
def photo(upload_product_photo):
    return upload_product_photo((W, H))


def png(mask: np.ndarray) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buffer, format="PNG")
    return SimpleUploadedFile("mask.png", buffer.getvalue(), content_type="image/png")


def test_upload_makes_an_automatic_cutout_whose_lock_region_is_the_photos_pixels(photo):
    cutout = Cutout.objects.get(photo=photo)
    result = cutout_result(cutout)
    image = photo_rgb(photo)

    assert (cutout.revision, cutout.source, cutout.backend) == (1, CutoutSource.AUTOMATIC, "studio")
    assert PhotoJob.objects.get(photo=photo, kind=JobKind.CUTOUT).status == JobStatus.SUCCEEDED
    assert cutout.locked_pixels == int(result.mask.sum())
    assert np.array_equal(result.foreground[result.mask], image[result.mask])
    # The box spans x 80..160, y 45..135 in the photo: the lock region sits inside it.
    ys, xs = np.nonzero(result.mask)
    assert (xs.min() >= 78, xs.max() <= 161, ys.min() >= 43, ys.max() <= 136) == (True, True, True, True)


def test_revise_adds_and_erases_exactly_the_brushed_pixels(photo, user):
    base = Cutout.objects.get(photo=photo)
    old = cutout_result(base).mask
    new = old.copy()
    new[60:80, 90:150] = False  # erase a band of the product
    new[10:20, 10:20] = True  # add a patch of "product"

    revised = cutout_revise(base=base, mask=new, user=user)

    result = cutout_result(revised)
    image = photo_rgb(photo)
    assert (revised.revision, revised.source, revised.parent_id, revised.created_by_id) == (2, CutoutSource.TOUCH_UP, base.pk, user.pk)
    assert np.array_equal(result.mask, new)
    assert np.array_equal(result.foreground[new], image[new])
    assert result.alpha[60:80, 90:150].max() == 0.0
    assert revised.locked_pixels == int(new.sum())


def test_reset_brings_back_the_automatic_cutout_as_a_new_revision(photo, user):
    base = Cutout.objects.get(photo=photo)
    cutout_revise(base=base, mask=np.zeros((H, W), bool), user=user)

    reset = cutout_reset(photo=photo, user=user)

    assert (reset.revision, reset.source, reset.parent_id) == (3, CutoutSource.RESET, base.pk)
    assert np.array_equal(cutout_result(reset).mask, cutout_result(base).mask)


# API ---------------------------------------------------------------------------------------


def test_cutout_api_lists_revisions_and_serves_files(api, photo):
    cutout = Cutout.objects.get(photo=photo)

    listing = api.get(f"/api/v1/cutouts/?photo={photo.pk}").json()
    mask = api.get(f"/api/v1/cutouts/{cutout.pk}/file/mask/")

    assert [c["revision"] for c in listing["results"]] == [1]
    assert listing["results"][0]["files"]["mask"].endswith(f"/api/v1/cutouts/{cutout.pk}/file/mask/")
    image = Image.open(io.BytesIO(b"".join(mask.streaming_content)))
    assert (image.mode, image.size) == ("L", (W, H))


def test_mask_upload_over_the_api_makes_a_revision(api, photo):
    mask = np.zeros((H, W), bool)
    mask[50:120, 90:150] = True

    response = api.post("/api/v1/cutouts/", {"photo": photo.pk, "mask": png(mask)}, format="multipart")

    assert response.status_code == 201
    assert (response.json()["revision"], response.json()["source"], response.json()["locked_pixels"]) == (2, "touch_up", int(mask.sum()))


@pytest.mark.parametrize(
    ("mask_file", "message"),
    [
        (lambda: png(np.ones((10, 10), bool)), f"The mask is 10×10 px; it must match the photo's {W}×{H} px."),
        (lambda: SimpleUploadedFile("mask.png", b"not a png at all"), "The mask must be a PNG image (white = product, black = background)."),
    ],
    ids=["wrong-size", "not-png"],
)
def test_bad_mask_is_refused_and_nothing_is_stored(api, photo, mask_file, message):
    files_before = stored_files()

    response = api.post("/api/v1/cutouts/", {"photo": photo.pk, "mask": mask_file()}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == message
    assert Cutout.objects.filter(photo=photo).count() == 1
    assert stored_files() == files_before


def test_reset_over_the_api(api, photo):
    api.post("/api/v1/cutouts/", {"photo": photo.pk, "mask": png(np.zeros((H, W), bool))}, format="multipart")

    response = api.post("/api/v1/cutouts/reset/", {"photo": photo.pk}, format="json")

    assert response.status_code == 201
    assert (response.json()["revision"], response.json()["source"]) == (3, "reset")


def test_segment_again_with_an_unknown_backend_is_refused(api, photo):
    response = api.post(f"/api/v1/photos/{photo.pk}/segment/", {"segmenter": "magic"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Unknown segmenter 'magic'. Use 'studio' or 'rembg:<model>'."


def test_segment_again_queues_a_cutout_job(api, photo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/photos/{photo.pk}/segment/", {"segmenter": "studio"}, format="json")

    assert response.status_code == 202
    assert response.json()["kind"] == "cutout"
    assert list(Cutout.objects.filter(photo=photo).values_list("revision", "source")) == [(2, "automatic"), (1, "automatic")]


def test_missing_rembg_weights_fail_the_job_with_the_command_to_fix_it(api, photo, django_capture_on_commit_callbacks, settings, tmp_path):
    settings.VITRINE_REMBG_HOME = str(tmp_path)

    with django_capture_on_commit_callbacks(execute=True):
        job_id = api.post(f"/api/v1/photos/{photo.pk}/segment/", {"segmenter": "rembg:u2net"}, format="json").json()["id"]

    job = PhotoJob.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED
    assert "python manage.py models pull u2net" in job.error
    assert Cutout.objects.filter(photo=photo).count() == 1


# Tenant isolation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "payload"),
    [
        ("get", "/api/v1/cutouts/{cutout}/", None),
        ("get", "/api/v1/cutouts/{cutout}/file/mask/", None),
        ("get", "/api/v1/cutouts/{cutout}/file/cutout/", None),
        ("post", "/api/v1/cutouts/reset/", {"photo": "{photo}"}),
        ("post", "/api/v1/photos/{photo}/segment/", {}),
    ],
)
def test_another_workspaces_cutouts_are_not_found(other_api, photo, method, url, payload):
    cutout = Cutout.objects.get(photo=photo)
    ids = {"cutout": cutout.pk, "photo": photo.pk}
    body = {k: int(v.format(**ids)) for k, v in payload.items()} if payload else payload

    response = getattr(other_api, method)(url.format(**ids), body, format="json")

    assert response.status_code == 404
    assert Cutout.objects.filter(photo=photo).count() == 1


def test_another_workspace_cannot_upload_a_mask_for_my_photo(other_api, photo):
    response = other_api.post("/api/v1/cutouts/", {"photo": photo.pk, "mask": png(np.zeros((H, W), bool))}, format="multipart")

    assert response.status_code == 404
    assert Cutout.objects.filter(photo=photo).count() == 1


def test_cutout_list_shows_only_my_workspace(other_api, photo):
    assert other_api.get("/api/v1/cutouts/").json()["count"] == 0
