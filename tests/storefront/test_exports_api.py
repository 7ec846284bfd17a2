"""The exports API: publish one or many approved images, list and filter exports (only the
caller's workspace), retry a failed one; roles, refusals in the API's error format."""
import pytest

from fakeshop.testing import running_fake_shop
from storefront.models import Export, ExportStatus
from storefront.services import connection_create, storefront_product_apply
from studio.models import Asset, ReviewState
from tests.conftest import _client_for
from tests.storefront.publishing import approve, connect, decider, link_products, make_assets, shop_images

pytestmark = pytest.mark.django_db


def _payload(pid: int) -> dict:
    return {"id": pid, "title": f"Mug {pid}", "handle": f"mug-{pid}", "updated_at": "2026-01-01T00:00:00Z", "variants": [{"id": pid * 10, "sku": f"MUG-{pid}"}]}


@pytest.fixture
def shop_setup(workspace, user, upload_product_photo):
    """A connection (no traffic: its tasks are not run here) with two linked products, a
    photo of the first, and a brand manager's API client."""
    connection = connection_create(workspace=workspace, shop_domain="mugs.myshopify.com", access_token="shpat_x", api_base_url="http://127.0.0.1:9/admin/api/2025-01")
    links = [storefront_product_apply(connection=connection, payload=_payload(pid)) for pid in (101, 102)]
    photo = upload_product_photo((96, 72))
    photo.product = links[0].product
    photo.save(update_fields=["product"])
    manager = decider(workspace)

    def approved(count, seed=1):
        return approve(make_assets(photo=photo, submitter=user, count=count, seed=seed), submitter=user, approver=manager)

    return {"connection": connection, "photo": photo, "manager": manager, "manager_api": _client_for(manager), "approved": approved}


def test_a_brand_manager_publishes_one_image_and_gets_its_export(shop_setup):
    (asset,) = shop_setup["approved"](1)
    answer = shop_setup["manager_api"].post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": shop_setup["connection"].pk}, format="json")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    export = Export.objects.get()
    assert body["id"] == export.pk and body["asset"] == asset.pk and body["status"] == "queued"
    assert body["shop_domain"] == "mugs.myshopify.com" and body["remote_product_id"] == "101" and body["content_sha256"] == asset.sha256
    assert "access_token" not in str(body) and "shpat_x" not in str(body)
    again = shop_setup["manager_api"].post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": shop_setup["connection"].pk}, format="json")
    assert again.status_code == 202 and again.json()["id"] == export.pk
    assert Export.objects.count() == 1


def test_a_merchant_may_not_publish(shop_setup, api):
    (asset,) = shop_setup["approved"](1)
    answer = api.post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": shop_setup["connection"].pk}, format="json")
    assert answer.status_code == 403
    assert answer.json()["error"]["message"] == "Only a brand manager or an owner of this workspace can publish images to a storefront."
    assert Export.objects.count() == 0


def test_an_image_not_approved_answers_409_in_words(shop_setup):
    (asset,) = shop_setup["approved"](1)
    Asset.objects.filter(pk=asset.pk).update(review_state=ReviewState.REJECTED)
    answer = shop_setup["manager_api"].post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": shop_setup["connection"].pk}, format="json")
    assert answer.status_code == 409
    assert answer.json()["error"] == {"code": "not_approved", "message": "This image is rejected. Only approved images leave Vitrine: approve it on the Review page first."}
    assert Export.objects.count() == 0


@pytest.mark.parametrize("body,field", [({}, "connection"), ({"connection": "abc"}, "connection"), ({"connection": 1, "replace_earlier": "maybe"}, "replace_earlier")])
def test_a_bad_body_answers_400_naming_the_field(shop_setup, body, field):
    (asset,) = shop_setup["approved"](1)
    answer = shop_setup["manager_api"].post(f"/api/v1/assets/{asset.pk}/publish/", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid" and field in answer.json()["error"]["fields"]


def test_another_workspaces_connection_or_asset_is_not_found(shop_setup, other_membership):
    (asset,) = shop_setup["approved"](1)
    theirs = connection_create(workspace=other_membership.workspace, shop_domain="rival.myshopify.com", access_token="shpat_y")
    answer = shop_setup["manager_api"].post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": theirs.pk}, format="json")
    assert answer.status_code == 404
    rival = _client_for(other_membership.user)
    answer = rival.post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": theirs.pk}, format="json")
    assert answer.status_code == 404
    assert Export.objects.count() == 0


def test_bulk_publish_queues_the_approved_and_skips_the_rest_with_why(shop_setup):
    first, second, third = shop_setup["approved"](3)
    Asset.objects.filter(pk=third.pk).update(review_state=ReviewState.IN_REVIEW)
    answer = shop_setup["manager_api"].post("/api/v1/assets/publish/", {"ids": [first.pk, second.pk, third.pk], "connection": shop_setup["connection"].pk}, format="json")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert [e["asset"] for e in body["exports"]] == [first.pk, second.pk]
    assert body["skipped"] == [{"id": third.pk, "reason": "This image is in review. Only approved images leave Vitrine: approve it on the Review page first."}]
    assert Export.objects.count() == 2


def test_bulk_publish_with_an_unknown_id_queues_nothing(shop_setup):
    (asset,) = shop_setup["approved"](1)
    answer = shop_setup["manager_api"].post("/api/v1/assets/publish/", {"ids": [asset.pk, 999999], "connection": shop_setup["connection"].pk}, format="json")
    assert answer.status_code == 404
    assert Export.objects.count() == 0


def test_the_list_is_the_workspaces_own_and_filters(shop_setup, other_membership, django_assert_max_num_queries):
    first, second = shop_setup["approved"](2)
    for asset in (first, second):
        shop_setup["manager_api"].post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": shop_setup["connection"].pk}, format="json")
    Export.objects.filter(asset=second).update(status=ExportStatus.FAILED, error="The shop refused the image: too big")
    client = shop_setup["manager_api"]
    with django_assert_max_num_queries(12):
        listed = client.get("/api/v1/exports/").json()
    assert [e["asset"] for e in listed["results"]] == [second.pk, first.pk]
    failed = client.get("/api/v1/exports/", {"status": "failed"}).json()["results"]
    assert [(e["asset"], e["error"]) for e in failed] == [(second.pk, "The shop refused the image: too big")]
    assert client.get("/api/v1/exports/", {"connection": shop_setup["connection"].pk}).json()["count"] == 2
    assert client.get("/api/v1/exports/", {"status": "lost"}).status_code == 400
    assert client.get("/api/v1/exports/", {"connection": "x"}).status_code == 400
    assert _client_for(other_membership.user).get("/api/v1/exports/").json()["count"] == 0
    export = Export.objects.get(asset=first)
    assert client.get(f"/api/v1/exports/{export.pk}/").json()["id"] == export.pk
    assert _client_for(other_membership.user).get(f"/api/v1/exports/{export.pk}/").status_code == 404


def test_retry_requeues_a_failed_export_only(shop_setup, api):
    (asset,) = shop_setup["approved"](1)
    shop_setup["manager_api"].post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": shop_setup["connection"].pk}, format="json")
    export = Export.objects.get()
    client = shop_setup["manager_api"]
    answer = client.post(f"/api/v1/exports/{export.pk}/retry/")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "export_not_failed"
    Export.objects.filter(pk=export.pk).update(status=ExportStatus.FAILED, error="The shop could not be reached")
    assert api.post(f"/api/v1/exports/{export.pk}/retry/").status_code == 403  # a merchant
    answer = client.post(f"/api/v1/exports/{export.pk}/retry/")
    assert answer.status_code == 202
    assert (answer.json()["status"], answer.json()["error"]) == ("queued", "")


def test_publish_through_the_api_reaches_the_fake_shop(workspace, user, upload_product_photo, django_capture_on_commit_callbacks, settings):
    settings.VITRINE_STOREFRONT_MEDIA_POLL_SECONDS = 0.01
    with running_fake_shop(demo_products=1, seed=1) as shop:
        connection = connect(shop, workspace)
        (link,) = link_products(shop, connection)
        photo = upload_product_photo((96, 72))
        photo.product = link.product
        photo.save(update_fields=["product"])
        manager = decider(workspace)
        (asset,) = approve(make_assets(photo=photo, submitter=user, count=1), submitter=user, approver=manager)
        with django_capture_on_commit_callbacks(execute=True):
            answer = _client_for(manager).post(f"/api/v1/assets/{asset.pk}/publish/", {"connection": connection.pk}, format="json")
        assert answer.status_code == 202
        export = _client_for(manager).get(f"/api/v1/exports/{answer.json()['id']}/").json()
        (image,) = shop_images(shop)
        assert export["status"] == "published" and export["remote_media_id"] == image["media_id"] and export["published_at"]
        assert _client_for(manager).get(f"/api/v1/assets/{asset.pk}/").json()["review_state"] == "published"
