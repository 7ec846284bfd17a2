"""Two people, two logins, real Chromium and a real worker: the merchant generates scenes and
submits them; the brand manager rejects one with a comment and approves another from the
keyboard; the merchant sees both decisions and the notification; regenerating the approved
image makes a new image that awaits review."""
import re
from pathlib import Path

import pytest

from catalog.services import DEMO_PASSWORD
from studio.models import Asset, AuditVerb, AuditEvent, Review, ReviewState
from tests.studio.conftest import merchant_uploads_a_product_photo, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_merchant_submits_manager_decides_by_keyboard_merchant_sees_it(live_server, worker, page, browser, tmp_path):
    # The merchant: upload, generate two scenes, submit them.
    merchant_uploads_a_product_photo(page, live_server.url, tmp_path)
    tile = page.locator("#photo-grid .tile[data-status='ready']")
    tile.wait_for(timeout=240_000)
    tile.click()
    page.get_by_role("link", name="Generate scenes").click()
    page.get_by_label("Variants").fill("2")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    page.locator(".asset").nth(1).wait_for(timeout=240_000)
    page.get_by_role("button", name="Submit all 2 for review").click()
    page.get_by_text("2 images submitted for review").wait_for()
    first, second = Asset.objects.order_by("channel", "variant")[:2]
    assert all(a.gates_passed for a in (first, second)), [g for a in (first, second) for g in a.failing_gates]

    # The brand manager, in a second browser: the queue, the keyboard.
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    manager = context.new_page()
    manager.set_default_timeout(30_000)
    sign_in(manager, live_server.url, "brand@demo.vitrine", DEMO_PASSWORD)
    manager.get_by_role("link", name="Review").click()
    queue = manager.locator("#queue .queue-item")
    assert queue.count() == 2
    manager.locator(".review-panel").wait_for()
    shown = int(manager.locator(".review-panel").get_attribute("data-asset-id"))
    SCREENSHOTS.mkdir(exist_ok=True)
    manager.screenshot(path=str(SCREENSHOTS / "review-queue.png"), full_page=True)

    manager.keyboard.press("r")
    manager.keyboard.type("The label is cut off at the top.")
    manager.keyboard.press("Enter")
    queue.nth(1).wait_for(state="detached")
    manager.locator(f".review-panel:not([data-asset-id='{shown}'])").wait_for()
    other = int(manager.locator(".review-panel").get_attribute("data-asset-id"))
    manager.keyboard.press("a")
    queue.first.wait_for(state="detached")
    context.close()

    rejected, approved = Asset.objects.get(pk=shown), Asset.objects.get(pk=other)
    assert (rejected.review_state, approved.review_state) == (ReviewState.REJECTED, ReviewState.APPROVED)
    assert Review.objects.get(asset=rejected).comment == "The label is cut off at the top."
    assert Review.objects.get(asset=approved, decision="approved").asset_sha256 == approved.sha256

    # The merchant sees both decisions and the notifications.
    page.reload()
    assert page.locator(f".asset[data-asset-id='{shown}'] .review-state").inner_text() == "Rejected"
    assert page.locator(f".asset[data-asset-id='{other}'] .review-state").inner_text() == "Approved"
    page.get_by_role("link", name=re.compile("Notifications")).click()
    notes = page.locator(".notification").all_inner_texts()
    assert any("brand@demo.vitrine rejected your image." in n for n in notes)
    assert any("brand@demo.vitrine approved your image." in n for n in notes)

    # Regenerating the approved image makes a new image, in review.
    page.goto(f"{live_server.url}/assets/{other}/")
    page.get_by_role("button", name="Regenerate").click()
    # The worker marks the job succeeded, then submits its image (studio.tasks): wait for both.
    new = None
    for _ in range(240):
        new = Asset.objects.filter(regenerated_from=approved, job__status="succeeded", review_state=ReviewState.IN_REVIEW).first()
        if new is not None:
            break
        page.wait_for_timeout(1000)
    assert new is not None, "the regenerated image never arrived in review"
    assert Asset.objects.get(pk=other).review_state == ReviewState.APPROVED
    assert AuditEvent.objects.filter(asset=new, verb=AuditVerb.REVIEW_SUBMITTED).count() == 1
