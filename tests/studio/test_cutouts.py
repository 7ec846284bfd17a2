"""Cutout rows, revisions and their API (the Django side of the imaging core)."""
import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import jobs as catalog_jobs
from catalog.files import photo_dir
from catalog.jobs import job_cancel
from catalog.models import PhotoJob, JobKind, JobStatus
from studio import services as studio_services
from studio.models import Cutout, CutoutSource
from studio.selectors import cutout_result, photo_rgb
from studio.services import cutout_reset, cutout_touch_up_request
from studio.tasks import cutout_touch_up_task
from tests.conftest import stored_files
from tests.images import png_declaring

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

    assert (cutout.revision, cutout.source, cutout.backend) == (1, CutoutSource.AUTOMATIC, "graphcut")
    assert PhotoJob.objects.get(photo=photo, kind=JobKind.CUTOUT).status == JobStatus.SUCCEEDED
    assert cutout.locked_pixels == int(result.mask.sum())
    assert np.array_equal(result.foreground[result.mask], image[result.mask])
    # The box spans x 80..160, y 45..135 in the photo: the lock region sits inside it.
    ys, xs = np.nonzero(result.mask)
    assert (xs.min() >= 78, xs.max() <= 161, ys.min() >= 43, ys.max() <= 136) == (True, True, True, True)


def test_reset_brings_back_the_automatic_cutout_as_a_new_revision(photo, user, django_capture_on_commit_callbacks):
    base = Cutout.objects.get(photo=photo)
    with django_capture_on_commit_callbacks(execute=True):
        cutout_touch_up_request(photo=photo, base=base, mask=png(np.zeros((H, W), bool)), user=user)
    assert Cutout.objects.filter(photo=photo).count() == 2

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


# Touch-ups: the request only checks and queues; the cpu job makes the revision ---------------


def _post_mask(api, photo, mask_file, **extra):
    return api.post("/api/v1/cutouts/", {"photo": photo.pk, "mask": mask_file, **extra}, format="multipart")


def _touch_up_jobs(photo) -> list[tuple[int, str]]:
    return list(PhotoJob.objects.filter(photo=photo, kind=JobKind.TOUCH_UP).order_by("pk").values_list("pk", "status"))


def _damaged_png(mask: np.ndarray) -> SimpleUploadedFile:
    """A PNG whose header is sound (the request accepts it) but whose pixel data is not."""
    data = bytearray(png(mask).read())
    start = data.index(b"IDAT") + 4
    data[start : start + 16] = b"\xff" * 16  # the zlib stream's first bytes
    return SimpleUploadedFile("mask.png", bytes(data), content_type="image/png")


def test_a_touch_up_is_accepted_with_its_job_and_nothing_changes_until_the_job_runs(api, photo, user):
    base = Cutout.objects.get(photo=photo)
    files_before = stored_files()
    mask = np.zeros((H, W), bool)
    mask[50:120, 90:150] = True

    response = _post_mask(api, photo, png(mask))

    assert response.status_code == 202
    body = response.json()
    job = PhotoJob.objects.get(pk=body["id"])
    assert (body["kind"], body["status"], body["progress"], body["photo"]) == ("touch_up", "queued", 0, photo.pk)
    assert job.params == {"base": base.pk, "mask": job.params["mask"], "user": user.pk, "snap_edges": False, "holes": None}
    folder = photo_dir(workspace_id=photo.workspace_id, sha256=photo.original_sha256)
    assert job.params["mask"].startswith(f"{folder}/touch-ups/")
    assert stored_files() == sorted([*files_before, job.params["mask"]])
    assert list(Cutout.objects.filter(photo=photo).values_list("revision", flat=True)) == [1]


def test_the_touch_up_job_makes_revision_2_with_exactly_the_brushed_mask(api, photo, user, django_capture_on_commit_callbacks):
    base = Cutout.objects.get(photo=photo)
    files_before = stored_files()
    new = cutout_result(base).mask.copy()
    new[60:80, 90:150] = False  # erase a band of the product
    new[10:20, 10:20] = True  # add a patch of "product"

    with django_capture_on_commit_callbacks(execute=True):
        job_id = _post_mask(api, photo, png(new)).json()["id"]

    job = PhotoJob.objects.get(pk=job_id)
    revised = Cutout.objects.get(photo=photo, revision=2)
    result = cutout_result(revised)
    image = photo_rgb(photo)
    assert (job.status, job.progress, job.error) == (JobStatus.SUCCEEDED, 100, "")
    assert (revised.source, revised.parent_id, revised.created_by_id) == (CutoutSource.TOUCH_UP, base.pk, user.pk)
    assert np.array_equal(result.mask, new)
    assert np.array_equal(result.foreground[new], image[new])
    assert result.alpha[60:80, 90:150].max() == 0.0
    assert (revised.locked_pixels, revised.confident, revised.notes) == (int(new.sum()), True, ["touched-up"])
    # The uploaded mask is gone; the revision's two files are all that was added.
    folder = photo_dir(workspace_id=photo.workspace_id, sha256=photo.original_sha256)
    assert stored_files() == sorted([*files_before, f"{folder}/cutouts/r2/cutout.png", f"{folder}/cutouts/r2/mask.png"])


def test_the_touch_up_job_reports_each_step(api, photo, django_capture_on_commit_callbacks, monkeypatch):
    reported = []
    real = catalog_jobs.job_progress
    monkeypatch.setattr(catalog_jobs, "job_progress", lambda *, job, progress, message=None: reported.append((progress, message)) or real(job=job, progress=progress, message=message))

    with django_capture_on_commit_callbacks(execute=True):
        _post_mask(api, photo, png(np.zeros((H, W), bool)))

    assert reported == [(5, "Reading your mask"), (25, "Applying your touch-up"), (60, "Saving the new revision")]


def test_a_damaged_png_fails_the_job_with_its_reason_and_leaves_no_revision_and_no_upload(api, photo, django_capture_on_commit_callbacks):
    files_before = stored_files()

    with django_capture_on_commit_callbacks(execute=True):
        response = _post_mask(api, photo, _damaged_png(np.ones((H, W), bool)))

    assert response.status_code == 202
    job = PhotoJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.error) == (JobStatus.FAILED, "The mask must be a PNG image (white = product, black = background).")
    assert Cutout.objects.filter(photo=photo).count() == 1
    assert stored_files() == files_before


@pytest.mark.parametrize(
    ("mask_file", "message"),
    [
        (lambda: png(np.ones((10, 10), bool)), f"The mask is 10×10 px; it must match the photo's {W}×{H} px."),
        (lambda: SimpleUploadedFile("mask.png", b"not a png at all"), "The mask must be a PNG image (white = product, black = background)."),
        (lambda: SimpleUploadedFile("mask.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), "The mask must be a PNG image (white = product, black = background)."),
        (lambda: SimpleUploadedFile("mask.png", png_declaring(100_000, 100_000)), f"The mask has far more pixels than the photo; it must match the photo's {W}×{H} px."),
        (lambda: SimpleUploadedFile("mask.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (20 * 1024 * 1024)), "The mask file is 20,971,528 bytes; the limit is 20,971,520 bytes (20 MB)."),
    ],
    ids=["wrong-size", "not-png", "broken-header", "declares-a-bomb", "over-20-mb"],
)
def test_a_bad_mask_is_refused_in_the_request_with_no_file_stored_and_no_job(api, photo, mask_file, message):
    files_before = stored_files()

    response = _post_mask(api, photo, mask_file())

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["message"]) == ("invalid_mask", message)
    assert _touch_up_jobs(photo) == []
    assert Cutout.objects.filter(photo=photo).count() == 1
    assert stored_files() == files_before


def test_a_base_revision_of_another_photo_is_refused(api, photo, upload_product_photo):
    other = Cutout.objects.get(photo=upload_product_photo((W, H), seed=1))
    files_before = stored_files()

    response = _post_mask(api, photo, png(np.zeros((H, W), bool)), base=other.pk)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "That cutout revision belongs to another photo."
    assert _touch_up_jobs(photo) == []
    assert stored_files() == files_before


def test_a_second_touch_up_while_one_is_queued_is_refused_and_its_mask_not_kept(api, photo):
    first = _post_mask(api, photo, png(np.zeros((H, W), bool))).json()
    files_after_first = stored_files()

    response = _post_mask(api, photo, png(np.ones((H, W), bool)))

    assert response.status_code == 409
    assert response.json() == {"error": {"code": "touch_up_running", "message": "A touch-up of this photo is still being saved. Wait until it finishes, then save your changes again."}}
    assert _touch_up_jobs(photo) == [(first["id"], JobStatus.QUEUED)]
    assert stored_files() == files_after_first


def test_when_the_job_row_cannot_be_created_the_stored_mask_is_removed(photo, user, monkeypatch):
    files_before = stored_files()

    def broken_enqueue(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(studio_services, "job_enqueue", broken_enqueue)

    with pytest.raises(RuntimeError, match="the database went away"):
        cutout_touch_up_request(photo=photo, base=None, mask=png(np.zeros((H, W), bool)), user=user)

    assert stored_files() == files_before
    assert _touch_up_jobs(photo) == []


def test_a_touch_up_cancelled_before_it_ran_removes_its_upload(photo, user):
    files_before = stored_files()
    job = cutout_touch_up_request(photo=photo, base=None, mask=png(np.zeros((H, W), bool)), user=user)
    job_cancel(job=job)

    cutout_touch_up_task.delay(job.pk)  # the message arrives after the cancel

    assert _touch_up_jobs(photo) == [(job.pk, JobStatus.CANCELLED)]
    assert Cutout.objects.filter(photo=photo).count() == 1
    assert stored_files() == files_before


def test_reset_over_the_api(api, photo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _post_mask(api, photo, png(np.zeros((H, W), bool)))

    response = api.post("/api/v1/cutouts/reset/", {"photo": photo.pk}, format="json")

    assert response.status_code == 201
    assert (response.json()["revision"], response.json()["source"]) == (3, "reset")


# The photo page follows the touch-up job ---------------------------------------------------


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_cutout_panel_shows_a_running_touch_up_and_polls_its_progress(api, signed_in, photo):
    _post_mask(api, photo, png(np.zeros((H, W), bool)))

    html = signed_in.get(f"/photos/{photo.pk}/cutout/").content.decode()

    assert f'hx-get="/photos/{photo.pk}/touch-up/" hx-trigger="every 1s"' in html
    assert "Saving your touch-up as a new revision…" in html
    assert '<progress max="100" value="0" aria-label="Touch-up progress">' in html


def test_the_touch_up_line_asks_for_the_panel_once_the_job_has_succeeded(api, signed_in, photo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _post_mask(api, photo, png(np.zeros((H, W), bool)))

    response = signed_in.get(f"/photos/{photo.pk}/touch-up/")

    assert response["HX-Trigger"] == "cutout-changed"
    assert 'data-state="idle"' in response.content.decode()
    assert "hx-get" not in response.content.decode()


def test_the_touch_up_line_of_a_running_job_does_not_reload_the_panel(api, signed_in, photo):
    _post_mask(api, photo, png(np.zeros((H, W), bool)))

    response = signed_in.get(f"/photos/{photo.pk}/touch-up/")

    assert "HX-Trigger" not in response
    assert 'data-state="active"' in response.content.decode()


def test_a_failed_touch_up_shows_its_reason_in_the_cutout_panel(api, signed_in, photo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _post_mask(api, photo, _damaged_png(np.ones((H, W), bool)))

    html = signed_in.get(f"/photos/{photo.pk}/cutout/").content.decode()

    assert (
        "Your last touch-up could not be saved: The mask must be a PNG image (white = product, black = background). "
        "The cutout below is unchanged." in html
    )
    assert "Revision 1 · Automatic" in html


@pytest.mark.parametrize("url", ["/photos/{photo}/", "/photos/{photo}/cutout/", "/photos/{photo}/touch-up/", "/photos/{photo}/jobs/"])
def test_the_photo_pages_write_nothing(api, signed_in, photo, url):
    _post_mask(api, photo, png(np.zeros((H, W), bool)))  # a live touch-up: the busiest state to render

    with CaptureQueriesContext(connection) as queries:
        response = signed_in.get(url.format(photo=photo.pk))

    assert response.status_code == 200
    assert [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}] == []

def test_segment_again_with_an_unknown_backend_is_refused(api, photo):
    response = api.post(f"/api/v1/photos/{photo.pk}/segment/", {"segmenter": "magic"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Unknown segmenter 'magic'. Use 'auto', 'graphcut' or 'rembg:<model>'."


def test_segment_again_queues_a_cutout_job(api, photo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/photos/{photo.pk}/segment/", {"segmenter": "graphcut"}, format="json")

    assert response.status_code == 202
    assert response.json()["kind"] == "cutout"
    assert list(Cutout.objects.filter(photo=photo).values_list("revision", "source")) == [(2, "automatic"), (1, "automatic")]


def test_segment_again_with_the_deprecated_name_studio_runs_graphcut(api, photo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/photos/{photo.pk}/segment/", {"segmenter": "studio"}, format="json")

    assert response.status_code == 202
    assert list(Cutout.objects.filter(photo=photo).values_list("revision", "backend")) == [(2, "graphcut"), (1, "graphcut")]


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
    files_before = stored_files()

    response = other_api.post("/api/v1/cutouts/", {"photo": photo.pk, "mask": png(np.zeros((H, W), bool))}, format="multipart")

    assert response.status_code == 404
    assert Cutout.objects.filter(photo=photo).count() == 1
    assert _touch_up_jobs(photo) == []
    assert stored_files() == files_before


def test_cutout_list_shows_only_my_workspace(other_api, photo):
    assert other_api.get("/api/v1/cutouts/").json()["count"] == 0


# A photo with no product, or one too small, fails its cutout ------------------------------


def _upload_png(workspace, django_capture_on_commit_callbacks, pixels: np.ndarray):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    with django_capture_on_commit_callbacks(execute=True):
        return studio_services.photo_add(workspace=workspace, file=SimpleUploadedFile("p.png", buffer.getvalue())).photo


def _cutout_job(photo) -> PhotoJob:
    return PhotoJob.objects.filter(photo=photo, kind=JobKind.CUTOUT).latest("pk")


def test_a_photo_of_a_plain_backdrop_fails_its_cutout_saying_no_product_was_found(workspace, django_capture_on_commit_callbacks):
    photo = _upload_png(workspace, django_capture_on_commit_callbacks, np.full((180, 240, 3), 236, np.uint8))

    job = _cutout_job(photo)
    assert job.status == JobStatus.FAILED
    assert "no product was found in the photo" in job.error
    assert not Cutout.objects.filter(photo=photo).exists()


def test_a_40_by_40_photo_fails_its_cutout_saying_it_is_too_small(workspace, upload_product_photo):
    photo = upload_product_photo((40, 40))

    job = _cutout_job(photo)
    assert job.status == JobStatus.FAILED
    assert "40 x 40 pixels, too small" in job.error
    assert not Cutout.objects.filter(photo=photo).exists()


def test_a_png_with_real_transparency_is_its_own_cutout(workspace, django_capture_on_commit_callbacks):
    """A product photo cut out already (transparent around the product, a soft edge): its
    alpha is the matte, no segmenter runs, and the cutout is confident."""
    import cv2

    rgb = np.random.default_rng(7).integers(0, 256, (180, 240, 3), dtype=np.uint8)  # no outline a segmenter could find
    alpha = np.zeros((180, 240), np.uint8)
    cv2.ellipse(alpha, (120, 95), (70, 55), 0, 0, 360, 255, thickness=-1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)  # a soft, anti-aliased edge
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buffer, format="PNG")
    with django_capture_on_commit_callbacks(execute=True):
        photo = studio_services.photo_add(workspace=workspace, file=SimpleUploadedFile("cut.png", buffer.getvalue())).photo

    assert _cutout_job(photo).status == JobStatus.SUCCEEDED
    cutout = Cutout.objects.get(photo=photo)
    result = cutout_result(cutout)
    assert (cutout.backend, cutout.confident, list(cutout.notes)) == ("file-alpha", True, [])
    # The matte is the file's alpha; the lock region is its solid interior, the photo's own pixels.
    from generation.segmentation.base import LOCK_ALPHA_THRESHOLD

    stored_alpha = np.asarray(Image.open(cutout.cutout.open("rb")).convert("RGBA"))[..., 3]
    assert np.array_equal(stored_alpha[~result.mask], alpha[~result.mask])
    assert result.mask.any() and (alpha[result.mask] >= LOCK_ALPHA_THRESHOLD * 255).all()
    assert not result.mask[alpha < 128].any()
    assert np.array_equal(result.foreground[result.mask], rgb[result.mask])
    assert cutout.locked_pixels == int(result.mask.sum()) > 9000


def test_an_opaque_rgba_png_is_segmented_as_usual(workspace, django_capture_on_commit_callbacks):
    from tests.images import product_on_white

    rgba = np.dstack([np.asarray(Image.open(io.BytesIO(product_on_white(size=(W, H)))).convert("RGB")), np.full((H, W), 255, np.uint8)])
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    with django_capture_on_commit_callbacks(execute=True):
        photo = studio_services.photo_add(workspace=workspace, file=SimpleUploadedFile("opaque.png", buffer.getvalue())).photo

    assert Cutout.objects.get(photo=photo).backend == "graphcut"


# Touch-up options: snapping to edges and filling holes travel to the job ----------------------


def test_a_touch_up_with_fill_holes_makes_a_revision_without_the_hole(api, photo, django_capture_on_commit_callbacks):
    base_mask = cutout_result(Cutout.objects.get(photo=photo)).mask
    holed = base_mask.copy()
    holed[80:100, 110:130] = False  # a hole inside the box (x 80..160, y 45..135)

    with django_capture_on_commit_callbacks(execute=True):
        response = _post_mask(api, photo, png(holed), holes="fill", snap_edges="false")

    job = PhotoJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.params["holes"], job.params["snap_edges"]) == (JobStatus.SUCCEEDED, "fill", False)
    revised = cutout_result(Cutout.objects.get(photo=photo, revision=2))
    assert revised.mask[80:100, 110:130].all()
    assert np.array_equal(revised.mask, base_mask | holed)


def test_a_touch_up_with_snapping_trims_a_stroke_past_the_edge(api, photo, django_capture_on_commit_callbacks):
    base_mask = cutout_result(Cutout.objects.get(photo=photo)).mask
    missing = base_mask.copy()
    missing[:, 135:] = False  # a revision that lost the box's right 25 columns (its edge is x = 160)
    with django_capture_on_commit_callbacks(execute=True):
        _post_mask(api, photo, png(missing))
    brushed = missing.copy()
    brushed[60:120, 130:175] = True  # adds them back, running 15 px onto the backdrop

    with django_capture_on_commit_callbacks(execute=True):
        response = _post_mask(api, photo, png(brushed), snap_edges="true")

    assert PhotoJob.objects.get(pk=response.json()["id"]).params["snap_edges"] is True
    revised = cutout_result(Cutout.objects.get(photo=photo, revision=3)).mask
    assert revised[60:120, 130:158].all()
    assert not revised[60:120, 163:175].any()
    assert np.array_equal(revised[:, :130], missing[:, :130])


def test_a_touch_up_with_an_unknown_hole_action_is_refused_and_nothing_is_stored(api, photo):
    files_before = stored_files()

    response = _post_mask(api, photo, png(np.zeros((H, W), bool)), holes="close")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"holes": ["Choose 'fill' or 'open' for holes, or leave it out."]}
    assert stored_files() == files_before
    assert _touch_up_jobs(photo) == []
