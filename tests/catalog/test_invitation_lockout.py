"""Accepting an invitation with an existing account's password goes through the same sign-in
lockout as the login page and the token endpoint (catalog/lockout.py), and says so in the
same words: not "that is not the password" while even the right password is refused."""
import re

import pytest
from django.core import mail
from rest_framework.test import APIClient

from catalog.api.team import InvitationAcceptView
from catalog.models import Invitation, Membership, Role
from catalog.services import invitation_create
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # tests/factories.py
LIMIT = 10  # VITRINE_LOGIN_FAILURE_LIMIT's default
LINK = re.compile(r"http://testserver/invite/([A-Za-z0-9_-]+)/")
LOCK_TEXT = re.compile(
    r"^Signing in to this account from your address is paused after 10 failed attempts\. "
    r"Try again after \d\d:\d\d UTC \(in 15 minutes\)\.$"
)


@pytest.fixture(autouse=True)
def _no_throttle(monkeypatch):
    # The per-address throttle (20/min) would answer before the lockout is reached.
    monkeypatch.setattr(InvitationAcceptView, "throttle_classes", [])


def accept(token: str, password: str):
    return APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": password}, format="json")


def test_wrong_passwords_lock_the_invitation_like_the_sign_in_and_then_the_right_one_does_not_join(workspace, django_capture_on_commit_callbacks):
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER)
    person = UserFactory(email="known@example.test")
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(actor=owner, email=person.email, role=Role.MERCHANT, link_for=lambda t: f"http://testserver/invite/{t}/")
    token = LINK.search(mail.outbox[-1].body).group(1)

    wrong = [accept(token, f"wrong-{n}") for n in range(LIMIT + 2)]
    right = accept(token, PASSWORD)

    assert [r.status_code for r in wrong] == [400] * (LIMIT - 1) + [429] * 3
    assert wrong[0].json()["error"]["fields"] == {"password": ["That is not the password of the account known@example.test."]}
    for response in (*wrong[LIMIT - 1 :], right):
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "locked_out"
        assert LOCK_TEXT.match(response.json()["error"]["message"]), response.json()
        assert 899 <= int(response["Retry-After"]) <= 900
    assert not Membership.objects.filter(user=person, workspace=workspace).exists()
    assert Invitation.objects.get().status == "open"
