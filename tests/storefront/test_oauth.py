"""Connecting a shop with OAuth through the Storefronts page, against the running fake shop:
the good flow, and every refusal (bad state, bad HMAC, bad shop, a spent code) storing nothing.
The token appears in no response body and no log record."""
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from django.test import Client

from catalog.models import Role
from fakeshop.testing import running_fake_shop
from storefront.models import ConnectionMethod, StorefrontConnection
from storefront.signatures import oauth_query_hmac
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(settings):
    with running_fake_shop(demo_products=1, seed=1) as fake:
        settings.VITRINE_STOREFRONT_SHOP_URL = fake.url
        settings.VITRINE_STOREFRONT_CLIENT_ID = fake.client_id
        settings.VITRINE_STOREFRONT_CLIENT_SECRET = fake.client_secret
        yield fake


@pytest.fixture
def manager():
    return MembershipFactory(role=Role.BRAND_MANAGER)


@pytest.fixture
def browser(manager):
    client = Client()
    client.force_login(manager.user)
    return client


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def _nowhere_in_logs(caplog, secret: str) -> bool:
    # `extra` fields are attributes of the record, not part of its message: look at all of them.
    return all(secret not in repr(vars(record)) and secret not in record.getMessage() for record in caplog.records)


def _start(browser, shop_domain="demo-shop.myshopify.com"):
    response = browser.post("/storefronts/oauth/", {"oauth-shop_domain": shop_domain})
    assert response.status_code == 302, response.content.decode()
    return response


def _shop_answers(authorize_url: str) -> dict:
    """The person approves in the shop's admin: the fake redirects back with the signed query."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/storefronts/oauth/callback/"
    return dict(parse_qsl(location.query))


def _signed(query: dict, secret: str) -> dict:
    return {**query, "hmac": oauth_query_hmac(query, secret=secret)}


def test_the_authorize_redirect_carries_client_id_scopes_callback_and_a_random_state(browser, shop, settings):
    first = urlsplit(_start(browser)["Location"])
    first_state = browser.session["storefront_oauth"]["state"]
    second = urlsplit(_start(browser)["Location"])

    params = dict(parse_qsl(first.query))
    assert f"{first.scheme}://{first.netloc}{first.path}" == f"{shop.url}/admin/oauth/authorize"
    assert params == {
        "client_id": shop.client_id,
        "scope": settings.VITRINE_STOREFRONT_SCOPES,
        "redirect_uri": "http://testserver/storefronts/oauth/callback/",
        "state": first_state,
    }
    assert len(first_state) >= 32
    assert dict(parse_qsl(second.query))["state"] != first_state


def test_the_good_flow_connects_the_shop_and_never_shows_or_logs_the_token(browser, manager, shop, logs):
    query = _shop_answers(_start(browser)["Location"])

    done = browser.get("/storefronts/oauth/callback/", query)
    page = browser.get("/storefronts/")
    api = browser.get("/api/v1/storefronts/")

    assert (done.status_code, done["Location"]) == (302, "/storefronts/")
    connection = StorefrontConnection.objects.get()
    assert (connection.workspace, connection.shop_domain, connection.method) == (manager.workspace, "demo-shop.myshopify.com", ConnectionMethod.OAUTH)
    assert connection.access_token() == shop.token
    assert connection.api_base_url.startswith(f"{shop.url}/admin/api/")
    assert connection.scopes == "read_products,write_products"
    assert shop.token not in connection.access_token_encrypted
    assert "demo-shop.myshopify.com is connected through OAuth" in page.content.decode()
    for response in (done, page, api):
        assert shop.token not in response.content.decode()
    assert _nowhere_in_logs(logs, shop.token)
    assert "storefront_oauth" not in browser.session  # the state is spent


def test_a_callback_with_another_state_is_refused_and_stores_nothing(browser, shop):
    query = _shop_answers(_start(browser)["Location"])
    forged = _signed({**{k: v for k, v in query.items() if k != "hmac"}, "state": "someone-elses-state"}, shop.client_secret)

    refused = browser.get("/storefronts/oauth/callback/", forged)

    assert refused.status_code == 400
    assert "does not belong to a connection you started here" in refused.content.decode()
    assert not StorefrontConnection.objects.exists()
    # The real code was never spent: nothing was exchanged for a refused callback.
    assert requests.post(f"{shop.url}/admin/oauth/access_token", json={"client_id": shop.client_id, "client_secret": shop.client_secret, "code": query["code"]}, timeout=5).status_code == 200


def test_a_callback_without_a_started_flow_is_refused(browser, shop):
    query = _shop_answers(f"{shop.url}/admin/oauth/authorize?" + urlencode({
        "client_id": shop.client_id, "scope": "read_products", "redirect_uri": "http://testserver/storefronts/oauth/callback/", "state": "guess",
    }))

    refused = browser.get("/storefronts/oauth/callback/", query)

    assert refused.status_code == 400
    assert "does not belong to a connection you started here" in refused.content.decode()
    assert not StorefrontConnection.objects.exists()


def test_a_callback_whose_hmac_does_not_match_is_refused_and_stores_nothing(browser, shop, logs):
    query = _shop_answers(_start(browser)["Location"])
    tampered = {**query, "timestamp": str(int(query["timestamp"]) + 1)}  # the hmac no longer covers it

    refused = browser.get("/storefronts/oauth/callback/", tampered)

    assert refused.status_code == 400
    assert "its HMAC does not match" in refused.content.decode()
    assert not StorefrontConnection.objects.exists()
    assert [r.getMessage() for r in logs.records if r.name == "storefront.oauth"] == ["storefront.oauth.bad_hmac"]


def test_a_callback_signed_with_another_secret_is_refused(browser, shop):
    query = _shop_answers(_start(browser)["Location"])
    other = _signed({k: v for k, v in query.items() if k != "hmac"}, "not-the-app-secret")

    refused = browser.get("/storefronts/oauth/callback/", other)

    assert refused.status_code == 400
    assert "its HMAC does not match" in refused.content.decode()
    assert not StorefrontConnection.objects.exists()


@pytest.mark.parametrize("bad_shop", ["evil.example.com", "demo-shop.myshopify.com.evil.example", "-demo.myshopify.com", ""])
def test_a_callback_from_a_shop_outside_the_pattern_is_refused(browser, shop, bad_shop):
    query = _shop_answers(_start(browser)["Location"])
    # Signed correctly, so only the shop check stands between it and a connection.
    bad = _signed({**{k: v for k, v in query.items() if k != "hmac"}, "shop": bad_shop}, shop.client_secret)

    refused = browser.get("/storefronts/oauth/callback/", bad)

    assert refused.status_code == 400
    assert "not a valid shop domain" in refused.content.decode()
    assert not StorefrontConnection.objects.exists()


def test_a_callback_from_another_shop_than_the_one_asked_for_is_refused(browser, shop):
    query = _shop_answers(_start(browser)["Location"])
    other = _signed({**{k: v for k, v in query.items() if k != "hmac"}, "shop": "other-shop.myshopify.com"}, shop.client_secret)

    refused = browser.get("/storefronts/oauth/callback/", other)

    assert refused.status_code == 400
    assert "not from demo-shop.myshopify.com" in refused.content.decode()
    assert not StorefrontConnection.objects.exists()


def test_a_replayed_callback_is_refused_once_the_state_is_spent(browser, shop):
    query = _shop_answers(_start(browser)["Location"])
    assert browser.get("/storefronts/oauth/callback/", query).status_code == 302
    StorefrontConnection.objects.all().delete()

    replay = browser.get("/storefronts/oauth/callback/", query)

    assert replay.status_code == 400
    assert not StorefrontConnection.objects.exists()


def test_a_code_the_shop_no_longer_accepts_is_refused_in_words(browser, shop):
    query = _shop_answers(_start(browser)["Location"])
    spent = requests.post(f"{shop.url}/admin/oauth/access_token", json={"client_id": shop.client_id, "client_secret": shop.client_secret, "code": query["code"]}, timeout=5)
    assert spent.status_code == 200

    refused = browser.get("/storefronts/oauth/callback/", query)

    assert refused.status_code == 400
    assert "did not accept the authorization" in refused.content.decode()
    assert not StorefrontConnection.objects.exists()


@pytest.mark.parametrize("shop_domain", ["my shop", "shop.example.com", "UPPER_case.myshopify.com"])
def test_starting_with_a_bad_shop_domain_says_what_a_domain_looks_like(browser, shop, shop_domain):
    refused = browser.post("/storefronts/oauth/", {"oauth-shop_domain": shop_domain})

    assert refused.status_code == 400
    assert "A shop domain looks like your-shop.myshopify.com" in refused.content.decode()
    assert "storefront_oauth" not in browser.session


def test_oauth_without_client_credentials_in_settings_says_so(browser, settings):
    settings.VITRINE_STOREFRONT_CLIENT_ID = ""
    settings.VITRINE_STOREFRONT_CLIENT_SECRET = ""

    page = browser.get("/storefronts/")
    refused = browser.post("/storefronts/oauth/", {"oauth-shop_domain": "demo-shop.myshopify.com"})

    assert "Connect with OAuth" not in page.content.decode()
    assert refused.status_code == 400
    assert "OAuth is not set up on this Vitrine" in refused.content.decode()


def test_a_merchant_cannot_start_or_finish_oauth(shop):
    merchant = MembershipFactory(role=Role.MERCHANT)
    client = Client()
    client.force_login(merchant.user)

    started = client.post("/storefronts/oauth/", {"oauth-shop_domain": "demo-shop.myshopify.com"})
    finished = client.get("/storefronts/oauth/callback/", {"shop": "demo-shop.myshopify.com", "state": "x", "code": "y", "hmac": "z"})

    assert (started.status_code, finished.status_code) == (403, 403)
    assert "brand manager or an owner" in started.content.decode()
    assert not StorefrontConnection.objects.exists()
