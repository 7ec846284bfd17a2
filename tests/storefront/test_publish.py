"""Publishing approved images to the fake storefront over loopback: exactly once under
injected failures, the REST fallback, variants, replacing earlier Vitrine images (never the
merchant's), media that fail in the shop, refusals in words, and the asset's audit trail."""
import logging

import pytest
from django.core.exceptions import PermissionDenied

from fakeshop import graphql_api
from fakeshop.testing import running_fake_shop
from storefront import publish
from storefront.models import Export, ExportStatus, StorefrontImage
from studio.models import Asset, AuditEvent, AuditVerb, ReviewState
from tests.images import image_bytes
from tests.storefront.publishing import PRESET_NAME, approve, connect, decider, link_products, make_assets, shop_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def waits(monkeypatch):
    """The publisher's waits (backoff, Retry-After, pacing, media polls), recorded and kept short."""
    import time

    asked = []

    def quick(seconds):
        asked.append(seconds)
        time.sleep(min(seconds, 0.01))

    monkeypatch.setattr(publish, "sleep", quick)
    return asked


@pytest.fixture
def quick_shop_settings(settings):
    # The fake's injected timeouts sleep 1.2 s; a loaded test machine still answers in 0.6 s
    # (and a slow answer is only one more ambiguous write or retried read).
    settings.VITRINE_STOREFRONT_TIMEOUT_SECONDS = 0.6
    settings.VITRINE_STOREFRONT_MEDIA_POLL_SECONDS = 0.01


@pytest.fixture
def worker_retries():
    """Eager tasks retry as a worker would (at once, here) instead of raising `Retry` into
    the test, so an export left pending by the shop runs again."""
    from storefront.tasks import storefront_export_task

    conf = storefront_export_task.app.conf
    before = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = before


@pytest.fixture
def setup(workspace, user, upload_product_photo, quick_shop_settings, waits, worker_retries):
    """A connected fake shop with 5 products, each linked to a catalog product with one real
    photo; `assets(n, product=0)` makes n approved images of that product's photo."""

    def build(shop, products=5):
        connection = connect(shop, workspace)
        links = link_products(shop, connection)
        photos = []
        for n, link in enumerate(links[:products]):
            photo = upload_product_photo((96, 72), seed=n)
            photo.product = link.product
            photo.save(update_fields=["product"])
            photos.append(photo)
        manager = decider(workspace)

        def assets(count, product=0, seed=None, fmt="PNG"):
            made = make_assets(photo=photos[product], submitter=user, count=count, seed=product + 1 if seed is None else seed, fmt=fmt)
            return approve(made, submitter=user, approver=manager)

        return connection, links, photos, manager, assets

    return build


def _publish_all(assets, connection, manager, capture, **kwargs):
    with capture(execute=True):
        return [publish.publish_request(asset=a, connection=connection, user=manager, **kwargs) for a in assets]


def test_fifty_images_under_thirty_percent_failures_land_exactly_once(setup, waits, django_capture_on_commit_callbacks, caplog):
    failures = dict(rate_429=0.08, rate_5xx=0.08, rate_timeout_before=0.07, rate_timeout_after=0.07, timeout_sleep=1.2, media_polls_to_ready=1)
    with running_fake_shop(demo_products=5, seed=11) as shop:
        connection, links, photos, manager, make = setup(shop)
        assets = [a for product in range(5) for a in make(10, product=product)]
        assert len({a.sha256 for a in assets}) == 50
        shop.configure(**failures, seed=11)
        caplog.set_level(logging.INFO, logger="storefront.publish")

        _publish_all(assets, connection, manager, django_capture_on_commit_callbacks)

        images = shop_images(shop)
        counters = shop.state()["counters"]
        # Every kind of failure was met, writes that timed out after being applied among them...
        assert all(counters[f"injected_{kind}"] > 0 for kind in ("429", "5xx", "timeout_before", "timeout_after")), counters
        # ...and the exporter found its own image after an ambiguous write instead of sending it again.
        assert any(r.getMessage() == "storefront.export.found_own_image" for r in caplog.records)
        assert len(images) == 50
        assert sorted(i["sha256"] for i in images) == sorted(a.sha256 for a in assets)
        assert {i["status"] for i in images} == {"READY"}
        by_sha = {i["sha256"]: i for i in images}
        exports = list(Export.objects.filter(connection=connection))
        assert len(exports) == 50
        for export in exports:
            assert export.status == ExportStatus.PUBLISHED, export.error
            assert export.remote_media_id == by_sha[export.content_sha256]["media_id"]
            assert export.remote_url == by_sha[export.content_sha256]["src"]
            assert export.adapter == "graphql"
            assert export.remote_product_id == str(by_sha[export.content_sha256]["product_id"])
        assert set(Asset.objects.filter(pk__in=[a.pk for a in assets]).values_list("review_state", flat=True)) == {ReviewState.PUBLISHED}
        assert AuditEvent.objects.filter(verb=AuditVerb.ASSET_EXPORTED, asset__in=assets).count() == 50

        # The same images published again add nothing, and do not even call the shop.
        requests_before = shop.state()["counters"]["requests"]
        again = _publish_all(assets, connection, manager, django_capture_on_commit_callbacks)
        assert {e.pk for e in again} == {e.pk for e in exports}
        assert shop.state()["counters"]["requests"] == requests_before
        assert sorted(i["id"] for i in shop_images(shop)) == sorted(i["id"] for i in images)
        assert Export.objects.filter(connection=connection).count() == 50


def test_alt_text_filename_marker_and_audit_trail(setup, django_capture_on_commit_callbacks):
    with running_fake_shop(demo_products=1, seed=1) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        (asset,) = make(1)
        (export,) = _publish_all([asset], connection, manager, django_capture_on_commit_callbacks)
        export.refresh_from_db()
        (image,) = shop_images(shop)
        assert image["alt"] == f"{links[0].product.title} — {PRESET_NAME}"
        assert image["filename"] == f"{links[0].product.handle}-vitrine-{asset.sha256[:24]}.png"
        assert publish.marker_in(image["src"]) == asset.sha256[:24]
        event = AuditEvent.objects.get(verb=AuditVerb.ASSET_EXPORTED, asset=asset)
        assert event.actor == manager
        assert event.detail["where"] == shop.shop
        assert event.detail["remote_id"] == export.remote_media_id == image["media_id"]
        assert event.detail["export_id"] == export.pk and event.created_at is not None and event.detail["review_state"] == "published"


def test_the_image_goes_on_the_variants_its_photo_belongs_to(setup, django_capture_on_commit_callbacks):
    with running_fake_shop(demo_products=1, seed=1) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        pid = int(links[0].remote_id)
        small, medium = shop.products[pid]["variants"]
        # The photo was imported from the shop image that variant M shows.
        original = shop.add_image(pid, data=image_bytes("PNG"), filename="merchant.png", alt="M", variant_ids=[medium["id"]])
        link = link_products(shop, connection)[0]
        StorefrontImage.objects.create(connection=connection, remote_id=str(original["id"]), remote_product_id=str(pid), photo=photos[0], src=shop.image_src(original))
        (asset,) = make(1)
        (export,) = _publish_all([asset], connection, manager, django_capture_on_commit_callbacks)
        export.refresh_from_db()
        assert export.status == ExportStatus.PUBLISHED, export.error
        variants = {v["id"]: v["image_id"] for v in shop.state()["products"][0]["variants"]}
        assert variants[medium["id"]] == int(export.remote_media_id.rsplit("/", 1)[-1])
        assert variants[small["id"]] is None
        assert link.variants  # the link knew both variants


def test_rest_is_the_fallback_when_graphql_cannot_upload(setup, waits, django_capture_on_commit_callbacks, monkeypatch):
    # This shop's GraphQL has no staged uploads: the fake answers "Field ... doesn't exist".
    monkeypatch.delitem(graphql_api.RESOLVERS, ("mutation", "stagedUploadsCreate"))
    with running_fake_shop(demo_products=1, seed=3) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        assets = make(6)
        shop.configure(rate_429=0.25, rate_5xx=0.1, rate_timeout_after=0.1, timeout_sleep=1.2, seed=3)
        exports = _publish_all(assets, connection, manager, django_capture_on_commit_callbacks)
        images = shop_images(shop)
        assert sorted(i["sha256"] for i in images) == sorted(a.sha256 for a in assets)
        for export in exports:
            export.refresh_from_db()
            assert (export.status, export.adapter) == (ExportStatus.PUBLISHED, "rest"), export.error
        assert {str(i["id"]) for i in images} == {e.remote_media_id for e in exports}
        assert shop.state()["counters"]["injected_429"] > 0
        assert 2.0 in waits  # the REST 429's Retry-After was honoured


def test_replace_earlier_removes_only_vitrine_images(setup, django_capture_on_commit_callbacks):
    with running_fake_shop(demo_products=1, seed=1) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        pid = int(links[0].remote_id)
        merchant = shop.add_image(pid, data=image_bytes("PNG", seed=99), filename="merchant-own.png", alt="The merchant's own photo")
        first, second = make(2)
        (old,) = _publish_all([first], connection, manager, django_capture_on_commit_callbacks)
        (new,) = _publish_all([second], connection, manager, django_capture_on_commit_callbacks, replace_earlier=True)
        old.refresh_from_db()
        new.refresh_from_db()
        assert new.status == ExportStatus.PUBLISHED and new.error == ""
        assert sorted(i["sha256"] for i in shop_images(shop)) == sorted([merchant["sha256"], second.sha256])
        assert old.removed_at is not None and new.removed_at is None


def test_a_photo_the_shop_cannot_process_fails_with_its_words_and_leaves_nothing(setup, django_capture_on_commit_callbacks):
    with running_fake_shop(demo_products=1, seed=1) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        (asset,) = make(1, fmt="WEBP")  # the shop takes PNG, JPEG and GIF only
        (export,) = _publish_all([asset], connection, manager, django_capture_on_commit_callbacks)
        export.refresh_from_db()
        assert export.status == ExportStatus.FAILED
        assert export.error.startswith("The shop could not process the image: Image format WEBP is not supported")
        assert export.remote_media_id == ""
        assert shop_images(shop) == []
        asset.refresh_from_db()
        assert asset.review_state == ReviewState.APPROVED


def test_a_refusal_fails_the_export_and_a_retry_publishes_it(setup, django_capture_on_commit_callbacks):
    with running_fake_shop(demo_products=1, seed=1) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        (asset,) = make(1)
        real_token = shop.token
        shop.token = "shpat_revoked"
        (export,) = _publish_all([asset], connection, manager, django_capture_on_commit_callbacks)
        export.refresh_from_db()
        assert export.status == ExportStatus.FAILED
        assert export.error == "The shop refused Vitrine's access token. Reconnect the storefront on the Storefronts page."
        shop.token = real_token
        with django_capture_on_commit_callbacks(execute=True):
            publish.export_retry(export=export)
        export.refresh_from_db()
        assert export.status == ExportStatus.PUBLISHED and export.error == ""
        assert [i["sha256"] for i in shop_images(shop)] == [asset.sha256]
        with pytest.raises(publish.PublishConflict) as refused:  # only a failed export is retried
            publish.export_retry(export=export)
        assert refused.value.code == "export_not_failed"


@pytest.mark.parametrize("case", ["not_approved", "product_not_linked", "no_product"])
def test_an_image_that_may_not_leave_is_refused_in_words_and_nothing_is_queued(case, setup, user, django_capture_on_commit_callbacks):
    with running_fake_shop(demo_products=2, seed=1) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        (asset,) = make(1)
        if case == "not_approved":
            Asset.objects.filter(pk=asset.pk).update(review_state=ReviewState.IN_REVIEW)
        elif case == "product_not_linked":
            links[0].delete()
        else:
            photos[0].product = None
            photos[0].save(update_fields=["product"])
        asset = Asset.objects.select_related("photo__product", "job").get(pk=asset.pk)
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(publish.PublishConflict) as refused:
            publish.publish_request(asset=asset, connection=connection, user=manager)
        assert refused.value.code == case
        assert Export.objects.count() == 0
        assert shop.state()["counters"]["requests"] == 0


def test_only_brand_managers_and_owners_publish(setup, user, django_capture_on_commit_callbacks):
    with running_fake_shop(demo_products=1, seed=1) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        (asset,) = make(1)
        with pytest.raises(PermissionDenied):
            publish.publish_request(asset=asset, connection=connection, user=user)  # a merchant
        assert Export.objects.count() == 0


def test_a_run_after_a_lost_one_finds_the_image_the_shop_already_holds(setup, django_capture_on_commit_callbacks):
    with running_fake_shop(demo_products=1, seed=1) as shop:
        connection, links, photos, manager, make = setup(shop, products=1)
        (asset,) = make(1)
        (export,) = _publish_all([asset], connection, manager, django_capture_on_commit_callbacks)
        export.refresh_from_db()
        media_id = export.remote_media_id
        # As if the worker died after the shop applied the write and before the row heard of it.
        Export.objects.filter(pk=export.pk).update(status=ExportStatus.QUEUED, remote_media_id="", remote_url="", published_at=None)
        publish.export_run(export=Export.objects.get(pk=export.pk))
        export.refresh_from_db()
        assert (export.status, export.remote_media_id, export.attempts) == (ExportStatus.PUBLISHED, media_id, 2)
        assert [i["media_id"] for i in shop_images(shop)] == [media_id]
