import logging

import pytest
from rest_framework.test import APIClient

from storefront.models import ConnectionStatus, StorefrontConnection
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db
TOKEN = "shpat_api_secret_0123456789abcdef"


@pytest.fixture
def member():
    return MembershipFactory()


@pytest.fixture
def api(member):
    client = APIClient()
    client.force_authenticate(member.user)
    return client


def test_connect_list_and_disconnect_never_show_the_token(api, member, caplog):
    caplog.set_level(logging.DEBUG)
    made = api.post("/api/v1/storefronts/", {"shop_domain": "my-shop.myshopify.com", "access_token": TOKEN, "api_base_url": "http://127.0.0.1:9/admin/api/2025-01"}, format="json")
    assert made.status_code == 201, made.content
    listed = api.get("/api/v1/storefronts/")
    one = api.get(f"/api/v1/storefronts/{made.json()['id']}/")
    for response in (made, listed, one):
        assert TOKEN not in response.content.decode()
    assert one.json()["has_credentials"] is True
    assert api.delete(f"/api/v1/storefronts/{made.json()['id']}/").status_code == 204
    row = StorefrontConnection.objects.get()
    assert (row.status, row.access_token_encrypted) == (ConnectionStatus.DISABLED, "")
    assert row.workspace == member.workspace
    assert TOKEN not in caplog.text


def test_a_bad_shop_domain_is_a_400_in_words(api):
    response = api.post("/api/v1/storefronts/", {"shop_domain": "evil.com", "access_token": TOKEN}, format="json")
    assert response.status_code == 400
    assert "myshopify.com" in response.content.decode()
    assert not StorefrontConnection.objects.exists()


def test_another_workspace_cannot_see_the_connection(api):
    other = MembershipFactory()
    api.post("/api/v1/storefronts/", {"shop_domain": "my-shop.myshopify.com", "access_token": TOKEN}, format="json")
    stranger = APIClient()
    stranger.force_authenticate(other.user)
    assert stranger.get("/api/v1/storefronts/").json()["results"] == []
    assert stranger.get(f"/api/v1/storefronts/{StorefrontConnection.objects.get().pk}/").status_code == 404
