"""The REST API: authentication, products, photos, jobs, the error format, tenant isolation."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalog.models import PhotoJob, Product, ProductPhoto
from studio.services import photo_add
from tests.conftest import stored_files
from tests.factories import ProductFactory
from tests.images import image_bytes, product_on_white

pytestmark = pytest.mark.django_db


def make_photo(workspace, seed=0, product=None):
    data = product_on_white((96, 72), seed=seed, fmt="JPEG")  # big enough for the cutout to find the product
    return photo_add(workspace=workspace, file=SimpleUploadedFile(f"p{seed}.jpg", data), product=product).photo


# Authentication --------------------------------------------------------------------------


def test_token_for_email_and_password(user):
    response = APIClient().post("/api/v1/auth/token/", {"email": user.email.upper(), "password": "correct horse battery"}, format="json")

    assert response.status_code == 200
    assert len(response.json()["token"]) == 40
    again = APIClient()
    again.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert again.get("/api/v1/products/").status_code == 200


def test_wrong_password_gets_no_token(user):
    response = APIClient().post("/api/v1/auth/token/", {"email": user.email, "password": "nope"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "That email and password do not match an account."
    assert "token" not in response.json()


def test_anonymous_request_is_refused():
    response = APIClient().get("/api/v1/photos/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# Products --------------------------------------------------------------------------------


def test_product_create_derives_handle_and_lists(api, workspace):
    created = api.post("/api/v1/products/", {"title": "Amber Glass Bottle", "sku": "AGB-1"}, format="json")

    assert created.status_code == 201
    assert created.json()["handle"] == "amber-glass-bottle"
    listing = api.get("/api/v1/products/?search=amber").json()
    assert [p["title"] for p in listing["results"]] == ["Amber Glass Bottle"]
    assert Product.objects.get().workspace == workspace


def test_duplicate_handle_is_a_field_error(api, workspace):
    ProductFactory(workspace=workspace, title="Mug", handle="mug")

    response = api.post("/api/v1/products/", {"title": "Mug"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "Another product in this workspace already uses the handle 'mug'.",
            "fields": {"handle": ["Another product in this workspace already uses the handle 'mug'."]},
        }
    }


def test_product_update_and_delete(api, workspace):
    product = ProductFactory(workspace=workspace)

    assert api.patch(f"/api/v1/products/{product.pk}/", {"sku": "NEW-1"}, format="json").json()["sku"] == "NEW-1"
    assert api.delete(f"/api/v1/products/{product.pk}/").status_code == 204
    assert Product.objects.count() == 0


# Photos ----------------------------------------------------------------------------------


def test_photo_upload_over_the_api(api, workspace, django_capture_on_commit_callbacks):
    product = ProductFactory(workspace=workspace)
    data = product_on_white((96, 72))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post("/api/v1/photos/", {"file": SimpleUploadedFile("mug.png", data), "product": product.pk}, format="multipart")

    assert response.status_code == 201
    assert len(callbacks) == 2  # thumbnail and cutout tasks, sent only once the row was committed
    created = response.json()
    assert (created["original_name"], created["original_format"], created["product"], created["width"]) == ("mug.png", "PNG", product.pk, 96)
    assert created["status"] == "processing"
    # The in-process worker has run the thumbnail job on commit.
    body = api.get(f"/api/v1/photos/{created['id']}/").json()
    assert body["status"] == "ready"
    assert sorted((job["kind"], job["status"]) for job in body["jobs"]) == [("cutout", "succeeded"), ("thumbnail", "succeeded")]
    assert body["files"]["thumbnail"].endswith(f"/api/v1/photos/{body['id']}/file/thumbnail/")
    original = api.get(f"/api/v1/photos/{body['id']}/file/original/")
    assert b"".join(original.streaming_content) == data


def test_duplicate_upload_answers_200_with_the_existing_photo(api, workspace):
    data = image_bytes("JPEG")
    first = api.post("/api/v1/photos/", {"file": SimpleUploadedFile("a.jpg", data)}, format="multipart")

    second = api.post("/api/v1/photos/", {"file": SimpleUploadedFile("b.jpg", data)}, format="multipart")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]


def test_rejected_upload_answers_400_in_the_error_format(api):
    response = api.post("/api/v1/photos/", {"file": SimpleUploadedFile("x.jpg", b"hello" * 50)}, format="multipart")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "unsupported_type",
            "message": "This file is not a JPEG, PNG, WebP, HEIC or AVIF image.",
            "fields": {"file": ["This file is not a JPEG, PNG, WebP, HEIC or AVIF image."]},
        }
    }
    assert ProductPhoto.objects.count() == 0
    assert stored_files() == []


def test_upload_without_a_file_is_a_field_error(api):
    response = api.post("/api/v1/photos/", {}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": ["No file was submitted."]}


def test_photo_list_filters_by_product(api, workspace):
    product = ProductFactory(workspace=workspace)
    attached = make_photo(workspace, seed=1, product=product)
    make_photo(workspace, seed=2)

    by_product = api.get(f"/api/v1/photos/?product={product.pk}").json()
    unassigned = api.get("/api/v1/photos/?unassigned=true").json()

    assert [p["id"] for p in by_product["results"]] == [attached.pk]
    assert by_product["count"] == 1
    assert unassigned["count"] == 1


def test_photo_assign_and_delete_removes_files(api, workspace, django_capture_on_commit_callbacks):
    photo = make_photo(workspace)
    product = ProductFactory(workspace=workspace)

    assigned = api.patch(f"/api/v1/photos/{photo.pk}/", {"product": product.pk}, format="json")
    assert assigned.json()["product"] == product.pk

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/photos/{photo.pk}/").status_code == 204
    assert ProductPhoto.objects.count() == 0
    assert stored_files() == []


@pytest.mark.parametrize("page_size", [1, 10])
def test_photo_list_query_count_does_not_grow_with_the_page(api, workspace, django_assert_num_queries, page_size):
    for seed in range(10):
        make_photo(workspace, seed=seed, product=ProductFactory(workspace=workspace))

    # token + membership, count, page, jobs prefetch
    with django_assert_num_queries(5):
        response = api.get(f"/api/v1/photos/?page_size={page_size}")

    assert len(response.json()["results"]) == page_size


def test_jobs_list_and_detail(api, workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = make_photo(workspace)
    job = PhotoJob.objects.get(photo=photo, kind="thumbnail")

    listing = api.get(f"/api/v1/photo-jobs/?photo={photo.pk}").json()
    detail = api.get(f"/api/v1/photo-jobs/{job.pk}/").json()

    assert sorted(j["kind"] for j in listing["results"]) == ["cutout", "thumbnail"]
    assert (detail["kind"], detail["status"], detail["progress"], detail["attempts"]) == ("thumbnail", "succeeded", 100, 1)


# Tenant isolation: another workspace's rows are not found, for reads and writes ------------


@pytest.fixture
def foreign_rows(other_membership):
    workspace = other_membership.workspace
    product = ProductFactory(workspace=workspace)
    photo = make_photo(workspace, seed=99, product=product)
    return {"product": product, "photo": photo, "job": PhotoJob.objects.get(photo=photo, kind="thumbnail")}


@pytest.mark.parametrize(
    ("method", "url", "payload"),
    [
        ("get", "/api/v1/products/{product}/", None),
        ("patch", "/api/v1/products/{product}/", {"title": "Mine now"}),
        ("put", "/api/v1/products/{product}/", {"title": "Mine now", "handle": "mine"}),
        ("delete", "/api/v1/products/{product}/", None),
        ("get", "/api/v1/photos/{photo}/", None),
        ("patch", "/api/v1/photos/{photo}/", {"product": None}),
        ("delete", "/api/v1/photos/{photo}/", None),
        ("get", "/api/v1/photos/{photo}/file/original/", None),
        ("get", "/api/v1/photos/{photo}/file/thumbnail/", None),
        ("get", "/api/v1/photo-jobs/{job}/", None),
    ],
)
def test_rows_of_another_workspace_answer_404(api, foreign_rows, method, url, payload):
    ids = {name: row.pk for name, row in foreign_rows.items()}

    response = getattr(api, method)(url.format(**ids), payload, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Product.objects.get(pk=ids["product"]).title == foreign_rows["product"].title
    assert ProductPhoto.objects.filter(pk=ids["photo"]).exists()


@pytest.mark.parametrize("url", ["/api/v1/products/", "/api/v1/photos/", "/api/v1/photo-jobs/"])
def test_lists_show_only_the_callers_workspace(api, foreign_rows, url):
    assert api.get(url).json()["count"] == 0


def test_upload_cannot_attach_to_another_workspaces_product(api, foreign_rows):
    response = api.post(
        "/api/v1/photos/",
        {"file": SimpleUploadedFile("a.jpg", image_bytes("JPEG", seed=5)), "product": foreign_rows["product"].pk},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_product"
    assert ProductPhoto.objects.count() == 1  # only the other workspace's own photo


def test_assign_to_another_workspaces_product_is_not_found(api, workspace, foreign_rows):
    photo = make_photo(workspace, seed=3)

    response = api.patch(f"/api/v1/photos/{photo.pk}/", {"product": foreign_rows["product"].pk}, format="json")

    assert response.status_code == 404
    photo.refresh_from_db()
    assert photo.product is None


def test_workspace_header_cannot_reach_a_workspace_the_caller_is_not_in(api, foreign_rows):
    response = api.get("/api/v1/products/", HTTP_X_VITRINE_WORKSPACE=foreign_rows["product"].workspace.slug)

    assert response.status_code == 403


def test_schema_and_docs_are_served(api):
    assert api.get("/api/schema/").status_code == 200
    assert APIClient().get("/api/docs/").status_code == 200


def test_photo_list_filters_by_status(api, workspace, django_capture_on_commit_callbacks):
    from catalog.jobs import job_fail

    with django_capture_on_commit_callbacks(execute=True):
        ready = make_photo(workspace, seed=1)
        failed = make_photo(workspace, seed=2)
    job = PhotoJob.objects.get(photo=failed, kind="cutout")
    PhotoJob.objects.filter(pk=job.pk).update(status="running")
    job.status = "running"
    job_fail(job=job, error="The cutout could not be made: test")
    processing = make_photo(workspace, seed=3)  # its jobs are still queued

    ids = {status: [p["id"] for p in api.get(f"/api/v1/photos/?status={status}").json()["results"]] for status in ("ready", "failed", "processing")}

    assert ids == {"ready": [ready.pk], "failed": [failed.pk], "processing": [processing.pk]}
    assert api.get("/api/v1/photos/?status=lost").status_code == 400
