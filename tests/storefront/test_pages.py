"""The Storefronts page: who sees and changes what, workspace scoping, connecting with a token,
import progress, webhook health, exports with retry, publishing, and the words it shows."""
import logging
import re

import pytest
from django.test import Client

from catalog.models import ProductPhoto, Role
from storefront import services
from storefront.models import (
    ConnectionMethod, ConnectionStatus, Export, ExportStatus, RunStatus, StorefrontConnection, StorefrontProduct, SyncRun, WebhookDelivery,
)
from studio import reviews
from studio.models import ReviewState
from tests.factories import MembershipFactory, ProductFactory, WorkspaceFactory
from tests.studio.test_reviews import assets  # noqa: F401 - fixture: two real generated images

pytestmark = pytest.mark.django_db
TOKEN = "shpat_page_secret_0123456789abcdef"
LOOPBACK_API = "http://127.0.0.1:9/admin/api/2025-01"


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def manager(workspace):
    return MembershipFactory(workspace=workspace, role=Role.BRAND_MANAGER).user


@pytest.fixture
def connection(workspace):
    return services.connection_create(workspace=workspace, shop_domain="my-shop.myshopify.com", access_token=TOKEN, api_base_url=LOOPBACK_API)


@pytest.fixture
def rival_connection(other_membership):
    return services.connection_create(workspace=other_membership.workspace, shop_domain="rival.myshopify.com", access_token="shpat_rival", api_base_url=LOOPBACK_API)


def _card(html: str, connection) -> str:
    match = re.search(rf'<section class="card storefront" id="storefront-{connection.pk}".*?</section>', html, re.S)
    assert match, html
    return match.group(0)


# Who sees, who changes ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MERCHANT, Role.BRAND_MANAGER, Role.OWNER])
def test_every_member_finds_the_page_in_the_navigation(workspace, role):
    person = MembershipFactory(workspace=workspace, role=role).user

    html = _signed_in(person).get("/storefronts/").content.decode()

    assert '<a href="/storefronts/" aria-current="page">Storefronts</a>' in html


def test_a_merchant_sees_the_shop_but_no_controls_that_change_it(user, connection):
    html = _signed_in(user).get("/storefronts/").content.decode()

    assert "my-shop.myshopify.com" in html and "Connected" in html
    for control in ("Sync now", "Import everything", "Disconnect", 'action="/storefronts/connect/"', "Connect with OAuth"):
        assert control not in html


def test_a_merchant_cannot_connect_sync_publish_retry_or_disconnect(user, workspace, connection):
    merchant = _signed_in(user)

    answers = [
        merchant.post("/storefronts/connect/", {"shop_domain": "new-shop.myshopify.com", "access_token": "shpat_x"}),
        merchant.post(f"/storefronts/{connection.pk}/sync/", {"full": "1"}),
        merchant.post(f"/storefronts/{connection.pk}/publish/", {"asset": "1"}),
        merchant.post(f"/storefronts/{connection.pk}/disconnect/"),
        merchant.post("/storefronts/exports/1/retry/"),
    ]

    assert [a.status_code for a in answers] == [403] * 5
    assert all("Only a brand manager or an owner" in a.content.decode() for a in answers)
    assert list(StorefrontConnection.objects.values_list("shop_domain", "status")) == [("my-shop.myshopify.com", ConnectionStatus.ACTIVE)]
    assert not SyncRun.objects.exists()


def test_the_empty_page_tells_each_role_the_next_step(user, manager):
    merchant_html = _signed_in(user).get("/storefronts/").content.decode()
    manager_html = _signed_in(manager).get("/storefronts/").content.decode()

    assert "A brand manager or an owner of" in merchant_html and "can connect one" in merchant_html
    assert "Connect your shop below" in manager_html


def test_another_workspaces_connection_is_not_found_anywhere(manager, rival_connection):
    client = _signed_in(manager)

    answers = [
        client.get(f"/storefronts/{rival_connection.pk}/"),
        client.post(f"/storefronts/{rival_connection.pk}/sync/", {"full": "1"}),
        client.post(f"/storefronts/{rival_connection.pk}/publish/", {"asset": "1"}),
        client.post(f"/storefronts/{rival_connection.pk}/disconnect/"),
    ]
    page = client.get("/storefronts/").content.decode()

    assert [a.status_code for a in answers] == [404] * 4
    assert "rival.myshopify.com" not in page
    rival_connection.refresh_from_db()
    assert (rival_connection.status, rival_connection.has_credentials) == (ConnectionStatus.ACTIVE, True)
    assert not SyncRun.objects.exists()


# Connecting with a token --------------------------------------------------------------------


def test_a_manager_connects_a_shop_with_a_token_that_is_never_shown_or_logged(manager, workspace, settings, caplog):
    caplog.set_level(logging.DEBUG)
    settings.VITRINE_STOREFRONT_SHOP_URL = "http://127.0.0.1:9"
    client = _signed_in(manager)

    done = client.post("/storefronts/connect/", {"shop_domain": " New-Shop.myshopify.com ", "access_token": TOKEN, "webhook_secret": "whsec_page"})
    page = client.get("/storefronts/")

    assert (done.status_code, done["Location"]) == (302, "/storefronts/")
    connection = StorefrontConnection.objects.get()
    assert (connection.workspace, connection.shop_domain, connection.method) == (workspace, "new-shop.myshopify.com", ConnectionMethod.TOKEN)
    assert connection.access_token() == TOKEN and TOKEN not in connection.access_token_encrypted
    assert connection.api_base_url == f"http://127.0.0.1:9/admin/api/{settings.VITRINE_STOREFRONT_API_VERSION}"
    assert connection.webhook_secrets()[0] == "whsec_page"
    html = page.content.decode()
    assert "new-shop.myshopify.com is connected" in html
    assert TOKEN not in html and "whsec_page" not in html
    assert all(TOKEN not in repr(vars(record)) and TOKEN not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("shop_domain", ["new shop", "new-shop.example.com", "new-shop.myshopify.com/admin", ""])
def test_a_bad_shop_domain_is_refused_next_to_the_field_and_the_token_is_not_echoed(manager, shop_domain):
    refused = _signed_in(manager).post("/storefronts/connect/", {"shop_domain": shop_domain, "access_token": TOKEN})

    html = refused.content.decode()
    assert refused.status_code == 400
    assert "looks like your-shop.myshopify.com" in html or "This field is required" in html
    assert TOKEN not in html
    assert not StorefrontConnection.objects.exists()


def test_a_missing_token_is_asked_for(manager):
    refused = _signed_in(manager).post("/storefronts/connect/", {"shop_domain": "new-shop.myshopify.com", "access_token": ""})

    assert refused.status_code == 400
    assert "This field is required" in refused.content.decode()
    assert not StorefrontConnection.objects.exists()


def test_a_shop_connected_to_another_workspace_is_refused_in_words(manager, rival_connection):
    refused = _signed_in(manager).post("/storefronts/connect/", {"shop_domain": "rival.myshopify.com", "access_token": TOKEN})

    assert refused.status_code == 400
    assert "already connected to another Vitrine workspace" in refused.content.decode()
    rival_connection.refresh_from_db()
    assert rival_connection.access_token() == "shpat_rival"


def test_disconnecting_erases_the_token_and_says_what_stays(manager, connection):
    client = _signed_in(manager)

    done = client.post(f"/storefronts/{connection.pk}/disconnect/")
    html = client.get("/storefronts/").content.decode()

    assert done.status_code == 302
    connection.refresh_from_db()
    assert (connection.status, connection.access_token_encrypted, connection.webhook_secret_encrypted) == (ConnectionStatus.DISABLED, "", "")
    assert "my-shop.myshopify.com is disconnected and its access token erased" in html
    assert "Disconnected: nothing is synced or published" in html
    assert "Sync now" not in _card(html, connection)


def test_disconnect_asks_for_confirmation_first(manager, connection):
    card = _card(_signed_in(manager).get("/storefronts/").content.decode(), connection)

    assert "<summary>Disconnect…</summary>" in card
    assert "Vitrine erases its access token and stops syncing and publishing" in card


# Import progress and webhook health -------------------------------------------------------


def test_a_running_import_shows_a_progress_bar_that_refreshes_itself(user, connection):
    SyncRun.objects.create(connection=connection, full=True, status=RunStatus.RUNNING, total=10, done=4, photos_added=3)
    client = _signed_in(user)

    page = _card(client.get("/storefronts/").content.decode(), connection)
    partial = client.get(f"/storefronts/{connection.pk}/").content.decode()

    for html in (page, partial):
        assert '<progress max="10" value="4" aria-label="Import progress">4 of 10</progress>' in html
        assert f'hx-get="/storefronts/{connection.pk}/" hx-trigger="every 1s"' in html
        assert "Import of every product" in html and "4 of 10 products" in html and "3 photos added" in html


def test_a_finished_import_stops_refreshing_and_a_failed_one_says_why(user, connection):
    SyncRun.objects.create(connection=connection, full=False, status=RunStatus.FAILED, total=3, done=1, error="The shop refused Vitrine's access token. Reconnect the storefront on the Storefronts page.")

    card = _card(_signed_in(user).get("/storefronts/").content.decode(), connection)

    assert "hx-trigger" not in card
    assert "Failed" in card and "The shop refused Vitrine&#x27;s access token" in card


def test_a_queued_import_waits_for_a_worker_in_words(user, connection):
    SyncRun.objects.create(connection=connection, full=True, status=RunStatus.QUEUED)

    card = _card(_signed_in(user).get("/storefronts/").content.decode(), connection)

    assert "waiting for a worker" in card
    assert '<progress aria-label="Import progress">' in card and "hx-trigger" in card


def test_webhook_health_counts_what_arrived_and_what_failed(user, connection):
    WebhookDelivery.objects.create(connection=connection, webhook_id="w1", topic="products/update", payload={})
    WebhookDelivery.objects.create(connection=connection, webhook_id="w2", topic="products/update", payload={}, error="no updated_at")

    card = _card(_signed_in(user).get("/storefronts/").content.decode(), connection)

    assert "2 received" in card and "1 could not be applied" in card
    assert "no updated_at" not in card  # the technical reason stays in the delivery row


def test_without_webhooks_the_page_says_none_came(user, connection):
    assert "None received yet" in _card(_signed_in(user).get("/storefronts/").content.decode(), connection)


# Import, publish, retry against the fake shop --------------------------------------------


@pytest.fixture
def shop(demo_shop):
    return demo_shop


def test_import_everything_brings_the_shops_products(manager, workspace, shop, django_capture_on_commit_callbacks):
    client = _signed_in(manager)
    client.post("/storefronts/connect/", {"shop_domain": shop.shop, "access_token": shop.token})
    connection = StorefrontConnection.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(f"/storefronts/{connection.pk}/sync/", {"full": "1"})
    html = client.get("/storefronts/").content.decode()

    assert queued.status_code == 302
    run = SyncRun.objects.get()
    assert (run.full, run.status, run.total, run.done) == (True, RunStatus.SUCCEEDED, 2, 2)
    assert sorted(StorefrontProduct.objects.filter(connection=connection).values_list("product__title", flat=True)) == ["Demo product 1", "Demo product 2"]
    assert "Importing every product from demo-shop.myshopify.com" in html
    assert '<progress max="2" value="2"' in html


def test_sync_of_a_disconnected_shop_is_refused_in_words(manager, connection):
    services.connection_disable(connection=connection, reason="test")
    client = _signed_in(manager)

    client.post(f"/storefronts/{connection.pk}/sync/")
    html = client.get("/storefronts/").content.decode()

    assert "This storefront is disconnected; connect it again before importing." in html
    assert not SyncRun.objects.exists()


@pytest.fixture
def linked(assets, workspace, manager, user, shop, django_capture_on_commit_callbacks):  # noqa: F811
    """The first generated image approved, its photo on a product imported from the fake shop."""
    connection = services.connection_create(workspace=workspace, shop_domain=shop.shop, access_token=shop.token, api_base_url=shop.admin_url)
    remote_id = next(iter(shop.products))
    product = ProductFactory(workspace=workspace, title="Demo product 1")
    StorefrontProduct.objects.create(connection=connection, product=product, remote_id=str(remote_id), remote_updated_at="2026-01-01T00:00:00Z", variants=[])
    ProductPhoto.objects.filter(pk=assets[0].photo_id).update(product=product)
    reviews.review_submit(asset=assets[0], actor=user)
    reviews.review_approve(asset=assets[0], actor=manager)
    return connection, assets[0], remote_id


def test_an_approved_image_waits_under_ready_to_publish_and_publishes_to_the_shop(manager, user, linked, shop, django_capture_on_commit_callbacks):
    connection, asset, remote_id = linked
    client = _signed_in(manager)
    before = _card(client.get("/storefronts/").content.decode(), connection)
    merchant_view = _card(_signed_in(user).get("/storefronts/").content.decode(), connection)

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"/storefronts/{connection.pk}/publish/", {"asset": asset.pk})
    after = _card(client.get("/storefronts/").content.decode(), connection)

    assert f'<tr data-asset-id="{asset.pk}">' in before and "Publish" in before
    assert f'<tr data-asset-id="{asset.pk}">' in merchant_view and 'action="/storefronts/' not in merchant_view
    assert done.status_code == 302
    export = Export.objects.get()
    assert (export.asset_id, export.status) == (asset.pk, ExportStatus.PUBLISHED)
    assert export.remote_media_id
    images = [i for p in shop.state()["products"] if p["id"] == remote_id for i in p["images"]]
    assert len(images) == 1
    assert f'<tr data-asset-id="{asset.pk}">' not in after  # no longer waiting
    assert f'data-export-id="{export.pk}" data-status="published"' in after and "Published" in after
    asset.refresh_from_db()
    assert asset.review_state == ReviewState.PUBLISHED


def test_a_failed_export_shows_its_reason_and_retry_queues_it_again(manager, user, linked, django_capture_on_commit_callbacks):
    connection, asset, _ = linked
    export = Export.objects.create(workspace=connection.workspace, connection=connection, asset=asset, content_sha256=asset.sha256, status=ExportStatus.FAILED, error="The shop refused the image: it is too large.")
    client = _signed_in(manager)

    card = _card(client.get("/storefronts/").content.decode(), connection)
    merchant_card = _card(_signed_in(user).get("/storefronts/").content.decode(), connection)
    with django_capture_on_commit_callbacks(execute=False):
        retried = client.post(f"/storefronts/exports/{export.pk}/retry/")
    again = client.post(f"/storefronts/exports/{export.pk}/retry/")
    html = client.get("/storefronts/").content.decode()

    assert "The shop refused the image: it is too large." in card and "Retry" in card
    assert "The shop refused the image: it is too large." in merchant_card and "Retry" not in merchant_card
    assert (retried.status_code, again.status_code) == (302, 302)
    export.refresh_from_db()
    assert export.status == ExportStatus.QUEUED
    assert "not failed: there is nothing to retry" in html


def test_another_workspaces_export_cannot_be_retried(manager, other_membership, linked):
    connection, asset, _ = linked
    export = Export.objects.create(workspace=connection.workspace, connection=connection, asset=asset, content_sha256=asset.sha256, status=ExportStatus.FAILED)
    stranger = MembershipFactory(workspace=WorkspaceFactory(name="Elsewhere"), role=Role.OWNER).user

    refused = _signed_in(stranger).post(f"/storefronts/exports/{export.pk}/retry/")

    assert refused.status_code == 404
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED


def test_publishing_an_image_not_approved_is_refused_in_words(manager, linked, assets):  # noqa: F811
    connection, _, _ = linked
    other = assets[1]
    ProductPhoto.objects.filter(pk=other.photo_id).update(product=linked[1].photo.product)
    client = _signed_in(manager)

    client.post(f"/storefronts/{connection.pk}/publish/", {"asset": other.pk})
    html = client.get("/storefronts/").content.decode()

    assert "Only approved images leave Vitrine" in html
    assert not Export.objects.exists()
