"""Large photos are accepted on their header and decoded by the cpu worker (issue 14): the
web request checks only what needs no pixel decoded, the photo is "checking" until its decode
job has made the working copy, then it gets what an upload decoded in the request gets
(thumbnail, studio's cutout); a photo whose pixels cannot be read ends failed with the words,
its original deleted, nothing downstream. Real files made by the tests; the inline threshold
is set to 1 MP so they stay small."""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from catalog.jobs import JobStatus
from catalog.models import JobKind, PhotoJob, ProductPhoto
from generation import decoding
from generation.decoding import DAMAGED, validate_image
from studio.models import Cutout, GenerationJob
from tests.conftest import stored_files
from tests.images import product_on_white

pytestmark = pytest.mark.django_db

LARGE = (1200, 1000)  # 1.2 MP: over the 1 MP inline threshold of these tests


@pytest.fixture(autouse=True)
def low_inline_threshold(settings):
    settings.VITRINE_UPLOAD_INLINE_MAX_PIXELS = 1_000_000
    return settings


def _upload(api, data: bytes, name: str = "large.png"):
    return api.post("/api/v1/photos/", {"file": SimpleUploadedFile(name, data, content_type="image/png")}, format="multipart")


def _kinds(photo) -> list[tuple[str, str]]:
    return sorted(PhotoJob.objects.filter(photo=photo).values_list("kind", "status"))


def _truncated(data: bytes) -> bytes:
    # The header and the first part of the pixel data stay; the rest of the IDAT and IEND go.
    return data[: len(data) * 2 // 3]


def test_a_large_photo_answers_201_checking_and_nothing_is_decoded_in_the_request(api, monkeypatch):
    def no_decode_here(*args, **kwargs):
        raise AssertionError("the request decoded the pixels of a large photo")

    monkeypatch.setattr("catalog.services.image_decode", no_decode_here)
    data = product_on_white(size=LARGE)

    response = _upload(api, data)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["width"], body["height"]) == ("checking", None, None)
    assert (body["original_width"], body["original_height"]) == LARGE
    assert body["files"]["working"] is None and body["files"]["original"]
    assert [(job["kind"], job["status"]) for job in body["jobs"]] == [("decode", "queued")]
    photo = ProductPhoto.objects.get(pk=body["id"])
    assert photo.working.name == "" and photo.original.name
    # Only the original is stored; no cutout, no thumbnail before the decode.
    assert stored_files() == [photo.original.name]
    assert _kinds(photo) == [("decode", "queued")]
    assert api.get(f"/api/v1/photos/{photo.pk}/file/working/").status_code == 404


def test_after_the_decode_job_the_photo_is_ready_with_its_working_copy_thumbnail_and_cutout(api, django_capture_on_commit_callbacks):
    data = product_on_white(size=LARGE, seed=3)
    with django_capture_on_commit_callbacks(execute=False) as upload_callbacks:
        response = _upload(api, data)
    assert response.json()["status"] == "checking"
    photo = ProductPhoto.objects.get(pk=response.json()["id"])
    assert not Cutout.objects.filter(photo=photo).exists()

    with django_capture_on_commit_callbacks(execute=True):
        for callback in upload_callbacks:
            callback()  # the decode job, as a worker runs it once the upload is committed

    photo.refresh_from_db()
    # The same working copy as an upload decoded in the request: the same code made it.
    inline = validate_image(io.BytesIO(data), size_bytes=len(data), max_bytes=50 << 20, max_pixels=100_000_000, working_max_side=4096)
    assert (photo.working_sha256, photo.width, photo.height, photo.has_alpha) == (inline.working_sha256, *LARGE, False)
    with photo.working.open("rb") as fh:
        assert fh.read() == inline.working_png
    assert _kinds(photo) == [("cutout", "succeeded"), ("decode", "succeeded"), ("thumbnail", "succeeded")]
    assert photo.thumbnail.name and Cutout.objects.filter(photo=photo).count() == 1
    body = api.get(f"/api/v1/photos/{photo.pk}/").json()
    assert (body["status"], body["width"], body["height"]) == ("ready", *LARGE)
    assert api.get(f"/api/v1/photos/{photo.pk}/file/working/").status_code == 200


def test_the_decode_job_queues_the_thumbnail_and_the_cutout_once_and_a_second_delivery_does_nothing(api, django_capture_on_commit_callbacks):
    from catalog.tasks import photo_decode_task

    with django_capture_on_commit_callbacks(execute=False) as upload_callbacks:
        photo_id = _upload(api, product_on_white(size=LARGE, seed=4)).json()["id"]
    decode = PhotoJob.objects.get(photo_id=photo_id, kind=JobKind.DECODE)
    with django_capture_on_commit_callbacks(execute=False) as decode_callbacks:
        for callback in upload_callbacks:
            callback()
    photo = ProductPhoto.objects.get(pk=photo_id)
    assert _kinds(photo) == [("cutout", "queued"), ("decode", "succeeded"), ("thumbnail", "queued")]
    assert len(decode_callbacks) == 2  # the thumbnail's and the cutout's task, sent after commit
    files = stored_files()

    PhotoJob.objects.filter(pk=decode.pk).update(status=JobStatus.QUEUED)  # a redelivered message
    photo_decode_task.delay(decode.pk)

    assert _kinds(photo) == [("cutout", "queued"), ("decode", "succeeded"), ("thumbnail", "queued")]
    assert stored_files() == files


def test_a_large_damaged_photo_fails_with_the_words_its_original_is_deleted_and_nothing_runs(api, django_capture_on_commit_callbacks):
    data = _truncated(product_on_white(size=LARGE, seed=5))
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(api, data)

    assert response.status_code == 201 and response.json()["status"] == "checking"
    photo = ProductPhoto.objects.get(pk=response.json()["id"])
    assert _kinds(photo) == [("decode", "failed")]
    assert PhotoJob.objects.get(photo=photo).error == DAMAGED
    assert (photo.original.name, photo.working.name, photo.thumbnail.name) == ("", "", "")
    assert stored_files() == []
    assert not Cutout.objects.filter(photo=photo).exists()
    body = api.get(f"/api/v1/photos/{photo.pk}/").json()
    assert body["status"] == "failed" and body["jobs"][0]["error"] == DAMAGED
    assert body["files"] == {"original": None, "working": None, "thumbnail": None}
    assert [p["id"] for p in api.get("/api/v1/photos/?status=failed").json()["results"]] == [photo.pk]
    assert api.get("/api/v1/photos/?status=ready").json()["results"] == []
    # The merchant can delete it.
    assert api.delete(f"/api/v1/photos/{photo.pk}/").status_code == 204
    assert not ProductPhoto.objects.filter(pk=photo.pk).exists()


def test_a_scene_job_or_a_cutout_for_a_checking_photo_is_refused_with_words(api):
    photo_id = _upload(api, product_on_white(size=LARGE, seed=6)).json()["id"]

    response = api.post("/api/v1/jobs/", {"photo": photo_id, "variants": 1, "channels": ["as-photo"]}, format="json")
    assert response.status_code == 400, response.content
    assert "This photo is still being checked" in response.content.decode()
    assert not GenerationJob.objects.exists()

    response = api.post(f"/api/v1/photos/{photo_id}/segment/", {}, format="json")
    assert response.status_code == 400
    assert "This photo is still being checked" in response.content.decode()
    assert _kinds(ProductPhoto.objects.get(pk=photo_id)) == [("decode", "queued")]


def test_a_scene_job_for_a_photo_that_could_not_be_decoded_is_refused_with_its_reason(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo_id = _upload(api, _truncated(product_on_white(size=LARGE, seed=7))).json()["id"]

    response = api.post("/api/v1/jobs/", {"photo": photo_id, "variants": 1, "channels": ["as-photo"]}, format="json")

    assert response.status_code == 400
    assert DAMAGED in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_header_rules_still_refuse_a_large_photo_in_the_request_leaving_nothing(api, settings):
    settings.VITRINE_UPLOAD_MAX_PIXELS = 1_100_000  # 1.2 MP is over the cap, and over the inline threshold

    response = _upload(api, product_on_white(size=LARGE, seed=8))

    assert response.status_code == 400
    assert "This image is 1.2 MP; the limit is 1.1 MP." in response.content.decode()
    assert (ProductPhoto.objects.count(), PhotoJob.objects.count(), stored_files()) == (0, 0, [])


def test_a_large_animated_png_is_refused_in_the_request(api):
    frames = [Image.new("RGB", LARGE, colour) for colour in ((250, 250, 250), (200, 30, 30))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:])

    response = _upload(api, buffer.getvalue(), "animated.png")

    assert response.status_code == 400 and "Animated images are not supported" in response.content.decode()
    assert (ProductPhoto.objects.count(), stored_files()) == (0, [])


def test_a_photo_at_the_threshold_is_decoded_in_the_request_as_before(api, low_inline_threshold):
    low_inline_threshold.VITRINE_UPLOAD_INLINE_MAX_PIXELS = LARGE[0] * LARGE[1]

    body = _upload(api, product_on_white(size=LARGE, seed=9)).json()

    assert body["status"] == "processing" and (body["width"], body["height"]) == LARGE
    photo = ProductPhoto.objects.get(pk=body["id"])
    assert photo.working.name and sorted(k for k, _ in _kinds(photo)) == ["cutout", "thumbnail"]


def test_the_header_check_decodes_no_pixel(monkeypatch):
    data = product_on_white(size=LARGE, seed=10)
    monkeypatch.setattr(Image.Image, "load", lambda self: (_ for _ in ()).throw(AssertionError("decoded")))

    header = decoding.image_header_check(io.BytesIO(data), size_bytes=len(data), max_bytes=50 << 20, max_pixels=100_000_000)

    assert (header.format, header.width, header.height, header.pixels) == ("PNG", *LARGE, LARGE[0] * LARGE[1])


def test_the_pages_show_a_checking_photo_and_the_processing_filter_includes_it(api, client, user):
    client.force_login(user)
    photo_id = _upload(api, product_on_white(size=LARGE, seed=11)).json()["id"]

    page = client.get(f"/photos/{photo_id}/").content.decode()
    assert "Checking the photo…" in page
    grid = client.get("/products/?status=processing").content.decode()
    assert f'data-photo-id="{photo_id}" data-status="checking"' in grid
    assert "Checking the photo…" in grid
    assert f'data-photo-id="{photo_id}"' not in client.get("/products/?status=ready").content.decode()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_decodes_a_large_upload_then_makes_its_thumbnail_and_cutout(worker):
    from studio.services import photo_add
    from tests.conftest import wait_for
    from tests.factories import MembershipFactory

    workspace = MembershipFactory().workspace
    photo = photo_add(workspace=workspace, file=SimpleUploadedFile("large.png", product_on_white(size=LARGE, seed=12))).photo
    assert photo.status == "checking"

    wait_for(lambda: _kinds(photo) == [("cutout", "succeeded"), ("decode", "succeeded"), ("thumbnail", "succeeded")], 180, "decode, thumbnail and cutout")

    photo = ProductPhoto.objects.get(pk=photo.pk)
    assert photo.status == "ready" and (photo.width, photo.height) == LARGE and photo.thumbnail.name
    assert Cutout.objects.filter(photo=photo).count() == 1


def test_an_image_with_alpha_counts_one_and_a_half_times_its_pixels_against_the_inline_threshold(api):
    # 900 × 900 = 0.81 MP, under the 1 MP threshold as RGB; with alpha its decode costs 1.5×
    # (1.215 MP), so it is checked on the worker.
    rgba = Image.new("RGBA", (900, 900), (250, 250, 250, 255))
    rgba.paste((200, 30, 30, 128), (300, 300, 600, 600))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    rgb = io.BytesIO()
    rgba.convert("RGB").save(rgb, format="PNG")

    assert _upload(api, buffer.getvalue(), "alpha.png").json()["status"] == "checking"
    assert _upload(api, rgb.getvalue(), "plain.png").json()["status"] == "processing"


def test_sixteen_bit_greyscale_is_scaled_with_integers_exactly_as_rounding_v_times_255_over_65535():
    import numpy as np

    every = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    scaled = np.asarray(decoding._eight_bit(Image.fromarray(every)))

    assert np.array_equal(scaled, np.clip(np.rint(every.astype(np.float64) * 255 / 65535), 0, 255).astype(np.uint8))
    wide = Image.fromarray(np.array([[-5, 0, 128, 129, 65535, 70000, 2**31 - 1]], dtype=np.int32), "I")
    assert np.asarray(decoding._eight_bit(wide)).tolist() == [[0, 0, 0, 1, 255, 255, 255]]


def test_the_working_copy_leaves_the_callers_image_as_it_was_when_it_shrinks_it():
    image = Image.new("RGB", (5000, 1000), (10, 20, 30))
    image.putpixel((4999, 999), (255, 0, 0))

    working, _ = decoding.working_copy(image, 4096)

    assert working.size == (4096, 819) and working is not image
    assert image.size == (5000, 1000) and image.getpixel((4999, 999)) == (255, 0, 0)


def test_the_photo_page_of_a_photo_that_could_not_be_decoded_shows_why(api, client, user, django_capture_on_commit_callbacks):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        photo_id = _upload(api, _truncated(product_on_white(size=LARGE, seed=13))).json()["id"]

    page = client.get(f"/photos/{photo_id}/").content.decode()

    assert "This photo could not be used: This image is damaged or incomplete" in page
    assert 'data-status="failed"' in client.get("/products/?status=failed").content.decode()
