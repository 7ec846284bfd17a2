"""POST /api/v1/photos/assign/: many photos to one product (or to none), all or none."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalog.models import ProductPhoto
from studio.services import photo_add
from tests.factories import ProductFactory
from tests.images import image_bytes

pytestmark = pytest.mark.django_db

URL = "/api/v1/photos/assign/"


def make_photo(workspace, seed=0, product=None):
    data = image_bytes("JPEG", size=(40, 30), seed=seed)
    return photo_add(workspace=workspace, file=SimpleUploadedFile(f"p{seed}.jpg", data), product=product).photo


def products_of(*photos):
    return [ProductPhoto.objects.get(pk=photo.pk).product_id for photo in photos]


def test_photos_move_to_a_product_in_one_call(api, workspace):
    product = ProductFactory(workspace=workspace)
    elsewhere = ProductFactory(workspace=workspace)
    first, second = make_photo(workspace, seed=1), make_photo(workspace, seed=2, product=elsewhere)
    untouched = make_photo(workspace, seed=3)

    response = api.post(URL, {"photos": [second.pk, first.pk, second.pk], "product": product.pk}, format="json")

    assert response.status_code == 200
    assert response.json() == {"product": product.pk, "photos": sorted([first.pk, second.pk])}
    assert products_of(first, second, untouched) == [product.pk, product.pk, None]


def test_product_null_detaches_the_photos(api, workspace):
    product = ProductFactory(workspace=workspace)
    photos = [make_photo(workspace, seed=seed, product=product) for seed in (1, 2)]

    response = api.post(URL, {"photos": [p.pk for p in photos], "product": None}, format="json")

    assert response.json() == {"product": None, "photos": sorted(p.pk for p in photos)}
    assert products_of(*photos) == [None, None]


def test_one_foreign_photo_moves_none_and_is_named(api, workspace, other_membership):
    product = ProductFactory(workspace=workspace)
    mine = make_photo(workspace, seed=1)
    theirs = make_photo(other_membership.workspace, seed=2)

    response = api.post(URL, {"photos": [mine.pk, theirs.pk], "product": product.pk}, format="json")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": f"No photo with id {theirs.pk} in this workspace; no photo was moved."}
    }
    assert products_of(mine, theirs) == [None, None]


def test_a_photo_id_that_does_not_exist_moves_none(api, workspace):
    product = ProductFactory(workspace=workspace)
    mine = make_photo(workspace, seed=1)

    response = api.post(URL, {"photos": [mine.pk, mine.pk + 1000], "product": product.pk}, format="json")

    assert response.status_code == 404
    assert products_of(mine) == [None]


def test_another_workspaces_product_is_not_found(api, workspace, other_membership):
    foreign = ProductFactory(workspace=other_membership.workspace)
    mine = make_photo(workspace, seed=1)

    response = api.post(URL, {"photos": [mine.pk], "product": foreign.pk}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert products_of(mine) == [None]


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"photos": [], "product": None}, "photos", "Choose at least one photo to move."),
        ({"photos": list(range(1, 502)), "product": None}, "photos", "Move at most 500 photos at a time."),
        ({"photos": ["seven"], "product": None}, "photos", "A valid integer is required."),
        ({"photos": "7", "product": None}, "photos", 'Expected a list of items but got type "str".'),
        ({"photos": [1]}, "product", "This field is required."),
    ],
)
def test_bad_requests_are_field_errors_and_move_nothing(api, workspace, payload, field, message):
    product = ProductFactory(workspace=workspace)
    mine = make_photo(workspace, seed=1, product=product)

    response = api.post(URL, payload, format="json")

    assert response.status_code == 400
    body = response.json()["error"]
    assert (body["code"], body["message"], field in body["fields"]) == ("invalid", message, True)
    assert products_of(mine) == [product.pk]


def test_anonymous_callers_cannot_move_photos(workspace):
    photo = make_photo(workspace)

    assert APIClient().post(URL, {"photos": [photo.pk], "product": None}, format="json").status_code == 401
    assert products_of(photo) == [None]


@pytest.mark.postgres
def test_the_photos_are_locked_while_they_move(api, workspace):
    # Two overlapping moves must queue on the rows, not interleave (and the check that every
    # id is ours must hold until the update).
    product = ProductFactory(workspace=workspace)
    photo = make_photo(workspace)

    with CaptureQueriesContext(connection) as queries:
        assert api.post(URL, {"photos": [photo.pk], "product": product.pk}, format="json").status_code == 200

    # FOR UPDATE or FOR NO KEY UPDATE (a lock that only serializes: catalog.services.photos_assign).
    locking = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"] or "FOR NO KEY UPDATE" in q["sql"]]
    assert [('"catalog_product"' in sql, '"catalog_productphoto"' in sql) for sql in locking] == [(True, False), (False, True)]


def test_the_schema_describes_the_bulk_move(api):
    schema = api.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/photos/assign/"]["post"]
    assert operation["summary"] == "Move many photos to a product"
    assert "either every photo moves or none does" in operation["description"]
    assert sorted(operation["responses"]) == ["200", "400", "401", "403", "404", "411", "413", "415"]
    request = schema["components"]["schemas"][operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert sorted(request["required"]) == ["photos", "product"]
