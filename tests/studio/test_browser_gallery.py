"""The gallery in real headless Chromium: the demo merchant selects two images, downloads
them as one ZIP, and the page is photographed for the docs (docs/screenshots/gallery.png).

The images are made for real by the bundled model; the test settings run tasks in this
process once each write commits (the live server's database is not wrapped in a test
transaction), so no worker process is needed."""
import csv
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from brand.models import ScenePreset
from catalog.models import Product, User, Workspace
from catalog.services import DEMO_PASSWORD
from studio import reviews
from studio.models import Asset
from studio.services import generation_job_create, photo_add
from tests.conftest import ROOT
from tests.images import product_on_white
from tests.studio.conftest import sign_in

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "docs" / "screenshots" / "gallery.png"


def _demo_images() -> list[Asset]:
    """Five real images of two demo products, one of them already in review."""
    call_command("seed_demo", stdout=io.StringIO())  # what `make run` does
    workspace = Workspace.objects.get(slug="demo")
    merchant = User.objects.get(email="merchant@demo.vitrine")
    ScenePreset.objects.filter(workspace=workspace).update(steps=4)
    jobs = []
    for seed, (title, variants) in enumerate((("Amber glass bottle", 3), ("Ceramic mug", 2))):
        product = Product.objects.get(workspace=workspace, title=title)
        upload = SimpleUploadedFile(f"{product.handle}.png", product_on_white(size=(320, 240), seed=seed))
        photo = photo_add(workspace=workspace, file=upload, uploaded_by=merchant, product=product).photo
        jobs.append(generation_job_create(photo=photo, user=merchant, variants=variants, seed=100 + seed, channels=["as-photo"]))
    for job in jobs:
        job.refresh_from_db()
        assert (job.status, job.error) == ("succeeded", "")
    images = list(Asset.objects.filter(job__in=jobs).order_by("-job_id", "variant"))
    assert len(images) == 5
    reviews.review_submit(asset=images[-1], actor=merchant)
    return images


def test_the_merchant_downloads_a_zip_of_two_selected_images(live_server, browser, tmp_path):
    images = _demo_images()
    chosen = images[:2]
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        sign_in(page, live_server.url, "merchant@demo.vitrine", DEMO_PASSWORD)
        page.get_by_role("link", name="Gallery").click()
        page.wait_for_url(f"{live_server.url}/gallery/")
        cards = page.locator(".asset-card")
        assert cards.count() == 5
        assert [int(cards.nth(i).get_attribute("data-asset-id")) for i in range(5)] == [a.pk for a in images]
        assert page.locator(".asset-card", has_text="In review").count() == 1

        page.get_by_label("Select all on this page").check()
        assert page.locator("#selected-count").inner_text() == "5 selected"
        page.get_by_label("Select all on this page").uncheck()
        assert page.locator("#selected-count").inner_text() == "None selected"
        for asset in chosen:
            page.get_by_label(f"Select image {asset.pk}", exact=True).check()
        assert page.locator("#selected-count").inner_text() == "2 selected"
        page.wait_for_function("Array.from(document.images).every(img => img.complete && img.naturalWidth > 0)")

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download ZIP of selected").click()
        download = download_info.value
        assert download.suggested_filename == "vitrine-demo-2-images.zip"
        target = tmp_path / download.suggested_filename
        download.save_as(target)

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # Each card opens the image's own page, whose lock badge is the lock gate's words.
        page.locator(f".asset-card[data-asset-id='{chosen[0].pk}'] .asset-card-title a").click()
        page.wait_for_url(f"{live_server.url}/assets/{chosen[0].pk}/")
        lock = next(g for g in chosen[0].gates if g["name"] == "lock")
        assert page.locator(".lock-badge").inner_text() == lock["reason"]
        assert page.locator(".asset-history tbody tr").count() == 3  # uploaded, cutout made, generated
    finally:
        context.close()

    archive = zipfile.ZipFile(target)
    names = archive.namelist()
    assert "manifest.csv" in names and "manifest.json" in names
    assert sorted(n for n in names if n.endswith(".png")) == sorted(
        f"{a.photo.product.handle}/as-photo-v{a.variant}-asset{a.pk}.png" for a in chosen
    )
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert sorted(int(r["asset_id"]) for r in rows) == sorted(a.pk for a in chosen)
    assert {r["product_title"] for r in rows} == {"Ceramic mug"}
