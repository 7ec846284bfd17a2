import json
import logging

import pytest

from catalog.models import Product, ProductPhoto
from fakeshop.testing import running_fake_shop
from storefront.models import ConnectionStatus, StorefrontConnection, StorefrontDeletion, StorefrontImage, WebhookDelivery
from storefront.services import connection_create, connection_disable, webhook_delivery_process
from storefront.signatures import webhook_hmac
from tests.factories import WorkspaceFactory
from tests.images import image_bytes

pytestmark = pytest.mark.django_db
SHOP = "my-shop.myshopify.com"
SECRET = "webhook-secret"
TOKEN = "shpat_never_shown_0123456789"


@pytest.fixture
def connection():
    return connection_create(workspace=WorkspaceFactory(), shop_domain=SHOP, access_token=TOKEN, webhook_secret=SECRET)


def send(client, topic, payload, *, webhook_id, secret=SECRET, shop=SHOP):
    body = json.dumps(payload).encode()
    return client.post(
        "/webhooks/storefront/",
        data=body,
        content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC=topic,
        HTTP_X_SHOPIFY_HMAC_SHA256=webhook_hmac(body, secret=secret),
        HTTP_X_SHOPIFY_SHOP_DOMAIN=shop,
        HTTP_X_SHOPIFY_WEBHOOK_ID=webhook_id,
    )


def product(title, updated_at, pid=101):
    return {"id": pid, "title": title, "handle": "blue-mug", "updated_at": updated_at, "variants": [{"id": 9, "title": "Default", "sku": "MUG-1", "position": 1, "image_id": None}]}


def test_a_signed_create_makes_the_product(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00-05:00"), webhook_id="w1")
    assert response.status_code == 200
    made = Product.objects.get(workspace=connection.workspace)
    assert (made.title, made.handle, made.sku, made.storefront_product_id) == ("Blue mug", "blue-mug", "MUG-1", "101")
    assert WebhookDelivery.objects.get().processed_at is not None


@pytest.mark.parametrize("secret,shop", [("wrong-secret", SHOP), (SECRET, "other-shop.myshopify.com")])
def test_bad_hmac_or_unknown_shop_is_401_and_changes_nothing(client, connection, secret, shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1", secret=secret, shop=shop)
    assert response.status_code == 401
    assert not Product.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_the_same_webhook_twice_is_processed_once(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1")
    Product.objects.update(title="Renamed in Vitrine")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1")
    assert (first.status_code, second.status_code) == (200, 200)
    assert callbacks == []
    assert WebhookDelivery.objects.count() == 1
    assert Product.objects.get().title == "Renamed in Vitrine"


def test_out_of_order_updates_leave_the_newer_state(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(client, "products/update", product("Newer title", "2026-01-02T10:00:00Z"), webhook_id="w2")
        send(client, "products/update", product("Older title", "2026-01-01T10:00:00Z"), webhook_id="w1")
    assert Product.objects.get().title == "Newer title"


def test_delete_removes_the_product(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1")
        send(client, "products/delete", {"id": 101}, webhook_id="w2")
    assert not Product.objects.exists()


def test_uninstall_disables_and_erases_credentials_and_the_token_never_shows(client, connection, django_capture_on_commit_callbacks, caplog):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, "app/uninstalled", {"id": 1, "domain": SHOP}, webhook_id="w9")
    row = StorefrontConnection.objects.get(pk=connection.pk)
    assert row.status == ConnectionStatus.DISABLED
    assert (row.access_token_encrypted, row.webhook_secret_encrypted) == ("", "")
    assert TOKEN not in response.content.decode()
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(getattr(record, "__dict__", {})) for record in caplog.records)


def test_the_webhook_door_needs_no_csrf_token(connection, django_capture_on_commit_callbacks):
    from django.test import Client

    with django_capture_on_commit_callbacks(execute=True):
        response = send(Client(enforce_csrf_checks=True), "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1")
    assert response.status_code == 200


def test_the_answer_comes_before_the_work(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1")
    assert response.status_code == 200
    assert len(queued) == 1  # the io task, sent once the delivery row is committed
    assert not Product.objects.exists()
    assert WebhookDelivery.objects.get().processed_at is None


def test_a_late_older_update_does_not_bring_a_deleted_product_back(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1")
        send(client, "products/delete", {"id": 101}, webhook_id="w3")
        send(client, "products/update", product("Blue mug v2", "2026-01-01T11:00:00Z"), webhook_id="w2")
    assert not Product.objects.exists()
    assert StorefrontDeletion.objects.filter(connection=connection, remote_id="101").exists()


def test_a_delete_that_overtakes_the_create_wins(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(client, "products/delete", {"id": 101}, webhook_id="w2")
        send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1")
    assert not Product.objects.exists()


def test_a_delivery_processed_after_the_uninstall_changes_nothing(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        send(client, "products/create", product("Blue mug", "2026-01-01T10:00:00Z"), webhook_id="w1")
    connection_disable(connection=connection, reason="uninstalled")
    webhook_delivery_process(delivery=WebhookDelivery.objects.get())
    assert not Product.objects.exists()
    assert "disconnected" in WebhookDelivery.objects.get().error


@pytest.fixture
def fake_shop_to_live_server(live_server, settings):
    settings.VITRINE_STOREFRONT_IMAGE_HOSTS = ["127.0.0.1"]
    settings.VITRINE_STOREFRONT_FETCH_HTTPS_ONLY = False
    settings.VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK = True
    with running_fake_shop(seed=5, webhook_url=f"{live_server.url}/webhooks/storefront/") as shop:
        yield shop


@pytest.mark.django_db(transaction=True)
def test_the_fake_shops_signed_webhooks_out_of_order_and_repeated_leave_the_newer_state(fake_shop_to_live_server):
    shop = fake_shop_to_live_server
    (pid,) = shop.create_products(1)
    shop.add_image(pid, data=image_bytes("PNG", size=(64, 48)), filename="front.png", alt="front", width=64, height=48)
    connection = connection_create(
        workspace=WorkspaceFactory(), shop_domain=shop.shop, access_token=shop.token, api_base_url=shop.admin_url, webhook_secret=shop.client_secret
    )
    created = shop.send_webhook("products/create", product_id=pid, times=2)  # a repeated delivery
    assert [r["status"] for r in created] == [200, 200]
    assert WebhookDelivery.objects.filter(connection=connection).count() == 1
    results = shop.send_out_of_order(pid)
    assert [r["status"] for r in results] == [200, 200]
    made = Product.objects.get(workspace=connection.workspace)
    assert made.title == "Demo product 1 (newer)"
    assert WebhookDelivery.objects.filter(connection=connection, processed_at__isnull=False).count() == 3
    photo = ProductPhoto.objects.get(workspace=connection.workspace)  # the product's image, imported once
    assert photo.product == made
    assert StorefrontImage.objects.get(connection=connection).photo == photo
