"""Import and incremental sync against the fake storefront (a real HTTP server on 127.0.0.1)."""
import logging
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Product, ProductPhoto
from fakeshop.testing import running_fake_shop
from storefront import services as storefront_services
from storefront import sync
from storefront.models import RunStatus, StorefrontImage, StorefrontProduct, SyncRun
from storefront.selectors import sync_latest
from storefront.services import connection_create, connection_disable, storefront_product_remove
from tests.factories import MembershipFactory, WorkspaceFactory
from tests.images import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fetch_from_the_fake(settings):
    settings.VITRINE_STOREFRONT_IMAGE_HOSTS = ["127.0.0.1"]
    settings.VITRINE_STOREFRONT_FETCH_HTTPS_ONLY = False
    settings.VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK = True
    settings.VITRINE_STOREFRONT_SYNC_PAGE_SIZE = 20
    return settings


@pytest.fixture
def shop():
    with running_fake_shop(seed=3) as shop:
        yield shop


@pytest.fixture
def connection(shop):
    return connection_create(workspace=WorkspaceFactory(), shop_domain=shop.shop, access_token=shop.token, api_base_url=shop.admin_url)


def add_png(shop, pid, *, seed=0, filename="front.png", **kwargs):
    data = image_bytes("PNG", size=(64, 48), seed=seed)
    return shop.add_image(pid, data=data, filename=filename, alt="front", width=64, height=48, **kwargs)


def run_sync(connection, capture, *, full=True) -> SyncRun:
    with capture(execute=True):
        run = sync.sync_request(connection=connection, full=full)
    run.refresh_from_db()
    return run


def test_importing_1000_products_over_pages_never_exceeds_the_call_limit(shop, connection, django_capture_on_commit_callbacks):
    # A small bucket (10 calls, draining 2/s) so that 51 calls must be paced: with the
    # client's pacing switched off this same import overflows it (the fake counts over_limit).
    shop.configure(bucket_size=10)
    pids = shop.create_products(1000)
    for n, pid in enumerate(pids[:3]):
        add_png(shop, pid, seed=n)
    run = run_sync(connection, django_capture_on_commit_callbacks)
    counters = shop.state()["counters"]
    assert (run.status, run.error) == (RunStatus.SUCCEEDED, "")
    assert run.done == run.total == 1000
    assert counters["over_limit"] == 0
    assert counters["rest_requests"] == 1 + 50  # the count, then 50 pages of 20
    assert Product.objects.filter(workspace=connection.workspace).count() == 1000
    assert StorefrontProduct.objects.filter(connection=connection).count() == 1000
    assert run.photos_added == 3
    assert sorted(ProductPhoto.objects.filter(workspace=connection.workspace).values_list("product__storefront_product_id", flat=True)) == sorted(str(p) for p in pids[:3])
    connection.refresh_from_db()
    assert connection.last_sync_at == run.finished_at
    assert run.cursor == ""


def test_products_keep_title_handle_sku_and_variants(shop, connection, django_capture_on_commit_callbacks):
    (pid,) = shop.create_products(1)
    run_sync(connection, django_capture_on_commit_callbacks)
    link = StorefrontProduct.objects.select_related("product").get(connection=connection)
    assert (link.product.title, link.product.handle, link.product.sku) == ("Demo product 1", "demo-product-1", "FAKE-0001-S")
    assert [v["sku"] for v in link.variants] == ["FAKE-0001-S", "FAKE-0001-M"]
    assert link.remote_id == str(pid)


def test_an_image_is_imported_once_and_not_fetched_again(shop, connection, django_capture_on_commit_callbacks, monkeypatch):
    pids = shop.create_products(2)
    image = add_png(shop, pids[0], variant_ids=[shop.products[pids[0]]["variants"][0]["id"]])
    first = run_sync(connection, django_capture_on_commit_callbacks)
    fetched = []
    real_fetch = storefront_services.image_fetch
    monkeypatch.setattr(storefront_services, "image_fetch", lambda url: fetched.append(url) or real_fetch(url))
    second = run_sync(connection, django_capture_on_commit_callbacks)
    assert (first.photos_added, second.photos_added) == (1, 0)
    assert fetched == []
    mapping = StorefrontImage.objects.get(connection=connection)
    assert (mapping.remote_id, mapping.remote_product_id, mapping.error) == (str(image["id"]), str(pids[0]), "")
    photo = ProductPhoto.objects.get(workspace=connection.workspace)
    assert mapping.photo == photo
    assert photo.product.storefront_product_id == str(pids[0])
    assert photo.original_name == "front.png"


def test_images_go_through_the_upload_rules(shop, connection, django_capture_on_commit_callbacks):
    """A GIF is an image the shop takes and Vitrine's upload rules do not: it is refused with
    the rule's words, recorded, and not fetched on the next sync."""
    import io

    from PIL import Image

    (pid,) = shop.create_products(1)
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (10, 200, 10)).save(buffer, format="GIF")
    shop.add_image(pid, data=buffer.getvalue(), filename="anim.gif", alt="", width=40, height=40)
    run = run_sync(connection, django_capture_on_commit_callbacks)
    assert (run.status, run.photos_added) == (RunStatus.SUCCEEDED, 0)
    assert not ProductPhoto.objects.exists()
    mapping = StorefrontImage.objects.get(connection=connection)
    assert mapping.photo is None
    assert "JPEG" in mapping.error


def test_an_image_off_the_allowlist_is_refused_and_the_import_goes_on(shop, connection, settings, django_capture_on_commit_callbacks):
    settings.VITRINE_STOREFRONT_IMAGE_HOSTS = ["cdn.shopify.com"]
    (pid,) = shop.create_products(1)
    add_png(shop, pid)
    run = run_sync(connection, django_capture_on_commit_callbacks)
    assert (run.status, run.done, run.photos_added) == (RunStatus.SUCCEEDED, 1, 0)
    assert "127.0.0.1 is not one of them" in StorefrontImage.objects.get().error
    assert not ProductPhoto.objects.exists()


def test_an_image_vitrine_published_is_not_imported_back(shop, connection, django_capture_on_commit_callbacks):
    (pid,) = shop.create_products(1)
    add_png(shop, pid, filename=f"blue-mug-vitrine-{'ab12' * 6}.png")
    run = run_sync(connection, django_capture_on_commit_callbacks)
    assert (run.status, run.photos_added) == (RunStatus.SUCCEEDED, 0)
    assert not ProductPhoto.objects.exists()
    assert not StorefrontImage.objects.exists()


def _spread_times(shop, pids):
    """Give the fake's products distinct, older updated_at values (it stamps a batch alike)."""
    base = timezone.now() - timedelta(days=2)
    for n, pid in enumerate(pids):
        shop.products[pid]["updated_at"] = (base + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_incremental_sync_reads_only_what_changed_since_the_high_water_mark(shop, connection, django_capture_on_commit_callbacks):
    pids = shop.create_products(30)
    _spread_times(shop, pids)
    full = run_sync(connection, django_capture_on_commit_callbacks)
    assert full.updated_since.strftime("%Y-%m-%dT%H:%M:%SZ") == shop.products[pids[-1]]["updated_at"]
    shop.update_product(pids[3], title="Renamed in the shop")
    shop.update_product(pids[7], title="Also renamed")
    before = shop.state()["counters"]["rest_requests"]
    incremental = run_sync(connection, django_capture_on_commit_callbacks, full=False)
    assert (incremental.status, incremental.full) == (RunStatus.SUCCEEDED, False)
    # updated_at_min is inclusive: the product at the mark itself is read again (unchanged).
    assert incremental.done == incremental.total == 3
    assert shop.state()["counters"]["rest_requests"] - before == 2
    titles = dict(StorefrontProduct.objects.filter(connection=connection).values_list("remote_id", "product__title"))
    assert (titles[str(pids[3])], titles[str(pids[7])], titles[str(pids[0])]) == ("Renamed in the shop", "Also renamed", "Demo product 1")
    assert incremental.updated_since > full.updated_since


def test_a_run_goes_on_from_its_cursor(shop, connection, settings, django_capture_on_commit_callbacks):
    settings.VITRINE_STOREFRONT_SYNC_SLICE_SECONDS = 0  # one page per task
    shop.create_products(50)
    with django_capture_on_commit_callbacks(execute=False):
        run = sync.sync_request(connection=connection, full=True)
    with django_capture_on_commit_callbacks(execute=False) as continued:
        sync.sync_run(run=run)
    run.refresh_from_db()
    assert (run.status, run.done, run.total) == (RunStatus.RUNNING, 20, 50)
    assert run.cursor != ""
    assert len(continued) == 1  # the rest is queued
    requests_before = shop.state()["counters"]["rest_requests"]
    with django_capture_on_commit_callbacks(execute=True):
        sync.sync_run(run=run)  # e.g. the worker loop re-sent it
    run.refresh_from_db()
    assert (run.status, run.done, run.total) == (RunStatus.SUCCEEDED, 50, 50)
    assert shop.state()["counters"]["rest_requests"] - requests_before == 2  # pages 2 and 3 only, no count again
    assert StorefrontProduct.objects.filter(connection=connection).count() == 50


def test_a_refusal_fails_the_run_in_words_and_the_token_never_shows(shop, connection, django_capture_on_commit_callbacks, caplog):
    caplog.set_level(logging.DEBUG)
    shop.create_products(2)
    shop.token = "shpat_rotated_in_the_shop"
    run = run_sync(connection, django_capture_on_commit_callbacks)
    assert run.status == RunStatus.FAILED
    assert "refused Vitrine's access token" in run.error
    connection.refresh_from_db()
    assert connection.last_sync_error == run.error
    assert connection.last_sync_at is None
    assert not Product.objects.exists()
    assert connection.access_token() not in caplog.text


def test_a_second_request_joins_the_live_run(connection):
    first = sync.sync_request(connection=connection, full=True)
    second = sync.sync_request(connection=connection, full=False)
    assert second.pk == first.pk
    assert SyncRun.objects.count() == 1


def test_a_disconnected_storefront_cannot_sync(connection):
    connection_disable(connection=connection, reason="test")
    connection.refresh_from_db()
    with pytest.raises(ValidationError, match="disconnected"):
        sync.sync_request(connection=connection, full=True)
    assert not SyncRun.objects.exists()


def test_a_deleted_product_is_not_brought_back_by_a_sync(shop, connection, django_capture_on_commit_callbacks):
    pids = shop.create_products(2)
    storefront_product_remove(connection=connection, remote_id=str(pids[0]))  # its delete webhook came first
    run = run_sync(connection, django_capture_on_commit_callbacks)
    assert run.done == 2
    assert list(StorefrontProduct.objects.values_list("remote_id", flat=True)) == [str(pids[1])]


def test_the_schedule_queues_due_connections_and_resends_stalled_runs(shop, connection, settings, django_capture_on_commit_callbacks):
    settings.VITRINE_STOREFRONT_SYNC_SECONDS = 900
    shop.create_products(3)
    other = connection_create(workspace=WorkspaceFactory(), shop_domain="gone-shop.myshopify.com", access_token="x", api_base_url=shop.admin_url)
    connection_disable(connection=other, reason="test")
    with django_capture_on_commit_callbacks(execute=True):
        assert sync.sync_due() == 1  # the active connection, never synced: an import
    run = SyncRun.objects.get()
    assert (run.connection_id, run.status, run.full, run.done) == (connection.pk, RunStatus.SUCCEEDED, True, 3)
    with django_capture_on_commit_callbacks(execute=True):
        assert sync.sync_due() == 0  # synced within the interval
    SyncRun.objects.update(created_at=timezone.now() - timedelta(seconds=901))
    with django_capture_on_commit_callbacks(execute=True):
        assert sync.sync_due() == 1
    assert SyncRun.objects.order_by("-pk").first().full is False

    stalled = SyncRun.objects.order_by("-pk").first()
    SyncRun.objects.filter(pk=stalled.pk).update(status=RunStatus.RUNNING, finished_at=None)
    SyncRun.objects.filter(pk=stalled.pk).update(updated_at=timezone.now() - timedelta(seconds=settings.VITRINE_STOREFRONT_SYNC_STALE_SECONDS + 1))
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert sync.sync_due() == 1
    assert len(sent) == 1
    assert SyncRun.objects.get(pk=stalled.pk).status == RunStatus.QUEUED


def test_the_schedule_can_be_turned_off(connection, settings):
    settings.VITRINE_STOREFRONT_SYNC_SECONDS = 0
    assert sync.sync_due() == 0
    assert not SyncRun.objects.exists()


# API -----------------------------------------------------------------------------------------


@pytest.fixture
def api_member(connection):
    member = MembershipFactory(workspace=connection.workspace)
    client = APIClient()
    client.force_authenticate(member.user)
    return client


def test_post_sync_answers_202_with_the_run_and_the_connection_shows_its_progress(shop, connection, api_member, django_capture_on_commit_callbacks):
    shop.create_products(25)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_member.post(f"/api/v1/storefronts/{connection.pk}/sync/", {"full": True}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["full"]) == ("queued", True)
    shown = api_member.get(f"/api/v1/storefronts/{connection.pk}/")
    latest = shown.json()["latest_sync"]
    assert (latest["id"], latest["status"], latest["done"], latest["total"]) == (body["id"], "succeeded", 25, 25)
    assert shown.json()["last_sync_at"] is not None
    for answer in (response, shown, api_member.get("/api/v1/storefronts/")):
        assert shop.token not in answer.content.decode()
    assert sync_latest(connection=connection).pk == body["id"]


def test_sync_of_another_workspaces_storefront_is_404_and_queues_nothing(connection):
    stranger = APIClient()
    stranger.force_authenticate(MembershipFactory().user)
    assert stranger.post(f"/api/v1/storefronts/{connection.pk}/sync/", {}, format="json").status_code == 404
    assert not SyncRun.objects.exists()


def test_sync_of_a_disconnected_storefront_is_400_in_words(connection, api_member):
    connection_disable(connection=connection, reason="test")
    response = api_member.post(f"/api/v1/storefronts/{connection.pk}/sync/", {"full": False}, format="json")
    assert response.status_code == 400
    assert "disconnected" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_the_list_reads_latest_runs_in_a_fixed_number_of_queries(connection, api_member, django_assert_max_num_queries):
    for _ in range(3):
        run = sync.sync_request(connection=connection, full=True)
        SyncRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    for n in range(4):
        more = connection_create(workspace=connection.workspace, shop_domain=f"shop-{n}.myshopify.com", access_token="t", api_base_url=connection.api_base_url)
        sync.sync_request(connection=more, full=True)
    with django_assert_max_num_queries(8):
        listed = api_member.get("/api/v1/storefronts/")
    results = listed.json()["results"]
    assert len(results) == 5
    newest = SyncRun.objects.filter(connection=connection).order_by("-created_at", "-pk").first()
    assert next(r for r in results if r["id"] == connection.pk)["latest_sync"]["id"] == newest.pk


def test_a_product_that_cannot_be_stored_is_skipped_in_words_and_the_rest_imported(shop, connection, django_capture_on_commit_callbacks):
    pids = shop.create_products(3)
    Product.objects.create(workspace=connection.workspace, title="Taken", handle="demo-product-2", storefront_product_id="elsewhere-1")
    run = run_sync(connection, django_capture_on_commit_callbacks)
    assert (run.status, run.done, run.total) == (RunStatus.SUCCEEDED, 3, 3)
    assert f"Product {pids[1]} was not imported" in run.error
    assert "demo-product-2" in run.error
    assert sorted(StorefrontProduct.objects.values_list("remote_id", flat=True)) == sorted([str(pids[0]), str(pids[2])])
    connection.refresh_from_db()
    assert connection.last_sync_error == run.error
