"""The review queue, submitting from a job's page, and notifications, through the pages."""
import pytest
from django.test import Client

from catalog.models import Role
from studio import reviews
from studio.models import Asset, Notification, ReviewState
from tests.factories import MembershipFactory
from tests.studio.test_reviews import FAILING_GATE, assets, team  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_only_brand_managers_and_owners_open_the_queue(team):
    assert _signed_in(team[Role.BRAND_MANAGER]).get("/review/").status_code == 200
    assert _signed_in(team[Role.OWNER]).get("/review/").status_code == 200
    refused = _signed_in(team[Role.MERCHANT]).get("/review/")
    assert refused.status_code == 403
    assert "brand manager or an owner" in refused.content.decode()


def test_the_queue_lists_what_awaits_a_decision_and_filters_by_gate(assets, team):
    reviews.reviews_submit(assets=assets, actor=team[Role.MERCHANT])
    Asset.objects.filter(pk=assets[1].pk).update(gates=[FAILING_GATE], gates_passed=False)
    manager = _signed_in(team[Role.BRAND_MANAGER])

    everything = manager.get("/review/").content.decode()
    failing_only = manager.get("/review/?gates=fail").content.decode()
    bad = manager.get("/review/?product=abc")

    assert everything.count('class="queue-item"') == 2
    assert failing_only.count('class="queue-item"') == 1 and f'data-asset-id="{assets[1].pk}"' in failing_only
    assert bad.status_code == 200 and "is not an id" in bad.content.decode()


def test_a_decision_from_the_panel_moves_the_image_and_tells_the_page(assets, team):
    reviews.review_submit(asset=assets[0], actor=team[Role.MERCHANT])
    manager = _signed_in(team[Role.BRAND_MANAGER])

    response = manager.post(f"/review/{assets[0].pk}/decide/", {"action": "reject", "comment": "Too dark"})

    assert response.status_code == 200
    assert response["HX-Trigger"] == f'{{"review-decided": {{"id": {assets[0].pk}, "state": "rejected"}}}}'
    assert Asset.objects.get(pk=assets[0].pk).review_state == ReviewState.REJECTED


def test_approving_over_a_failing_gate_in_the_page_asks_for_the_reason(assets, team):
    Asset.objects.filter(pk=assets[0].pk).update(gates=[FAILING_GATE], gates_passed=False)
    reviews.review_submit(asset=assets[0], actor=team[Role.MERCHANT])
    manager = _signed_in(team[Role.BRAND_MANAGER])

    refused = manager.post(f"/review/{assets[0].pk}/decide/", {"action": "approve"})
    accepted = manager.post(f"/review/{assets[0].pk}/decide/", {"action": "approve", "override_reason": "Edges checked at 1:1"})

    assert "HX-Trigger" not in refused and "override reason" in refused.content.decode()
    assert 'id="override-reason"' in refused.content.decode()
    assert accepted["HX-Trigger"].startswith('{"review-decided"')
    assert Asset.objects.get(pk=assets[0].pk).review_state == ReviewState.APPROVED


def test_a_merchant_cannot_approve_through_the_page(assets, team):
    reviews.review_submit(asset=assets[0], actor=team[Role.MERCHANT])

    response = _signed_in(team[Role.MERCHANT]).post(f"/review/{assets[0].pk}/decide/", {"action": "approve"})

    assert "HX-Trigger" not in response
    assert "Only a brand manager or an owner" in response.content.decode()
    assert Asset.objects.get(pk=assets[0].pk).review_state == ReviewState.IN_REVIEW


def test_bulk_approve_in_the_page_reports_what_it_skipped(assets, team):
    reviews.reviews_submit(assets=assets, actor=team[Role.MERCHANT])
    Asset.objects.filter(pk=assets[1].pk).update(gates=[FAILING_GATE], gates_passed=False)
    manager = _signed_in(team[Role.BRAND_MANAGER])

    response = manager.post("/review/bulk/", {"action": "approved", "ids": [a.pk for a in assets]}, follow=True)

    page = response.content.decode()
    assert "1 image approved" in page
    assert f"Image {assets[1].pk} was left in review" in page
    assert [Asset.objects.get(pk=a.pk).review_state for a in assets] == [ReviewState.APPROVED, ReviewState.IN_REVIEW]


def test_a_job_page_submits_its_images_and_the_managers_see_a_count(assets, team):
    merchant = _signed_in(team[Role.MERCHANT])

    page = merchant.post(f"/jobs/{assets[0].job_id}/submit/", follow=True).content.decode()
    nav = _signed_in(team[Role.BRAND_MANAGER]).get("/notifications/").content.decode()

    assert "2 images submitted for review" in page
    assert set(Asset.objects.filter(pk__in=[a.pk for a in assets]).values_list("review_state", flat=True)) == {ReviewState.IN_REVIEW}
    assert 'aria-label="1 unread"' in nav
    assert f"{team[Role.MERCHANT].email} submitted 2 image(s) for review." in nav


def test_marking_notifications_read_clears_the_count(assets, team):
    reviews.reviews_submit(assets=assets, actor=team[Role.MERCHANT])
    manager = _signed_in(team[Role.BRAND_MANAGER])

    manager.post("/notifications/read/")

    assert not Notification.objects.filter(recipient=team[Role.BRAND_MANAGER], read_at__isnull=True).exists()
    assert "unread" not in manager.get("/notifications/").content.decode().split("<main")[0]


def test_another_workspaces_image_is_404_in_the_panel(assets, team):
    outsider = MembershipFactory(role=Role.OWNER).user

    assert _signed_in(outsider).get(f"/review/{assets[0].pk}/").status_code == 404
    assert _signed_in(outsider).post(f"/review/{assets[0].pk}/decide/", {"action": "approve"}).status_code == 404
