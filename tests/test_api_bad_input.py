"""The 500s of issue 14, each a test: ordinary bad input gets a clear 4xx with a message a
merchant can act on (the API's error format; a message on the page), and nothing happens."""
import pytest

from brand.models import BrandKit
from brand.services import workspace_defaults_ensure
from catalog.models import Role
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_api(api, membership):
    """The caller as a brand manager of a workspace with its default kit and presets."""
    membership.role = Role.BRAND_MANAGER
    membership.save()
    workspace_defaults_ensure(workspace=membership.workspace)
    return api


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def error_of(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


# Query parameters of the list endpoints --------------------------------------------------

ID_MESSAGE = "Use the id of a row: a whole number."


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/photos/", "product"),
        ("/api/v1/photo-jobs/", "photo"),
        ("/api/v1/cutouts/", "photo"),
        ("/api/v1/jobs/", "photo"),
    ],
)
@pytest.mark.parametrize("value", ["abc", "1.5", "²", "-3"])
def test_a_non_numeric_id_filter_is_a_400_naming_the_parameter(api, path, parameter, value):
    response = api.get(path, {parameter: value})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    expected = "Use the id of a row: a whole number of 1 or more." if value == "-3" else ID_MESSAGE
    assert error["fields"] == {parameter: [expected]}


@pytest.mark.parametrize("parameter", ["job", "photo", "product", "preset"])
@pytest.mark.parametrize("value", ["abc", "²"])
def test_asset_filters_refuse_a_non_numeric_id(api, parameter, value):
    response = api.get("/api/v1/assets/", {parameter: value})
    assert response.status_code == 400
    assert error_of(response)["fields"] == {parameter: [f"'{value}' is not an id: use a whole number."]}


def test_a_nul_in_a_channel_filter_is_a_400(api):
    response = api.get("/api/v1/assets/", {"channel": "square\x00"})
    assert response.status_code == 400
    assert error_of(response)["fields"] == {"channel": ["Choose a channel name from the list (printable text only)."]}


@pytest.mark.parametrize("search", ["a\x00b", "tab\there", "\x7f"])
def test_control_characters_in_search_are_a_400(api, workspace, search):
    ProductFactory(workspace=workspace, title="Amber glass bottle")
    response = api.get("/api/v1/products/", {"search": search})
    assert response.status_code == 400
    (message,) = error_of(response)["fields"]["search"]
    assert message.startswith("Search for printable text:")


def test_a_plain_search_still_narrows_the_products(api, workspace):
    ProductFactory(workspace=workspace, title="Amber glass bottle")
    ProductFactory(workspace=workspace, title="Ceramic mug")
    response = api.get("/api/v1/products/", {"search": "amber"})
    assert response.status_code == 200
    assert [p["title"] for p in response.json()["results"]] == ["Amber glass bottle"]


@pytest.mark.parametrize(
    ("path", "query", "field", "message"),
    [
        ("/api/v1/photos/", {"status": "broken"}, "status", '"broken" is not a valid choice.'),
        ("/api/v1/photo-jobs/", {"status": "done"}, "status", '"done" is not a valid choice.'),
        ("/api/v1/jobs/", {"status": "done"}, "status", '"done" is not a valid choice.'),
        ("/api/v1/photos/", {"unassigned": "maybe"}, "unassigned", "Use true or false."),
        ("/api/v1/notifications/", {"unread": "maybe"}, "unread", "Use true or false."),
        ("/api/v1/products/", {"page": "abc"}, "page", "'abc' is not a valid page: use a whole number of 1 or more."),
        ("/api/v1/products/", {"page": "0"}, "page", "'0' is not a valid page: use a whole number of 1 or more."),
        ("/api/v1/products/", {"page_size": "null"}, "page_size", "'null' is not a valid page_size: use a whole number from 1 to 200."),
        ("/api/v1/products/", {"page_size": "201"}, "page_size", "'201' is not a valid page_size: use a whole number from 1 to 200."),
    ],
)
def test_unknown_states_flags_and_pages_are_a_400(api, path, query, field, message):
    response = api.get(path, query)
    assert response.status_code == 400
    assert error_of(response)["fields"] == {field: [message]}


def test_a_page_past_the_last_is_still_a_404(api):
    response = api.get("/api/v1/products/", {"page": "7"})
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_photo_delete_with_a_bad_flag_deletes_nothing(api, workspace):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from catalog.models import ProductPhoto
    from studio.services import photo_add
    from tests.images import image_bytes

    photo = photo_add(workspace=workspace, file=SimpleUploadedFile("p.jpg", image_bytes("JPEG", size=(40, 30)))).photo
    response = api.delete(f"/api/v1/photos/{photo.pk}/?delete_assets=perhaps")
    assert response.status_code == 400
    assert error_of(response)["fields"] == {"delete_assets": ["Use true or false."]}
    assert ProductPhoto.objects.filter(pk=photo.pk).exists()


def test_a_path_id_that_is_not_a_number_is_a_json_404(api):
    response = api.get("/api/v1/photos/abc/")
    assert response.status_code == 404
    assert error_of(response) == {
        "code": "not_found",
        "message": "No API endpoint at /api/v1/photos/abc/. The endpoints are listed at /api/docs/; ids in paths are whole numbers.",
    }


# Brand kits: what used to be accepted and then fail every job ------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "Summer"}, "palette", "This field is required."),
        ({"name": "Summer", "palette": ["#112233", "#445566"], "default_channels": 5}, "default_channels", None),
        ({"name": "Summer", "palette": ["#112233", "#445566"], "banned_terms": 123}, "banned_terms", None),
        ({"name": "Summer", "palette": ["#112233", "#445566"], "banned_terms": "abc"}, "banned_terms", None),
        ({"name": "Summer", "palette": 7}, "palette", 'Give 2 or 3 colours as "#rrggbb" (backdrop, surface, accent).'),
    ],
)
def test_a_brand_kit_with_a_wrong_field_is_a_400_and_no_kit(manager_api, workspace, body, field, message):
    before = BrandKit.objects.filter(workspace=workspace).count()
    response = manager_api.post("/api/v1/brand-kits/", body, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert list(error["fields"]) == [field]
    if message is not None:
        assert error["fields"][field] == [message]
    assert BrandKit.objects.filter(workspace=workspace).count() == before


def test_a_banned_terms_number_is_refused_on_change_too_and_the_kit_keeps_working(manager_api, workspace):
    kit = BrandKit.objects.get(workspace=workspace, is_default=True)
    response = manager_api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"banned_terms": 123}, format="json")
    assert response.status_code == 400
    kit.refresh_from_db()
    assert kit.banned_terms == []
    assert manager_api.get(f"/api/v1/brand-kits/{kit.pk}/").status_code == 200


# Pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?product=abc", "“abc” is not a product: choose one from the list."),
        ("?product=%C2%B2", "“²” is not a product: choose one from the list."),
        ("?status=broken", "Filter photos by one of: processing, failed, ready."),
        ("?q=a%00b", "Search for printable text: a NUL character cannot be part of a title, SKU or handle."),
        ("?q=a%01b", "Search for printable text: control characters cannot be part of a title, SKU or handle."),
    ],
)
def test_the_products_page_says_which_filter_it_could_not_use(signed_in, workspace, query, message):
    ProductFactory(workspace=workspace, title="Amber glass bottle")
    response = signed_in.get(f"/products/{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert f"These filters could not be used: {message} Showing every product and photo instead." in html
    assert "Amber glass bottle" in html


@pytest.mark.parametrize("query", ["?product=abc", "?status=broken", "?q=%00"])
def test_the_photo_grid_partial_shows_every_photo_for_a_filter_the_page_reported(signed_in, workspace, query):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from studio.services import photo_add
    from tests.images import image_bytes

    photo_add(workspace=workspace, file=SimpleUploadedFile("a.jpg", image_bytes("JPEG", size=(40, 30))))
    response = signed_in.get(f"/products/photos/{query}")
    assert response.status_code == 200
    assert "a.jpg" in response.content.decode()


@pytest.mark.parametrize("query", ["?product=abc", "?job=%C2%B2", "?channel=sq%00"])
def test_the_gallery_says_which_filter_it_could_not_use(signed_in, query):
    response = signed_in.get(f"/gallery/{query}")
    assert response.status_code == 400
    assert "These filters could not be used:" in response.content.decode()


@pytest.mark.parametrize("query", ["?product=abc", "?photo=%C2%B2", "?review_state=nope"])
def test_the_review_queue_says_which_filter_it_could_not_use(client, membership, query):
    membership.role = Role.BRAND_MANAGER
    membership.save()
    client.force_login(membership.user)
    response = client.get(f"/review/{query}")
    assert response.status_code == 200  # the queue stays usable, unfiltered, under the message
    assert 'class="error" role="alert"' in response.content.decode()


# The error format's promise: `fields` maps a field to a list of messages --------------------


def test_an_error_in_one_item_of_a_list_keeps_the_field_and_names_the_item(api):
    response = api.post("/api/v1/notifications/read/", {"ids": [3, 0, "x"]}, format="json")
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "invalid",
        "message": "Ensure this value is greater than or equal to 1.",
        "fields": {"ids": ["Item 2: Ensure this value is greater than or equal to 1.", "Item 3: A valid integer is required."]},
    }


@pytest.mark.parametrize(("body", "status"), [({"name": "CI", "expires_at": ""}, 400), ({"name": "CI", "expires_at": None}, 201)])
def test_an_empty_expiry_is_not_a_token_that_never_expires(api, body, status):
    from catalog.models import ApiToken

    before = ApiToken.objects.count()
    response = api.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == status
    assert ApiToken.objects.count() == before + (status == 201)


def test_a_form_encoded_token_request_is_refused_and_makes_no_token(api):
    from catalog.models import ApiToken

    before = ApiToken.objects.count()
    response = api.post("/api/v1/tokens/", {"name": "CI", "expires_at": ""}, format="multipart")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert ApiToken.objects.count() == before


@pytest.mark.parametrize(("path", "parameter"), [("/api/v1/photos/", "status"), ("/api/v1/cutouts/", "photo"), ("/api/v1/notifications/", "unread")])
def test_an_empty_filter_value_is_a_400_not_a_dropped_filter(api, path, parameter):
    response = api.get(f"{path}?{parameter}=")
    assert response.status_code == 400
    assert error_of(response)["fields"] == {parameter: [f"Give {parameter} a value, or leave it out."]}


def test_an_unsafe_method_on_no_endpoint_is_a_json_404_even_for_a_browser_session(user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.delete("/api/v1/tokens/abc/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
