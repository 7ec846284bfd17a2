"""In real headless Chromium against a live server: the demo brand manager opens the house
brand kit, changes a palette colour with its colour picker, saves, and sees the new version
in the kit's history. The full page is kept as docs/screenshots/brand-kit.png."""
import io

import pytest
from django.core.management import call_command

from brand.models import BrandKit
from catalog.services import DEMO_PASSWORD
from tests.conftest import ROOT
from tests.studio.conftest import sign_in

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "docs" / "screenshots" / "brand-kit.png"


def test_brand_manager_changes_a_palette_colour_and_saves(live_server, transactional_db, browser):
    call_command("seed_demo", stdout=io.StringIO())  # what `make run` does
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        sign_in(page, live_server.url, "brand@demo.vitrine", DEMO_PASSWORD)
        page.get_by_role("link", name="Brand kits", exact=True).click()
        page.get_by_role("link", name="House style", exact=True).click()
        page.get_by_role("heading", name="House style").wait_for()

        backdrop = page.get_by_label("Backdrop", exact=True)
        assert backdrop.input_value() == "#efe9e1"
        backdrop.fill("#1f6f8b")
        # The hex beside the picker follows it as it moves.
        assert page.locator("output[data-hex-of='id_palette_0']").inner_text() == "#1f6f8b"
        page.get_by_label("Banned terms", exact=True).fill("cheap\nknife")
        page.get_by_role("button", name="Save brand kit").click()

        page.get_by_text("Saved as version 2.").wait_for()
        assert page.get_by_label("Backdrop", exact=True).input_value() == "#1f6f8b"
        assert page.locator("output[data-hex-of='id_palette_0']").inner_text() == "#1f6f8b"
        history = page.locator("tr[data-version='2']")
        assert "#efe9e1, #d9cbb8, #8a6f52 → #1f6f8b, #d9cbb8, #8a6f52" in " ".join(history.inner_text().split())
        assert "added cheap, knife" in history.inner_text()

        kit = BrandKit.objects.get(name="House style")  # the demo workspace is the only one
        assert (kit.palette, kit.banned_terms, kit.version) == (["#1f6f8b", "#d9cbb8", "#8a6f52"], ["cheap", "knife"], 2)
        assert list(kit.versions.values_list("version", "created_by__email")) == [(2, "brand@demo.vitrine"), (1, None)]

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    finally:
        context.close()
