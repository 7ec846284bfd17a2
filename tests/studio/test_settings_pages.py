"""The Settings page (members, invitations, API tokens, the approval rule) and the page an
invitation link opens."""
import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from catalog.models import ApiToken, Invitation, Membership, Role, User
from catalog.services import api_token_create
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/invite/[A-Za-z0-9_-]+/)")
NEW_PASSWORD = "a long new password 7"


def client_for(membership: Membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


@pytest.fixture
def owner(workspace):
    return MembershipFactory(workspace=workspace, role=Role.OWNER)


@pytest.fixture
def owner_client(owner):
    return client_for(owner)


@pytest.fixture
def merchant_client(membership):
    return client_for(membership)


@pytest.fixture
def invite_link(owner_client, django_capture_on_commit_callbacks):
    """The owner invites `email` through the page; returns the path of the link in the email."""

    def send(email: str = "colleague@example.test", role: str = Role.BRAND_MANAGER) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post("/settings/invitations/", {"email": email, "role": role})
        assert response.status_code == 302
        return LINK.search(mail.outbox[-1].body).group(1)

    return send


# What each role sees ---------------------------------------------------------------------


def test_settings_requires_sign_in(client):
    response = client.get("/settings/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/settings/"


def test_a_merchant_sees_their_tokens_and_the_rule_but_no_member_management(merchant_client, membership, owner):
    api_token_create(membership=membership, name="My script")
    api_token_create(membership=owner, name="Owner script")

    html = merchant_client.get("/settings/").content.decode()

    assert '<a href="/settings/" aria-current="page">Settings</a>' in html
    assert 'id="tokens-heading">API tokens</h2>' in html
    assert "My script" in html
    assert "Owner script" not in html
    assert 'id="members-heading"' not in html
    assert 'id="invitations-heading"' not in html
    assert 'action="/settings/invitations/"' not in html
    assert 'name="allow_self_approval"' not in html
    assert "every approval needs a second person" in html


def test_an_owner_sees_members_invitations_everyones_tokens_and_the_rule_control(owner_client, owner, membership):
    api_token_create(membership=membership, name="Merchant script")

    html = owner_client.get("/settings/").content.decode()

    assert 'id="members-heading">Members</h2>' in html
    assert f'<tr data-member="{membership.user.email}">' in html
    assert f'<tr data-member="{owner.user.email}">' in html
    assert f'action="/settings/members/{membership.pk}/remove/"' in html
    assert f'action="/settings/members/{owner.pk}/remove/"' not in html  # the only owner cannot be removed
    assert "The only owner" in html
    assert 'action="/settings/invitations/"' in html
    assert "Merchant script" in html
    assert f"<td>{membership.user.email}</td>" in html  # the token's member column
    assert 'name="allow_self_approval"' in html


# API tokens ------------------------------------------------------------------------------


def test_a_created_token_is_shown_once(merchant_client, membership):
    response = merchant_client.post("/settings/tokens/", {"name": "Uploader", "expires": "30"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = re.search(r'id="new-token-key" class="secret" value="([0-9a-f]{40})"', response.content.decode()).group(1)
    token = ApiToken.objects.get(name="Uploader")
    assert (token.user, token.workspace, token.key_hash) == (membership.user, membership.workspace, hashlib.sha256(key.encode()).hexdigest())
    assert timezone.now() + timedelta(days=29) < token.expires_at <= timezone.now() + timedelta(days=30)
    later = merchant_client.get("/settings/").content.decode()
    assert key not in later
    assert f"<code>{key[:8]}…</code>" in later


def test_a_token_that_never_expires(merchant_client):
    merchant_client.post("/settings/tokens/", {"name": "Forever", "expires": "never"})

    assert ApiToken.objects.get(name="Forever").expires_at is None


@pytest.mark.parametrize("data", [{"name": "", "expires": "90"}, {"name": "X", "expires": "11"}])
def test_a_bad_token_form_is_shown_again_and_creates_nothing(merchant_client, data):
    response = merchant_client.post("/settings/tokens/", data)

    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()
    assert 'id="new-token-key"' not in response.content.decode()
    assert ApiToken.objects.count() == 0


def test_a_member_revokes_their_token_but_not_a_colleagues(merchant_client, membership, owner):
    mine, _ = api_token_create(membership=membership, name="Mine")
    theirs, _ = api_token_create(membership=owner, name="Theirs")

    assert merchant_client.post(f"/settings/tokens/{mine.pk}/revoke/").status_code == 302
    assert merchant_client.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("revoked", "active")
    html = merchant_client.get("/settings/").content.decode()
    assert "The token “Mine”" in html and "is revoked" in html


def test_an_owner_revokes_a_members_token(owner_client, membership):
    theirs, _ = api_token_create(membership=membership, name="Theirs")

    assert owner_client.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 302

    theirs.refresh_from_db()
    assert theirs.status == "revoked"


def test_another_workspaces_token_is_not_found(owner_client, other_membership):
    foreign, _ = api_token_create(membership=other_membership, name="Foreign")

    assert owner_client.post(f"/settings/tokens/{foreign.pk}/revoke/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == "active"


# Members ---------------------------------------------------------------------------------


def test_an_owner_changes_a_role(owner_client, membership):
    response = owner_client.post(f"/settings/members/{membership.pk}/role/", {"role": "brand_manager"}, follow=True)

    membership.refresh_from_db()
    assert membership.role == Role.BRAND_MANAGER
    assert f"{membership.user.email} is now brand manager." in response.content.decode()


def test_the_last_owner_is_kept_and_the_page_says_why(owner_client, owner):
    demote = owner_client.post(f"/settings/members/{owner.pk}/role/", {"role": "merchant"}, follow=True)
    remove = owner_client.post(f"/settings/members/{owner.pk}/remove/", follow=True)

    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    assert "is the only owner of this workspace, so you cannot change their role" in demote.content.decode()
    assert "is the only owner of this workspace, so you cannot remove them" in remove.content.decode()


def test_an_owner_removes_a_member(owner_client, membership):
    response = owner_client.post(f"/settings/members/{membership.pk}/remove/", follow=True)

    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert f"{membership.user.email} was removed from" in response.content.decode()
    assert client_for(membership).get("/settings/").status_code == 403


@pytest.mark.parametrize("role", [Role.MERCHANT, Role.BRAND_MANAGER])
def test_others_cannot_change_roles_remove_invite_or_change_the_rule(workspace, owner, role, django_capture_on_commit_callbacks):
    caller = MembershipFactory(workspace=workspace, role=role)
    client = client_for(caller)

    with django_capture_on_commit_callbacks(execute=True):
        responses = [
            client.post(f"/settings/members/{caller.pk}/role/", {"role": "owner"}),
            client.post(f"/settings/members/{owner.pk}/remove/"),
            client.post("/settings/invitations/", {"email": "friend@example.test", "role": "owner"}),
            client.post("/settings/approval/", {"allow_self_approval": "on"}),
        ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert responses[2].content.decode() == "Only an owner of this workspace can invite people."
    caller.refresh_from_db()
    workspace.refresh_from_db()
    assert caller.role == role
    assert Membership.objects.filter(pk=owner.pk).exists()
    assert Invitation.objects.count() == 0
    assert mail.outbox == []
    assert workspace.allow_self_approval is False


def test_another_workspaces_member_is_not_found(owner_client, other_membership):
    assert owner_client.post(f"/settings/members/{other_membership.pk}/role/", {"role": "merchant"}).status_code == 404
    assert owner_client.post(f"/settings/members/{other_membership.pk}/remove/").status_code == 404
    other_membership.refresh_from_db()
    assert other_membership.role == Role.OWNER


# Invitations and the approval rule -----------------------------------------------------------


def test_an_owner_invites_and_sees_the_open_invitation(owner_client, invite_link):
    path = invite_link("colleague@example.test", Role.BRAND_MANAGER)

    html = owner_client.get("/settings/").content.decode()
    assert "Invitation sent to colleague@example.test as brand manager." in html
    assert '<tr data-invitation="colleague@example.test">' in html
    assert path.split("/")[2] not in html  # the token is only in the email


def test_a_bad_or_duplicate_invitation_is_explained_next_to_the_field(owner_client, invite_link, membership):
    invite_link("twice@example.test")

    bad = owner_client.post("/settings/invitations/", {"email": "not an address", "role": "merchant"})
    twice = owner_client.post("/settings/invitations/", {"email": "twice@example.test", "role": "merchant"})
    member = owner_client.post("/settings/invitations/", {"email": membership.user.email, "role": "merchant"})

    assert bad.status_code == 400
    assert 'id="invite-email-error"' in bad.content.decode()
    assert twice.status_code == 409
    assert "An invitation to twice@example.test is already open." in twice.content.decode()
    assert member.status_code == 409
    assert f"{membership.user.email} is already a member of this workspace." in member.content.decode()
    assert Invitation.objects.count() == 1


def test_an_owner_revokes_an_invitation(owner_client, invite_link):
    path = invite_link()

    response = owner_client.post(f"/settings/invitations/{Invitation.objects.get().pk}/revoke/", follow=True)

    assert "The invitation to colleague@example.test is revoked" in response.content.decode()
    page = Client().get(path)
    assert page.status_code == 410
    assert "This invitation was withdrawn by an owner of the workspace." in page.content.decode()


def test_an_owner_switches_the_approval_rule(owner_client, workspace):
    on = owner_client.post("/settings/approval/", {"allow_self_approval": "on"}, follow=True)
    workspace.refresh_from_db()
    assert workspace.allow_self_approval is True
    assert 'name="allow_self_approval" checked' in on.content.decode()

    owner_client.post("/settings/approval/", {})
    workspace.refresh_from_db()
    assert workspace.allow_self_approval is False


# The invitation link ---------------------------------------------------------------------


def test_a_new_person_sets_a_password_and_lands_in_the_workspace_with_the_role(invite_link, workspace):
    path = invite_link("colleague@example.test", Role.BRAND_MANAGER)
    browser = Client()

    page = browser.get(path).content.decode()
    assert "Create account and join" in page
    response = browser.post(path, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/products/"
    user = User.objects.get(email="colleague@example.test")
    assert Membership.objects.get(user=user, workspace=workspace).role == Role.BRAND_MANAGER
    products = browser.get("/products/").content.decode()
    assert f'<p class="workspace">{workspace.name}</p>' in products
    assert '<span class="badge">Brand manager</span>' in products
    used = Client().get(path)
    assert used.status_code == 410
    assert "This invitation link was already used." in used.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"password": NEW_PASSWORD, "password_again": "something else 9"}, "The two passwords differ."),
        ({"password": "12345678", "password_again": "12345678"}, "This password is too common."),
    ],
)
def test_a_new_password_the_page_refuses_creates_nothing(invite_link, data, message):
    path = invite_link()

    response = Client().post(path, data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not User.objects.filter(email="colleague@example.test").exists()
    assert Invitation.objects.get().status == "open"


def test_an_existing_user_signs_in_and_joins(invite_link, workspace):
    person = UserFactory(email="known@example.test")
    path = invite_link(person.email, Role.MERCHANT)
    browser = Client()

    assert "Sign in and join" in browser.get(path).content.decode()
    wrong = browser.post(path, {"password": "not it"})
    assert wrong.status_code == 400
    assert "That is not the password of known@example.test." in wrong.content.decode()
    assert not Membership.objects.filter(user=person, workspace=workspace).exists()

    right = browser.post(path, {"password": "correct horse battery"})
    assert right["Location"] == "/products/"
    assert Membership.objects.get(user=person, workspace=workspace).role == Role.MERCHANT
    assert browser.get("/products/").status_code == 200


def test_a_signed_in_invitee_joins_with_one_click(invite_link, workspace, other_membership):
    path = invite_link(other_membership.user.email, Role.MERCHANT)
    browser = client_for(other_membership)

    assert f"Join {workspace.name}</button>" in browser.get(path).content.decode()
    response = browser.post(path)

    assert response["Location"] == "/products/"
    assert Membership.objects.filter(user=other_membership.user, workspace=workspace).exists()
    assert f'<p class="workspace">{workspace.name}</p>' in browser.get("/products/").content.decode()
    # The page's own API calls (uploads) act in the workspace just joined, not the first one.
    assert browser.get("/api/v1/workspace/").json()["slug"] == workspace.slug


def test_someone_signed_in_as_another_account_is_told_to_sign_out(invite_link, workspace, other_membership):
    path = invite_link("colleague@example.test")
    browser = client_for(other_membership)

    page = browser.post(path, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}).content.decode()

    assert f"This invitation is for colleague@example.test, but you are signed in as {other_membership.user.email}." in page
    assert not User.objects.filter(email="colleague@example.test").exists()
    assert not Membership.objects.filter(user=other_membership.user, workspace=workspace).exists()


def test_an_expired_link_says_so(invite_link):
    path = invite_link()
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    response = Client().get(path)

    assert response.status_code == 410
    assert "This invitation expired on " in response.content.decode()
    assert Client().post(path, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}).status_code == 410
    assert not User.objects.filter(email="colleague@example.test").exists()


def test_an_unknown_link_says_so():
    response = Client().get("/invite/not-a-real-token/")

    assert response.status_code == 404
    assert "This invitation link is not valid." in response.content.decode()
