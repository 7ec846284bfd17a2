"""Upload → generate 4 scenes with the default preset → progress → gallery with the lock gate,
in real headless Chromium, with a real worker running the bundled model."""
import re

import pytest

from studio.models import Asset, GenerationJob
from tests.studio.conftest import merchant_uploads_a_product_photo

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_generate_four_scenes_and_see_the_gallery(live_server, worker, page, tmp_path):
    merchant_uploads_a_product_photo(page, live_server.url, tmp_path)
    tile = page.locator("#photo-grid .tile[data-status='ready'], #photo-grid .tile[data-status='failed']")
    tile.wait_for(timeout=240_000)
    assert tile.get_attribute("data-status") == "ready", "the photo's cutout or thumbnail job failed"
    tile.click()

    page.get_by_role("link", name="Generate scenes").click()
    assert page.locator("input[name=preset]:checked").count() == 1  # the default preset is chosen
    page.get_by_label("Variants").fill("4")
    page.get_by_role("button", name="Generate").click()

    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    page.get_by_label("Generation progress").wait_for()
    locks = page.locator(".asset [data-gate='lock']")
    locks.nth(3).wait_for(timeout=180_000)
    texts = locks.all_inner_texts()
    assert len(texts) == 4
    job = GenerationJob.objects.get()
    assert (job.status, job.variants, job.preset.is_default) == ("succeeded", 4, True)
    assets = Asset.objects.filter(job=job)
    assert assets.count() == 4
    assert all(a.lock_certificate["changed_pixels"] == 0 for a in assets)
    # The lock says what was done to the product: on the default channel it was resized, and
    # the page says so (never "unchanged" for resampled pixels).
    lock_gates = [next(g for g in a.gates if g["name"] == "lock") for a in assets]
    assert {f"Pass Pixel lock {g['reason']}" for g in lock_gates} == {" ".join(t.split()) for t in texts}
    assert all(("resized" in g["reason"]) == (a.lock_certificate["transform"]["scale"] != 1.0) for g, a in zip(lock_gates, assets))
