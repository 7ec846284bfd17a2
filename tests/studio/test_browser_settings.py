"""In real headless Chromium against a live server: the demo owner invites a colleague from
Settings; the colleague opens the emailed link in their own browser, sets a password and
lands in the workspace with the invited role."""
import io
import re

import pytest
from django.core import mail
from django.core.management import call_command

from catalog.models import Membership, Role
from catalog.services import DEMO_PASSWORD
from tests.studio.conftest import sign_in

pytestmark = pytest.mark.browser


def test_owner_invites_a_colleague_who_sets_a_password_and_joins(live_server, transactional_db, browser, page):
    call_command("seed_demo", stdout=io.StringIO())  # what `make run` does
    sign_in(page, live_server.url, "owner@demo.vitrine", DEMO_PASSWORD)
    page.get_by_role("link", name="Settings").click()
    page.wait_for_url(f"{live_server.url}/settings/")

    page.get_by_label("Email", exact=True).fill("colleague@example.test")
    page.get_by_label("Role", exact=True).select_option(label="Brand manager")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to colleague@example.test as brand manager.").wait_for()
    assert page.locator("tr[data-invitation='colleague@example.test']").count() == 1

    # The live server runs in this process: its locmem mail backend fills this outbox.
    [message] = mail.outbox
    assert message.to == ["colleague@example.test"]
    link = re.search(r"http://\S+/invite/[A-Za-z0-9_-]+/", message.body).group(0)

    colleague_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        colleague = colleague_context.new_page()
        colleague.set_default_timeout(30_000)
        colleague.goto(link)
        colleague.get_by_role("heading", name="Join Demo Store").wait_for()
        colleague.get_by_label("Choose a password").fill("a long new password 7")
        colleague.get_by_label("Type it again").fill("a long new password 7")
        colleague.get_by_role("button", name="Create account and join").click()

        colleague.wait_for_url(f"{live_server.url}/products/")
        assert colleague.locator(".sidenav .workspace").inner_text() == "Demo Store"
        assert colleague.locator(".sidenav .account span").first.inner_text() == "colleague@example.test"
        assert colleague.locator(".sidenav .account .badge").inner_text() == "Brand manager"

        colleague.goto(link)  # the link worked once
        colleague.get_by_text("This invitation link was already used.").wait_for()
    finally:
        colleague_context.close()

    membership = Membership.objects.get(user__email="colleague@example.test")
    assert (membership.workspace.slug, membership.role) == ("demo", Role.BRAND_MANAGER)
    page.reload()
    assert page.locator("tr[data-member='colleague@example.test'] select").input_value() == "brand_manager"
    assert page.locator("tr[data-invitation='colleague@example.test']").count() == 0
