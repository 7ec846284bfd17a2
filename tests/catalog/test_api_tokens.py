"""Named API tokens: the key is shown once and never stored; expiry and revocation answer 401
with a reason; each member manages their own, owners anyone's in the workspace."""
import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import ApiToken, Membership, Role
from catalog.services import api_token_create
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def api_for(membership: Membership) -> APIClient:
    _, key = api_token_create(membership=membership, name="test client")
    return client_with(key)


@pytest.fixture
def owner(workspace):
    return MembershipFactory(workspace=workspace, role=Role.OWNER)


# The key ---------------------------------------------------------------------------------


def test_created_key_is_shown_once_and_only_its_hash_is_stored(api, user, workspace):
    response = api.post("/api/v1/tokens/", {"name": "CI uploads"}, format="json")

    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert len(key) == 40
    token = ApiToken.objects.get(pk=body["id"])
    assert (token.name, token.user, token.workspace, token.key_prefix) == ("CI uploads", user, workspace, key[:8])
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert not any(key in value for value in stored)
    listing = api.get("/api/v1/tokens/").json()
    assert "key" not in listing["results"][0]
    assert key not in str(listing)
    assert "key" not in api.get(f"/api/v1/tokens/{token.pk}/").json()


def test_a_new_key_works_and_records_when_it_was_used(api):
    key = api.post("/api/v1/tokens/", {"name": "Sync"}, format="json").json()["key"]

    assert client_with(key).get("/api/v1/products/").status_code == 200
    token = ApiToken.objects.get(name="Sync")
    assert token.last_used_at is not None
    assert timezone.now() - token.last_used_at < timedelta(seconds=30)


def test_last_used_is_written_at_most_once_a_minute(membership):
    token, key = api_token_create(membership=membership, name="loop")
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)

    assert client_with(key).get("/api/v1/products/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == recent

    stale = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    assert client_with(key).get("/api/v1/products/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at > stale + timedelta(minutes=1)


# Expiry ----------------------------------------------------------------------------------


def test_default_expiry_comes_from_the_setting(api, settings):
    settings.VITRINE_API_TOKEN_DAYS = 5

    before = timezone.now()
    response = api.post("/api/v1/tokens/", {"name": "Short"}, format="json")

    token = ApiToken.objects.get(pk=response.json()["id"])
    assert before + timedelta(days=5) <= token.expires_at <= timezone.now() + timedelta(days=5)


def test_an_explicit_null_expiry_never_expires(api):
    response = api.post("/api/v1/tokens/", {"name": "Forever", "expires_at": None}, format="json")

    assert response.status_code == 201
    assert response.json()["expires_at"] is None
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at is None


def test_an_expiry_in_the_past_is_refused_and_nothing_is_created(api):
    count = ApiToken.objects.count()
    past = (timezone.now() - timedelta(hours=1)).isoformat()

    response = api.post("/api/v1/tokens/", {"name": "Late", "expires_at": past}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "expires_at": ["Pick an expiry in the future, or none for a token that does not expire."]
    }
    assert ApiToken.objects.count() == count


@pytest.mark.parametrize("name", ["", "   "])
def test_a_token_needs_a_name(api, name):
    count = ApiToken.objects.count()

    response = api.post("/api/v1/tokens/", {"name": name}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["name"]
    assert ApiToken.objects.count() == count


def test_an_expired_token_answers_401_saying_it_expired(membership):
    token, key = api_token_create(membership=membership, name="Old script")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = client_with(key).get("/api/v1/products/")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "token_expired"
    assert error["message"].startswith("The API token “Old script” expired on ")
    assert error["message"].endswith("Create a new one on the Settings page.")
    assert response["WWW-Authenticate"] == "Token"
    token.refresh_from_db()
    assert token.last_used_at is None


# Revocation ------------------------------------------------------------------------------


def test_a_revoked_token_answers_401_saying_it_was_revoked(api, membership):
    token, key = api_token_create(membership=membership, name="Leaked")

    assert api.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204

    response = client_with(key).get("/api/v1/products/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"
    assert response.json()["error"]["message"].startswith("The API token “Leaked” was revoked on ")
    token.refresh_from_db()
    assert token.status == "revoked"


def test_revoking_twice_keeps_the_first_time(api, membership):
    token, _ = api_token_create(membership=membership, name="Twice")
    api.delete(f"/api/v1/tokens/{token.pk}/")
    token.refresh_from_db()
    first = token.revoked_at

    assert api.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at == first


def test_a_token_can_revoke_itself(membership):
    token, key = api_token_create(membership=membership, name="Self")
    client = client_with(key)

    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert client.get("/api/v1/products/").status_code == 401


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token not-a-key-we-know"])
def test_a_malformed_or_unknown_key_answers_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/products/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_another_workspaces_token_cannot_be_revoked(owner, other_membership):
    foreign, foreign_key = api_token_create(membership=other_membership, name="Theirs")

    response = api_for(owner).delete(f"/api/v1/tokens/{foreign.pk}/")

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    assert client_with(foreign_key).get("/api/v1/products/").status_code == 200


def test_a_member_cannot_revoke_a_colleagues_token(api, workspace):
    colleague = MembershipFactory(workspace=workspace, role=Role.BRAND_MANAGER)
    theirs, their_key = api_token_create(membership=colleague, name="Theirs")

    response = api.delete(f"/api/v1/tokens/{theirs.pk}/")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert client_with(their_key).get("/api/v1/products/").status_code == 200


def test_an_owner_revokes_any_members_token_in_the_workspace(owner, membership):
    theirs, their_key = api_token_create(membership=membership, name="Merchant's")

    response = api_for(owner).delete(f"/api/v1/tokens/{theirs.pk}/")

    assert response.status_code == 204
    assert client_with(their_key).get("/api/v1/products/").json()["error"]["code"] == "token_revoked"


# Lists -----------------------------------------------------------------------------------


def test_members_list_their_own_tokens_and_owners_may_list_everyones(owner, membership):
    mine, _ = api_token_create(membership=membership, name="Mine")
    owners, _ = api_token_create(membership=owner, name="Owner's")
    merchant_api, owner_api = api_for(membership), api_for(owner)

    assert [t["name"] for t in merchant_api.get("/api/v1/tokens/").json()["results"]] == ["test client", "Mine"]
    assert merchant_api.get("/api/v1/tokens/?all=true").status_code == 403
    listing = owner_api.get("/api/v1/tokens/?all=true").json()["results"]
    assert {(t["name"], t["owner"]) for t in listing} == {
        ("test client", owner.user.email), ("Owner's", owner.user.email),
        ("test client", membership.user.email), ("Mine", membership.user.email),
    }
    assert owner_api.get("/api/v1/tokens/?all=maybe").status_code == 400


def test_the_list_says_which_tokens_still_work(api, membership):
    revoked, _ = api_token_create(membership=membership, name="Revoked")
    expired, _ = api_token_create(membership=membership, name="Expired")
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))

    statuses = {t["name"]: t["status"] for t in api.get("/api/v1/tokens/").json()["results"]}

    assert statuses == {"tests": "active", "Revoked": "revoked", "Expired": "expired"}


# One workspace per token -----------------------------------------------------------------


def test_a_token_acts_only_in_the_workspace_it_was_made_in(membership):
    second = MembershipFactory(user=membership.user, workspace=WorkspaceFactory(name="Second Shop"), role=Role.OWNER)
    _, key = api_token_create(membership=membership, name="First shop script")
    client = client_with(key)

    response = client.get("/api/v1/workspace/", HTTP_X_VITRINE_WORKSPACE=second.workspace.slug)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "token_other_workspace"
    assert client.get("/api/v1/workspace/").json()["slug"] == membership.workspace.slug
    assert client.get("/api/v1/workspace/", HTTP_X_VITRINE_WORKSPACE=membership.workspace.slug).status_code == 200


def test_removing_a_member_revokes_their_tokens_there(owner, membership):
    _, key = api_token_create(membership=membership, name="Merchant script")

    assert api_for(owner).delete(f"/api/v1/members/{membership.pk}/").status_code == 204

    response = client_with(key).get("/api/v1/products/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"


# POST /api/v1/auth/token/ ------------------------------------------------------------------


def test_sign_in_returns_a_new_named_token_with_the_default_expiry(user, workspace):
    before = timezone.now()
    response = APIClient().post("/api/v1/auth/token/", {"email": user.email, "password": "correct horse battery"}, format="json")

    assert response.status_code == 200
    body = response.json()
    token = ApiToken.objects.get(key_hash=hashlib.sha256(body["token"].encode()).hexdigest())
    assert (token.name, token.user, token.workspace, body["name"], body["workspace"]) == (
        "API login", user, workspace, "API login", workspace.slug
    )
    assert before + timedelta(days=settings.VITRINE_API_TOKEN_DAYS) <= token.expires_at
    assert token.expires_at <= timezone.now() + timedelta(days=settings.VITRINE_API_TOKEN_DAYS)
    again = APIClient().post("/api/v1/auth/token/", {"email": user.email, "password": "correct horse battery"}, format="json")
    assert again.json()["token"] != body["token"]
    assert ApiToken.objects.filter(user=user, name="API login").count() == 2


def test_sign_in_names_the_workspace_with_the_header(membership):
    second = MembershipFactory(user=membership.user, workspace=WorkspaceFactory(name="Second Shop"), role=Role.OWNER)

    response = APIClient().post(
        "/api/v1/auth/token/", {"email": membership.user.email, "password": "correct horse battery"}, format="json",
        HTTP_X_VITRINE_WORKSPACE=second.workspace.slug,
    )

    assert response.json()["workspace"] == second.workspace.slug
    assert client_with(response.json()["token"]).get("/api/v1/workspace/").json()["role"] == "owner"


def test_sign_in_without_a_workspace_gets_no_token():
    lonely = UserFactory()

    response = APIClient().post("/api/v1/auth/token/", {"email": lonely.email, "password": "correct horse battery"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "no_workspace"
    assert ApiToken.objects.count() == 0


def test_token_endpoint_keeps_its_throttle(user):
    from django.core.cache import cache

    cache.clear()
    client = APIClient()
    # A different account each time: one account's wrong passwords lock it after 10
    # (tests/test_security_doors.py); the throttle counts the address whatever the account.
    codes = [
        client.post("/api/v1/auth/token/", {"email": f"guess{n}@example.test", "password": "wrong"}, format="json").status_code
        for n in range(21)
    ]

    assert codes == [400] * 20 + [429]
    cache.clear()


def test_the_schema_describes_the_token_scheme(api):
    schema = api.get("/api/schema/?format=json").json()

    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"
    assert schema["paths"]["/api/v1/tokens/"]["post"]["summary"] == "Create an API token"
    assert "401" in schema["paths"]["/api/v1/tokens/{id}/"]["delete"]["responses"]
