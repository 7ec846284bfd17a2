"""Products in real headless Chromium, against a live server and a real worker: the demo
merchant makes a product, moves freshly uploaded photos into it from the grid, and finds them
on the product's page."""
import io
import re

import pytest
from django.core.management import call_command

from catalog.models import Product, ProductPhoto
from catalog.services import DEMO_PASSWORD
from tests.images import product_on_white
from tests.studio.conftest import choose_photos, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]

NAMES = ("tote-front.png", "tote-back.png")


def test_merchant_creates_a_product_and_moves_two_photos_into_it(live_server, worker, page, tmp_path):
    call_command("seed_demo", stdout=io.StringIO())
    paths = []
    for seed, name in enumerate(NAMES):
        path = tmp_path / name
        path.write_bytes(product_on_white(size=(320, 240), seed=seed))
        paths.append(path)
    sign_in(page, live_server.url, "merchant@demo.vitrine", DEMO_PASSWORD)

    # A new product, made in the page.
    page.get_by_role("link", name="New product").click()
    page.get_by_label("Title").fill("Linen tote")
    page.get_by_label("SKU").fill("LT-1")
    page.get_by_role("button", name="Create product").click()
    page.wait_for_url(re.compile(r"/products/\d+/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Linen tote"
    tote = Product.objects.get(workspace__slug="demo", title="Linen tote")
    assert (tote.handle, tote.sku) == ("linen-tote", "LT-1")

    # Two photos uploaded on the Products page, attached to no product.
    page.get_by_role("link", name="Back to products").click()
    page.wait_for_url(f"{live_server.url}/products/")
    choose_photos(page, paths)
    for name in NAMES:
        page.locator("#uploads li", has_text=name).locator(".upload-state", has_text="Uploaded").wait_for()
        page.get_by_label(f"Select {name}").wait_for()

    # Ticked in the grid; the ticks outlive the grid's own refreshes (it polls while the worker runs).
    for name in NAMES:
        page.get_by_label(f"Select {name}").check()
    page.evaluate(
        """() => new Promise(resolve => {
            document.body.addEventListener("htmx:afterSwap", () => resolve(true), {once: true});
            htmx.trigger("#photo-grid", "refresh");
        })"""
    )
    assert [page.get_by_label(f"Select {name}").is_checked() for name in NAMES] == [True, True]

    page.get_by_label("Move selected photos to").select_option(label="Linen tote")
    page.get_by_role("button", name="Move", exact=True).click()
    page.get_by_role("status").filter(has_text="Moved 2 photos to Linen tote.").wait_for()
    assert sorted(ProductPhoto.objects.filter(product=tote).values_list("original_name", flat=True)) == sorted(NAMES)

    # The catalog counts them, and the product's page shows them.
    tile = page.locator(f".products a[data-product-id='{tote.pk}']")
    assert tile.inner_text().split("\n") == ["Linen tote", "LT-1 · 2 photos"]
    tile.click()
    page.wait_for_url(f"{live_server.url}/products/{tote.pk}/")
    names = page.locator("#photo-grid .tile .tile-name")
    names.nth(1).wait_for()
    assert sorted(names.all_inner_texts()) == sorted(NAMES)
