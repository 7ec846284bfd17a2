import pytest

from storefront.signatures import oauth_query_hmac, oauth_query_valid, shop_domain_valid, webhook_hmac, webhook_valid

VECTOR = {"code": "a94a110d86d2452eb3e2af4cfb8a3828", "shop": "some-shop.myshopify.com", "timestamp": "1337178173"}
VECTOR_HMAC = "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"


def test_the_oauth_test_vector():
    assert oauth_query_hmac(VECTOR, secret="hush") == VECTOR_HMAC
    assert oauth_query_valid({**VECTOR, "hmac": VECTOR_HMAC}, secret="hush")


@pytest.mark.parametrize(
    "query,secret",
    [
        ({**VECTOR, "hmac": VECTOR_HMAC}, "wrong"),
        ({**VECTOR, "timestamp": "1337178174", "hmac": VECTOR_HMAC}, "hush"),
        (VECTOR, "hush"),
        ({**VECTOR, "hmac": VECTOR_HMAC}, ""),
    ],
)
def test_a_changed_query_or_secret_fails(query, secret):
    assert not oauth_query_valid(query, secret=secret)


@pytest.mark.parametrize("shop,ok", [("some-shop.myshopify.com", True), ("a1.myshopify.com", True), ("-x.myshopify.com", False), ("evil.com", False), ("x.myshopify.com.evil.com", False), ("Shop.myshopify.com", False), ("a.myshopify.com", False)])
def test_shop_pattern(shop, ok):
    assert shop_domain_valid(shop) is ok


def test_webhook_hmac_accepts_current_and_previous_secret_only():
    body = b'{"id": 1}'
    assert webhook_valid(body, webhook_hmac(body, secret="new"), secrets=["new", "old"])
    assert webhook_valid(body, webhook_hmac(body, secret="old"), secrets=["new", "old"])
    assert not webhook_valid(body, webhook_hmac(body, secret="older"), secrets=["new", "old"])
    assert not webhook_valid(body + b" ", webhook_hmac(body, secret="new"), secrets=["new"])
    assert not webhook_valid(body, "", secrets=["new"])
