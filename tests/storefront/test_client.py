"""The client against a scripted loopback server: each request takes the next scripted answer."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storefront.client import AdminClient, StorefrontAmbiguous, StorefrontRefused, StorefrontUnavailable


class Script:
    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []


@pytest.fixture
def shop():
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.requests.append((self.command, self.path, dict(self.headers), body))
            status, headers, payload, delay = script.answers.pop(0)
            if delay:
                time.sleep(delay)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}/admin/api/2025-01"
    yield script
    server.shutdown()
    server.server_close()


def client(shop, sleeps, **kwargs):
    return AdminClient(base_url=shop.url, access_token="shpat_secret", timeout=kwargs.pop("timeout", 2.0), sleep=sleeps.append, **kwargs)


def test_rest_sends_the_token_and_follows_the_link(shop):
    nxt = f"{shop.url}/products.json?page_info=abc&limit=2"
    shop.answers = [(200, {"Link": f'<{nxt}>; rel="next"', "X-Shopify-Shop-Api-Call-Limit": "1/40"}, {"products": [{"id": 1}]}, 0)]
    sleeps = []
    response = client(shop, sleeps).rest("GET", "products.json", params={"limit": 2})
    assert response.body == {"products": [{"id": 1}]}
    assert response.links["next"] == nxt
    assert shop.requests[0][2]["X-Shopify-Access-Token"] == "shpat_secret"
    assert sleeps == []


def test_rest_paces_itself_near_the_call_limit(shop):
    shop.answers = [(200, {"X-Shopify-Shop-Api-Call-Limit": "39/40"}, {}, 0), (200, {"X-Shopify-Shop-Api-Call-Limit": "10/40"}, {}, 0)]
    sleeps = []
    c = client(shop, sleeps)
    c.rest("GET", "products.json")
    c.rest("GET", "products.json")
    assert sleeps == [1.0]  # 39 used, headroom 2 → two requests must leak at 2/s


def test_429_honours_retry_after(shop):
    shop.answers = [(429, {"Retry-After": "2.0"}, {"errors": "Exceeded 2 calls per second"}, 0), (200, {}, {"ok": 1}, 0)]
    sleeps = []
    assert client(shop, sleeps).rest("GET", "products.json").body == {"ok": 1}
    assert sleeps == [2.0]


def test_5xx_on_a_read_backs_off_exponentially_and_gives_up(shop):
    shop.answers = [(503, {}, {}, 0)] * 4
    sleeps = []
    with pytest.raises(StorefrontUnavailable):
        client(shop, sleeps, max_attempts=4).rest("GET", "products.json")
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(shop.requests) == 4


def test_a_write_that_times_out_is_ambiguous_and_not_resent(shop):
    shop.answers = [(200, {}, {"image": {"id": 5}}, 1.0)]
    with pytest.raises(StorefrontAmbiguous):
        client(shop, [], timeout=0.3).rest("POST", "products/1/images.json", json={"image": {}})
    time.sleep(0.8)
    assert len(shop.requests) == 1


@pytest.mark.parametrize("status,words", [(401, "Reconnect the storefront"), (403, "lacks a permission"), (404, "no such item")])
def test_terminal_4xx_is_raised_at_once_in_words(shop, status, words):
    shop.answers = [(status, {}, {"errors": "x"}, 0)]
    with pytest.raises(StorefrontRefused, match=words):
        client(shop, []).rest("GET", "products/1.json")
    assert len(shop.requests) == 1


def test_422_names_the_fields(shop):
    shop.answers = [(422, {}, {"errors": {"image": ["is too large"]}}, 0)]
    with pytest.raises(StorefrontRefused) as info:
        client(shop, []).rest("POST", "products/1/images.json", json={})
    assert "image is too large" in info.value.message
    assert "shpat_secret" not in info.value.message


def _cost(available, requested=50, restore=50.0):
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": requested, "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": available, "restoreRate": restore}}}


@pytest.mark.parametrize("status", [200, 429])
def test_graphql_throttled_is_waited_out_under_200_and_429(shop, status):
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}], "extensions": _cost(0, requested=100)}
    shop.answers = [(status, {}, throttled, 0), (200, {}, {"data": {"shop": {"name": "x"}}, "extensions": _cost(900)}, 0)]
    sleeps = []
    assert client(shop, sleeps).graphql("{ shop { name } }") == {"shop": {"name": "x"}}
    assert sleeps == [2.0]  # 100 points missing at 50/s


def test_graphql_paces_before_the_bucket_runs_dry(shop):
    shop.answers = [(200, {}, {"data": {}, "extensions": _cost(25, requested=50)}, 0), (200, {}, {"data": {}, "extensions": _cost(900)}, 0)]
    sleeps = []
    c = client(shop, sleeps)
    c.graphql("{ a }")
    c.graphql("{ a }")
    assert sleeps == [0.5]


def test_graphql_errors_are_terminal(shop):
    shop.answers = [(200, {}, {"errors": [{"message": "Field 'nope' doesn't exist"}]}, 0)]
    with pytest.raises(StorefrontRefused, match="nope"):
        client(shop, []).graphql("{ nope }")
