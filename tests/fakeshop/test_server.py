import base64
import io
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from PIL import Image

from fakeshop import oauth_hmac, webhook_hmac
from fakeshop.testing import running_fake_shop


def png(w=8, h=8, fmt="PNG"):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 10, 10)).save(buf, fmt)
    return buf.getvalue()


def api(shop, method, path, **kw):
    headers = kw.pop("headers", {"X-Shopify-Access-Token": shop.token})
    return requests.request(method, f"{shop.admin_url}/{path}", headers=headers, timeout=10, **kw)


def gql(shop, query, variables=None):
    return api(shop, "POST", "graphql.json", json={"query": query, "variables": variables or {}})


def test_oauth_hmac_test_vector():
    params = dict(urllib.parse.parse_qsl("code=a94a110d86d2452eb3e2af4cfb8a3828&shop=some-shop.myshopify.com&timestamp=1337178173"))
    assert oauth_hmac("hush", params) == "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"


def test_bad_token_is_401_with_shopify_body(fake_shop):
    r = api(fake_shop, "GET", "products.json", headers={"X-Shopify-Access-Token": "nope"})
    assert r.status_code == 401
    assert r.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def test_products_link_pagination_and_filters():
    with running_fake_shop(demo_products=7) as shop:
        r = api(shop, "GET", "products.json", params={"limit": 3})
        assert r.headers["X-Shopify-Shop-Api-Call-Limit"] == "1/40"
        assert r.headers["X-Shopify-API-Version"] == "2024-10"
        seen = [p["id"] for p in r.json()["products"]]
        assert 'rel="previous"' not in r.headers["Link"]
        while "next" in r.links:
            r = requests.get(r.links["next"]["url"], headers={"X-Shopify-Access-Token": shop.token}, timeout=10)
            seen += [p["id"] for p in r.json()["products"]]
        assert seen == sorted(shop.products) and len(seen) == 7
        assert "previous" in r.links and "next" not in r.links
        page_info = urllib.parse.parse_qs(urllib.parse.urlsplit(r.links["previous"]["url"]).query)["page_info"][0]
        bad = api(shop, "GET", "products.json", params={"page_info": page_info, "updated_at_min": "2020-01-01T00:00:00Z"})
        assert bad.status_code == 400
        assert api(shop, "GET", "products.json", params={"limit": 251}).status_code == 400
        one = api(shop, "GET", "products.json", params={"fields": "id,title", "limit": 250})
        assert "Link" not in one.headers and set(one.json()["products"][0]) == {"id", "title"}


def test_images_create_insert_list_delete_and_validation(fake_shop):
    pid = next(iter(fake_shop.products))
    vid = fake_shop.products[pid]["variants"][0]["id"]

    def create(**image):
        return api(fake_shop, "POST", f"products/{pid}/images.json", json={"image": image})

    a = create(attachment=base64.b64encode(png()).decode(), filename="a.png", alt="A")
    assert a.status_code == 200 and a.json()["image"]["position"] == 1
    b = create(attachment=base64.b64encode(png(fmt="JPEG")).decode(), filename="b.jpg", alt="B", position=1,
               variant_ids=[vid])
    img_b = b.json()["image"]
    assert img_b["position"] == 1 and img_b["variant_ids"] == [vid] and img_b["width"] == 8
    listed = api(fake_shop, "GET", f"products/{pid}/images.json").json()["images"]
    assert [i["alt"] for i in listed] == ["B", "A"]
    assert requests.get(img_b["src"], timeout=5).content[:2] == b"\xff\xd8"
    assert create(attachment="!!notbase64", filename="x.png").status_code == 422
    bmp = io.BytesIO()
    Image.new("RGB", (4, 4)).save(bmp, "BMP")
    r = create(attachment=base64.b64encode(bmp.getvalue()).decode(), filename="x.bmp")
    assert r.status_code == 422 and "errors" in r.json()
    r = create(attachment=base64.b64encode(png(4473, 1)).decode(), filename="wide.png")
    assert r.status_code == 422
    d = api(fake_shop, "DELETE", f"products/{pid}/images/{img_b['id']}.json")
    assert d.status_code == 200 and d.json() == {}
    state = fake_shop.state()["products"][0]
    assert [(i["alt"], i["filename"], i["position"]) for i in state["images"]] == [("A", "a.png", 1)]


def test_leaky_bucket_429_and_over_limit_counter():
    with running_fake_shop(demo_products=1) as shop:
        statuses = [api(shop, "GET", "products.json").status_code for _ in range(45)]
        assert statuses.count(429) >= 3
        r = api(shop, "GET", "products.json")
        assert r.status_code == 429 and r.headers["Retry-After"] == "2.0"
        assert r.headers["X-Shopify-Shop-Api-Call-Limit"].endswith("/40")
        assert shop.state()["counters"]["over_limit"] == statuses.count(429) + 1
        time.sleep(1.1)
        assert api(shop, "GET", "products.json").status_code == 200


def test_injected_failures_are_seeded_and_timeout_after_applies_the_write():
    runs = []
    for _ in range(2):
        with running_fake_shop(demo_products=1, seed=42, rate_5xx=0.5, bucket_size=1000) as shop:
            runs.append([api(shop, "GET", "products.json").status_code for _ in range(12)])
    assert runs[0] == runs[1] and any(s >= 500 for s in runs[0]) and 200 in runs[0]
    with running_fake_shop(demo_products=1, rate_timeout_after=1.0, timeout_sleep=1.5) as shop:
        pid = next(iter(shop.products))
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(f"{shop.admin_url}/products/{pid}/images.json", timeout=0.5,
                          headers={"X-Shopify-Access-Token": shop.token},
                          json={"image": {"attachment": base64.b64encode(png()).decode(), "filename": "t.png"}})
        assert len(shop.state()["products"][0]["images"]) == 1
        assert shop.state()["counters"]["injected_timeout_after"] == 1
    with running_fake_shop(demo_products=1, rate_timeout_before=1.0, timeout_sleep=1.0) as shop:
        pid = next(iter(shop.products))
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(f"{shop.admin_url}/products/{pid}/images.json", timeout=0.3,
                          headers={"X-Shopify-Access-Token": shop.token},
                          json={"image": {"attachment": base64.b64encode(png()).decode(), "filename": "t.png"}})
        time.sleep(1.0)
        assert shop.state()["products"][0]["images"] == []


def test_control_api_config_reset_and_bulk_create(fake_shop):
    assert requests.post(f"{fake_shop.url}/_fake/config", json={"rate_429": 0.25}, timeout=5).json()["rate_429"] == 0.25
    assert requests.post(f"{fake_shop.url}/_fake/config", json={"nope": 1}, timeout=5).status_code == 400
    ids = requests.post(f"{fake_shop.url}/_fake/products", json={"count": 1000}, timeout=30).json()["ids"]
    assert len(ids) == 1000 and len(fake_shop.products) == 1003
    requests.post(f"{fake_shop.url}/_fake/reset", json={}, timeout=5)
    state = requests.get(f"{fake_shop.url}/_fake/state", timeout=5).json()
    assert state["products"] == [] and state["counters"]["over_limit"] == 0


PRODUCTS = """query Products($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id title handle updatedAt variants(first: 100) { nodes { id sku } } media(first: 50) { nodes { id } } }
  }
}"""


def test_graphql_products_pagination_updated_at_and_cost():
    with running_fake_shop(demo_products=5) as shop:
        body = gql(shop, PRODUCTS, {"first": 2}).json()
        assert body["extensions"]["cost"]["requestedQueryCost"] == 4
        assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 1000
        ids, after = [], None
        while True:
            conn = gql(shop, PRODUCTS, {"first": 2, "after": after}).json()["data"]["products"]
            ids += [n["id"] for n in conn["nodes"]]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        assert ids == [f"gid://shopify/Product/{i}" for i in sorted(shop.products)]
        target = sorted(shop.products)[2]
        stamp = shop.products[target]["updated_at"]
        shop.update_product(target, title="Changed")
        conn = gql(shop, PRODUCTS, {"first": 10, "query": f"updated_at:>'{stamp}'"}).json()["data"]["products"]
        assert [n["title"] for n in conn["nodes"]] == ["Changed"]


def test_graphql_throttled_when_cost_exceeds_available():
    with running_fake_shop(demo_products=1, gql_max=300, gql_restore=1) as shop:
        assert "data" in gql(shop, PRODUCTS, {"first": 250}).json()
        body = gql(shop, PRODUCTS, {"first": 250}).json()
        assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert shop.state()["counters"]["graphql_throttled"] == 1


STAGE = """mutation stage($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) { stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } }
}"""
ATTACH = """mutation attach($product: ProductUpdateInput!, $media: [CreateMediaInput!]) {
  productUpdate(product: $product, media: $media) { product { id media(first: 10) { nodes { id alt status } } } userErrors { field message } }
}"""
NODE = """query($id: ID!) { node(id: $id) { ... on MediaImage { id status mediaErrors { message } image { url } } } }"""


def staged_upload(shop, data, filename="hero.png"):
    target = gql(shop, STAGE, {"input": [{"filename": filename, "mimeType": "image/png", "resource": "IMAGE",
                                          "httpMethod": "POST"}]}).json()["data"]["stagedUploadsCreate"]["stagedTargets"][0]
    fields = {p["name"]: (None, p["value"]) for p in target["parameters"]}
    fields["file"] = (filename, data, "image/png")
    r = requests.post(target["url"], files=fields, timeout=10)
    assert r.status_code == 201
    return target["resourceUrl"]


def test_staged_upload_attach_poll_ready_delete(fake_shop):
    pid = next(iter(fake_shop.products))
    source = staged_upload(fake_shop, png())
    out = gql(fake_shop, ATTACH, {"product": {"id": f"gid://shopify/Product/{pid}"},
                                  "media": [{"originalSource": source, "alt": "vitrine:abc", "mediaContentType": "IMAGE"}]})
    media = out.json()["data"]["productUpdate"]["product"]["media"]["nodes"]
    assert [(m["alt"], m["status"]) for m in media] == [("vitrine:abc", "UPLOADED")]
    statuses = [gql(fake_shop, NODE, {"id": media[0]["id"]}).json()["data"]["node"]["status"] for _ in range(3)]
    assert statuses == ["PROCESSING", "READY", "READY"]
    bad_source = staged_upload(fake_shop, b"not an image", "bad.png")
    created = gql(fake_shop, """mutation($pid: ID!, $m: [CreateMediaInput!]!) {
      productCreateMedia(productId: $pid, media: $m) { media { id status } mediaUserErrors { message } } }""",
                  {"pid": f"gid://shopify/Product/{pid}", "m": [{"originalSource": bad_source, "mediaContentType": "IMAGE"}]})
    bad_id = created.json()["data"]["productCreateMedia"]["media"][0]["id"]
    final = [gql(fake_shop, NODE, {"id": bad_id}).json()["data"]["node"] for _ in range(2)][-1]
    assert final["status"] == "FAILED" and final["mediaErrors"]
    deleted = gql(fake_shop, 'mutation { productDeleteMedia(productId: "gid://shopify/Product/%d", mediaIds: ["%s"]) '
                             '{ deletedMediaIds userErrors { message } } }' % (pid, bad_id)).json()
    assert deleted["data"]["productDeleteMedia"]["deletedMediaIds"] == [bad_id]
    assert "vitrine:abc" in requests.get(fake_shop.url + "/", timeout=5).text


def test_staged_upload_requires_file_last(fake_shop):
    r = requests.post(f"{fake_shop.url}/staged/upload", files=[("file", ("a.png", png())), ("key", (None, "x"))], timeout=5)
    assert r.status_code == 400


def test_oauth_flow_code_single_use(fake_shop):
    r = requests.get(f"{fake_shop.url}/admin/oauth/authorize", allow_redirects=False, timeout=5,
                     params={"client_id": fake_shop.client_id, "scope": "write_products",
                             "redirect_uri": "http://127.0.0.1:1/cb", "state": "s1"})
    assert r.status_code == 302
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))
    assert q["state"] == "s1" and q["shop"] == fake_shop.shop
    assert oauth_hmac(fake_shop.client_secret, q) == q["hmac"]
    form = {"client_id": fake_shop.client_id, "client_secret": fake_shop.client_secret, "code": q["code"]}
    tok = requests.post(f"{fake_shop.url}/admin/oauth/access_token", data=form, timeout=5)
    assert tok.json() == {"access_token": fake_shop.token, "scope": "write_products"}
    assert requests.post(f"{fake_shop.url}/admin/oauth/access_token", json=form, timeout=5).status_code == 400


def test_webhooks_signed_twice_and_out_of_order(fake_shop):
    got = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        fake_shop.configure(webhook_url=f"http://127.0.0.1:{srv.server_address[1]}/hook")
        pid = next(iter(fake_shop.products))
        res = requests.post(f"{fake_shop.url}/_fake/webhooks", json={"topic": "products/update", "product_id": pid, "times": 2},
                            timeout=10).json()["deliveries"]
        assert [d["status"] for d in res] == [200, 200]
        (h1, b1), (h2, b2) = got
        assert h1["X-Shopify-Webhook-Id"] == h2["X-Shopify-Webhook-Id"] and b1 == b2
        assert h1["X-Shopify-Hmac-Sha256"] == webhook_hmac(fake_shop.client_secret, b1)
        assert h1["X-Shopify-Topic"] == "products/update" and h1["X-Shopify-Shop-Domain"] == fake_shop.shop
        for name in ("X-Shopify-API-Version", "X-Shopify-Event-Id", "X-Shopify-Triggered-At"):
            assert h1[name]
        got.clear()
        fake_shop.send_out_of_order(pid)
        first, second = (json.loads(b) for _h, b in got)
        assert first["updated_at"] > second["updated_at"] and first["title"].endswith("(newer)")
    finally:
        srv.shutdown()
        srv.server_close()


def test_state_file_survives_restart(tmp_path):
    path = str(tmp_path / "shop.json")
    with running_fake_shop(demo_products=2, state_file=path) as shop:
        pid = next(iter(shop.products))
        api(shop, "POST", f"products/{pid}/images.json",
            json={"image": {"attachment": base64.b64encode(png()).decode(), "filename": "k.png", "alt": "kept"}})
    with running_fake_shop(demo_products=5, state_file=path) as shop:
        assert len(shop.products) == 2
        assert [i["alt"] for i in shop.state()["products"][0]["images"]] == ["kept"]
    with running_fake_shop(state_file=path) as again:
        assert again.token == shop.token and again.client_secret == shop.client_secret
