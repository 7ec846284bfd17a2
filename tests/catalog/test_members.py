"""Members and roles, invitations and the approval rule over the API: owners manage the team,
the last owner stays, an invitation's link works once for the address it was sent to."""
import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import ApiToken, Invitation, Membership, Role, User
from catalog.services import api_token_create
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver/invite/([A-Za-z0-9_-]+)/")


def api_for(membership: Membership) -> APIClient:
    _, key = api_token_create(membership=membership, name="test client")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def owner(workspace):
    return MembershipFactory(workspace=workspace, role=Role.OWNER)


@pytest.fixture
def owner_api(owner):
    return api_for(owner)


@pytest.fixture
def invite(owner_api, django_capture_on_commit_callbacks):
    """The owner invites `email` as `role` over the API; returns (response, token from the email)."""

    def send(email: str = "new.person@example.test", role: str = Role.MERCHANT):
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_api.post("/api/v1/invitations/", {"email": email, "role": role}, format="json")
        tokens = [LINK.search(message.body).group(1) for message in mail.outbox if email.lower() in message.to]
        return response, (tokens[-1] if tokens else None)

    return send


# Members ---------------------------------------------------------------------------------


def test_owners_list_members_owners_first(owner_api, owner, membership):
    manager = MembershipFactory(workspace=owner.workspace, role=Role.BRAND_MANAGER)

    results = owner_api.get("/api/v1/members/").json()["results"]

    assert [(m["email"], m["role"]) for m in results] == [
        (owner.user.email, "owner"), (manager.user.email, "brand_manager"), (membership.user.email, "merchant"),
    ]
    assert results[1]["role_label"] == "Brand manager"


@pytest.mark.parametrize("role", [Role.MERCHANT, Role.BRAND_MANAGER])
def test_brand_managers_and_merchants_cannot_manage_members(workspace, owner, role):
    caller = MembershipFactory(workspace=workspace, role=role)
    client = api_for(caller)

    assert client.get("/api/v1/members/").status_code == 403
    response = client.patch(f"/api/v1/members/{caller.pk}/", {"role": "owner"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Only an owner of this workspace can do this."
    assert client.delete(f"/api/v1/members/{owner.pk}/").status_code == 403
    caller.refresh_from_db()
    assert caller.role == role
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_an_owner_changes_a_members_role(owner_api, membership):
    response = owner_api.patch(f"/api/v1/members/{membership.pk}/", {"role": "brand_manager"}, format="json")

    assert response.status_code == 200
    assert response.json()["role"] == "brand_manager"
    membership.refresh_from_db()
    assert membership.role == Role.BRAND_MANAGER


def test_an_unknown_role_is_refused(owner_api, membership):
    response = owner_api.patch(f"/api/v1/members/{membership.pk}/", {"role": "admin"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["role"]
    membership.refresh_from_db()
    assert membership.role == Role.MERCHANT


def test_the_last_owner_cannot_be_demoted_or_removed(owner_api, owner):
    demote = owner_api.patch(f"/api/v1/members/{owner.pk}/", {"role": "merchant"}, format="json")
    remove = owner_api.delete(f"/api/v1/members/{owner.pk}/")

    for response in (demote, remove):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "last_owner"
    assert remove.json()["error"]["message"] == (
        f"{owner.user.email} is the only owner of this workspace, so you cannot remove them. Make another member an owner first."
    )
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_with_a_second_owner_an_owner_may_step_down(owner_api, owner, workspace):
    MembershipFactory(workspace=workspace, role=Role.OWNER)

    response = owner_api.patch(f"/api/v1/members/{owner.pk}/", {"role": "brand_manager"}, format="json")

    assert response.status_code == 200
    owner.refresh_from_db()
    assert owner.role == Role.BRAND_MANAGER


def test_removing_a_member_keeps_the_account_and_ends_access(owner_api, membership):
    member_api = api_for(membership)

    assert owner_api.delete(f"/api/v1/members/{membership.pk}/").status_code == 204

    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert User.objects.filter(pk=membership.user_id).exists()
    assert member_api.get("/api/v1/products/").status_code == 401
    assert set(ApiToken.objects.filter(user=membership.user).values_list("revoked_at", flat=True)) != {None}


def test_another_workspaces_member_is_not_found(owner_api, other_membership):
    assert owner_api.get(f"/api/v1/members/{other_membership.pk}/").status_code == 404
    assert owner_api.patch(f"/api/v1/members/{other_membership.pk}/", {"role": "merchant"}, format="json").status_code == 404
    assert owner_api.delete(f"/api/v1/members/{other_membership.pk}/").status_code == 404
    other_membership.refresh_from_db()
    assert other_membership.role == Role.OWNER


# Invitations -----------------------------------------------------------------------------


def test_an_owner_invites_by_email_with_a_one_time_link(invite, owner, settings):
    settings.VITRINE_INVITATION_DAYS = 3
    before = timezone.now()

    response, token = invite("New.Person@Example.test", Role.BRAND_MANAGER)

    assert response.status_code == 201
    body = response.json()
    assert (body["email"], body["role"], body["status"], body["invited_by"]) == (
        "new.person@example.test", "brand_manager", "open", owner.user.email
    )
    assert "token" not in body and "token_hash" not in body
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert before + timedelta(days=3) <= invitation.expires_at <= timezone.now() + timedelta(days=3)
    [message] = mail.outbox
    assert message.to == ["new.person@example.test"]
    assert message.subject == f"{owner.user.email} invited you to {owner.workspace.name} on Vitrine"
    assert f"join {owner.workspace.name} on Vitrine as brand manager" in message.body
    assert token not in str(Invitation.objects.values().get())


@pytest.mark.parametrize("role", [Role.MERCHANT, Role.BRAND_MANAGER])
def test_brand_managers_and_merchants_cannot_invite(workspace, role, django_capture_on_commit_callbacks):
    client = api_for(MembershipFactory(workspace=workspace, role=role))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/invitations/", {"email": "friend@example.test", "role": "owner"}, format="json")

    assert response.status_code == 403
    assert client.get("/api/v1/invitations/").status_code == 403
    assert Invitation.objects.count() == 0
    assert mail.outbox == []


def test_an_invitation_for_a_member_or_an_open_one_is_refused(invite, membership):
    first, _ = invite("twice@example.test")
    again, again_token = invite("twice@example.test")
    member, _ = invite(membership.user.email.upper())

    assert first.status_code == 201
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invitation_open")
    assert (member.status_code, member.json()["error"]["code"]) == (409, "already_member")
    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 1


def test_an_expired_invitation_is_replaced_by_a_new_one(invite):
    invite("late@example.test")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    response, token = invite("late@example.test")

    assert response.status_code == 201
    assert Invitation.objects.get(pk=response.json()["id"]).token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b@c"])
def test_an_invitation_needs_an_email_address(owner_api, email):
    response = owner_api.post("/api/v1/invitations/", {"email": email, "role": "merchant"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["email"]
    assert Invitation.objects.count() == 0


def test_a_failing_mail_server_leaves_the_invitation_open(owner_api, settings, django_capture_on_commit_callbacks, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1  # nothing listens there

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.post("/api/v1/invitations/", {"email": "x@example.test", "role": "merchant"}, format="json")

    assert response.status_code == 201
    assert Invitation.objects.get().status == "open"
    assert "catalog.invitation.email_failed" in caplog.text


def test_revoking_an_invitation_ends_its_link(invite, owner_api):
    response, token = invite()

    assert owner_api.delete(f"/api/v1/invitations/{response.json()['id']}/").status_code == 204

    accept = APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": "a long new password 7"}, format="json")
    assert accept.status_code == 400
    assert accept.json()["error"]["code"] == "invitation_revoked"
    assert not User.objects.filter(email="new.person@example.test").exists()
    assert owner_api.get("/api/v1/invitations/").json()["count"] == 0


def test_another_workspaces_invitation_cannot_be_revoked(owner_api, other_membership):
    foreign = Invitation.objects.create(
        workspace=other_membership.workspace, email="theirs@example.test", role=Role.MERCHANT, token_hash="0" * 64,
        expires_at=timezone.now() + timedelta(days=1),
    )

    assert owner_api.delete(f"/api/v1/invitations/{foreign.pk}/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


# Accepting -------------------------------------------------------------------------------


def test_a_new_person_accepts_with_a_password(invite, workspace):
    _, token = invite("new.person@example.test", Role.BRAND_MANAGER)

    response = APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": "a long new password 7"}, format="json")

    assert response.status_code == 201
    assert response.json() == {
        "email": "new.person@example.test", "workspace": workspace.slug, "workspace_name": workspace.name, "role": "brand_manager",
    }
    user = User.objects.get(email="new.person@example.test")
    assert user.check_password("a long new password 7")
    assert Membership.objects.get(user=user).role == Role.BRAND_MANAGER
    assert Invitation.objects.get().status == "accepted"
    signed_in = APIClient().post("/api/v1/auth/token/", {"email": user.email, "password": "a long new password 7"}, format="json")
    assert signed_in.json()["workspace"] == workspace.slug


def test_a_used_link_cannot_be_used_again(invite):
    _, token = invite()
    APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": "a long new password 7"}, format="json")

    again = APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": "another long password 8"}, format="json")

    assert again.status_code == 400
    assert again.json()["error"] == {
        "code": "invitation_used",
        "message": "This invitation link was already used. Sign in with the account that accepted it.",
    }
    assert User.objects.get(email="new.person@example.test").check_password("a long new password 7")


def test_an_expired_link_says_so_and_creates_nothing(invite):
    _, token = invite()
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    response = APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": "a long new password 7"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invitation_expired"
    assert response.json()["error"]["message"].startswith("This invitation expired on ")
    assert not User.objects.filter(email="new.person@example.test").exists()


def test_an_unknown_link_says_so():
    response = APIClient().post("/api/v1/invitations/accept/", {"token": "made-up", "password": "a long new password 7"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invitation_unknown"
    assert User.objects.count() == 0


def test_a_weak_password_is_refused_and_the_link_stays_usable(invite):
    _, token = invite()

    response = APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": "12345678"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]
    assert not User.objects.filter(email="new.person@example.test").exists()
    assert Invitation.objects.get().status == "open"


def test_an_existing_user_joins_with_their_password(invite, workspace, other_membership):
    person = other_membership.user
    _, token = invite(person.email, Role.MERCHANT)

    response = APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": "correct horse battery"}, format="json")

    assert response.status_code == 201
    assert Membership.objects.get(user=person, workspace=workspace).role == Role.MERCHANT
    assert Membership.objects.filter(user=person).count() == 2
    person.refresh_from_db()
    assert person.check_password("correct horse battery")


@pytest.mark.parametrize("password", [None, "not their password"])
def test_an_existing_user_must_sign_in_to_join(invite, workspace, password):
    person = UserFactory(email="known@example.test")
    _, token = invite(person.email)
    body = {"token": token} if password is None else {"token": token, "password": password}

    response = APIClient().post("/api/v1/invitations/accept/", body, format="json")

    assert response.status_code == 400
    assert not Membership.objects.filter(user=person, workspace=workspace).exists()
    assert Invitation.objects.get().status == "open"


def test_a_signed_in_existing_user_joins_without_a_password(invite, workspace, other_membership):
    _, token = invite(other_membership.user.email)

    response = api_for(other_membership).post("/api/v1/invitations/accept/", {"token": token}, format="json")

    assert response.status_code == 201
    assert Membership.objects.filter(user=other_membership.user, workspace=workspace).exists()


def test_a_link_for_someone_else_is_refused_to_a_signed_in_account(invite, workspace, other_membership):
    _, token = invite("someone.else@example.test")

    response = api_for(other_membership).post("/api/v1/invitations/accept/", {"token": token}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invitation_other_account"
    assert not Membership.objects.filter(user=other_membership.user, workspace=workspace).exists()
    assert not User.objects.filter(email="someone.else@example.test").exists()


# The workspace and its approval rule -------------------------------------------------------


def test_every_member_reads_the_approval_rule(api, workspace):
    assert api.get("/api/v1/workspace/").json() == {
        "name": workspace.name, "slug": workspace.slug, "allow_self_approval": False, "role": "merchant",
        "created_at": workspace.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_an_owner_changes_the_approval_rule(owner_api, workspace):
    response = owner_api.patch("/api/v1/workspace/", {"allow_self_approval": True}, format="json")

    assert response.status_code == 200
    assert response.json()["allow_self_approval"] is True
    workspace.refresh_from_db()
    assert workspace.allow_self_approval is True


@pytest.mark.parametrize("role", [Role.MERCHANT, Role.BRAND_MANAGER])
def test_only_owners_change_the_approval_rule(workspace, role):
    response = api_for(MembershipFactory(workspace=workspace, role=role)).patch(
        "/api/v1/workspace/", {"allow_self_approval": True}, format="json"
    )

    assert response.status_code == 403
    workspace.refresh_from_db()
    assert workspace.allow_self_approval is False


def test_the_approval_rule_must_be_a_boolean(owner_api, workspace):
    response = owner_api.patch("/api/v1/workspace/", {"allow_self_approval": "sometimes"}, format="json")

    assert response.status_code == 400
    workspace.refresh_from_db()
    assert workspace.allow_self_approval is False


@pytest.mark.postgres
def test_two_owners_demoting_each_other_at_once_leave_one_owner(transactional_db, monkeypatch):
    import threading

    from django.core.exceptions import PermissionDenied
    from django.db import connection

    from catalog import services
    from tests.factories import WorkspaceFactory

    workspace = WorkspaceFactory()
    first, second = (MembershipFactory(workspace=workspace, role=Role.OWNER) for _ in range(2))
    # Each change waits here after its last-owner check: without the team lock both checks
    # would pass before either demotion is written. With it, the second change cannot get
    # past the lock until the first has committed, so the wait just times out.
    after_check = threading.Barrier(2, timeout=2)
    original_check = services._refuse_last_owner

    def check_then_wait(membership, doing):
        original_check(membership, doing)
        try:
            after_check.wait()
        except threading.BrokenBarrierError:
            pass

    monkeypatch.setattr(services, "_refuse_last_owner", check_then_wait)
    outcomes = []

    def demote(actor, target):
        try:
            services.member_role_change(actor=actor, membership=target, role=Role.MERCHANT)
            outcomes.append("demoted")
        except services.TeamConflict as exc:
            outcomes.append(exc.code)
        except PermissionDenied:
            outcomes.append("no longer an owner")
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(first, second)), threading.Thread(target=demote, args=(second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # The second change runs after the first: its actor was just demoted.
    assert sorted(outcomes) == ["demoted", "no longer an owner"]
    assert Membership.objects.filter(workspace=workspace, role=Role.OWNER).count() == 1
