"""Real Chromium against the live server and the fake shop on loopback: a brand manager
connects the fake shop through the Storefronts form, imports its products, approves an image
from the review queue, publishes it, and sees it on the fake shop's own page.

The image is made cheaply (tests.studio.test_reviews' `assets`: generated once for real with
the bundled model, then copied); tasks run in-process (CELERY_TASK_ALWAYS_EAGER), so the import
and the export run when their requests commit."""
import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.models import Membership, ProductPhoto
from catalog.services import DEMO_PASSWORD
from storefront.models import Export, ExportStatus, StorefrontConnection, StorefrontProduct
from studio import reviews
from studio.models import ReviewState
from tests.studio.conftest import sign_in
from tests.studio.test_reviews import assets  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def membership(transactional_db):
    """The demo merchant (what `make run` seeds): `assets` makes its images in the demo workspace."""
    call_command("seed_demo", stdout=io.StringIO())
    return Membership.objects.get(user__email="merchant@demo.vitrine")


@pytest.fixture
def shop(demo_shop):
    return demo_shop


def test_connect_import_approve_publish_and_see_it_in_the_shop(live_server, page, shop, assets, user):  # noqa: F811 - assets
    # Connect through the form.
    sign_in(page, live_server.url, "brand@demo.vitrine", DEMO_PASSWORD)
    page.get_by_role("link", name="Storefronts").click()
    page.get_by_text("No storefront is connected yet").wait_for()
    page.get_by_label("Shop domain").first.fill(shop.shop)
    page.get_by_label("Admin API access token").fill(shop.token)
    page.get_by_role("button", name="Connect", exact=True).click()
    page.get_by_text(f"{shop.shop} is connected").wait_for()
    assert shop.token not in page.content()
    connection = StorefrontConnection.objects.get()

    # Import every product.
    card = page.locator(f"#storefront-{connection.pk}")
    card.get_by_role("button", name="Import everything").click()
    card = page.locator(f"#storefront-{connection.pk}")
    card.get_by_text("2 of 2 products").wait_for()
    assert card.locator("progress").get_attribute("value") == "2"
    imported = StorefrontProduct.objects.select_related("product").get(connection=connection, remote_id=str(next(iter(shop.products))))

    # An image of the imported product awaits review (made cheaply, submitted by the merchant).
    asset = assets[0]
    ProductPhoto.objects.filter(pk=asset.photo_id).update(product=imported.product)
    reviews.review_submit(asset=asset, actor=user)

    # The brand manager approves it from the queue, with the keyboard.
    page.get_by_role("link", name="Review").click()
    page.locator(f".review-panel[data-asset-id='{asset.pk}']").wait_for()
    page.keyboard.press("a")
    page.locator("#queue .queue-item").first.wait_for(state="detached")
    asset.refresh_from_db()
    assert asset.review_state == ReviewState.APPROVED

    # Publish it from the Storefronts page.
    page.get_by_role("link", name="Storefronts").click()
    row = page.locator(f"#storefront-{connection.pk} tr[data-asset-id='{asset.pk}']")
    row.get_by_role("button", name=re.compile("^Publish")).click()
    page.locator(f"#storefront-{connection.pk} tr[data-status='published']").wait_for()
    export = Export.objects.get()
    assert (export.asset_id, export.status) == (asset.pk, ExportStatus.PUBLISHED)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1440, "height": 900})  # as docs/ui.md's other pictures
    page.screenshot(path=str(SCREENSHOTS / "storefronts.png"), full_page=True)

    # The fake shop's own page shows the image on the product, once.
    page.goto(f"{shop.url}/")
    product = page.locator(f"section.product[data-product-id='{imported.remote_id}']")
    figures = product.locator("figure.media")
    assert figures.count() == 1
    assert figures.first.get_attribute("data-status") == "READY"
    image = figures.first.locator("img")
    assert image.evaluate("img => img.complete && img.naturalWidth") == asset.width
    assert export.remote_media_id.endswith(figures.first.get_attribute("data-image-id"))
