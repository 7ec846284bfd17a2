"""OAuth, the control API for tests, the CDN and the HTML page."""

import hmac
import html
import json
import re
import secrets
import time
import urllib.parse

from fakeshop.server import oauth_hmac

_CONTROL_PRODUCT = re.compile(r"^/_fake/products/(\d+)$")


def oauth(shop, h, path, query, body):
    if path == "/admin/oauth/authorize" and h.command == "GET":
        redirect_uri, state = query.get("redirect_uri"), query.get("state")
        if query.get("client_id") != shop.client_id or not redirect_uri:
            return h.send(400, {"errors": "Invalid client_id or redirect_uri"})
        code = secrets.token_hex(16)
        with shop.lock:
            shop.codes[code] = {"used": False, "scope": query.get("scope") or shop.scope}
        params = {"code": code, "shop": shop.shop, "state": state or "", "timestamp": str(int(time.time()))}
        params["hmac"] = oauth_hmac(shop.client_secret, params)
        sep = "&" if "?" in redirect_uri else "?"
        return h.send(302, raw=b"", content_type="text/plain",
                      headers={"Location": redirect_uri + sep + urllib.parse.urlencode(params)})
    if path == "/admin/oauth/access_token" and h.command == "POST":
        if "json" in (h.headers.get("Content-Type") or ""):
            try:
                form = json.loads(body or b"{}")
            except ValueError:
                form = {}
        else:
            form = dict(urllib.parse.parse_qsl(body.decode()))
        with shop.lock:
            entry = shop.codes.get(form.get("code") or "")
            ok = (entry is not None and not entry["used"] and form.get("client_id") == shop.client_id
                  and hmac.compare_digest(str(form.get("client_secret") or ""), shop.client_secret))
            if not ok:
                return h.send(400, {"error": "invalid_request",
                                    "error_description": "The authorization code was not found or was already used"})
            entry["used"] = True
        return h.send(200, {"access_token": shop.token, "scope": entry["scope"]})
    return h.send(404, {"errors": "Not Found"})


def control(shop, h, path, body):
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return h.send(400, {"error": "body must be JSON"})
    if path == "/_fake/state" and h.command == "GET":
        return h.send(200, shop.state())
    if path == "/_fake/credentials" and h.command == "GET":
        # Demo equipment on loopback: `make run` reads these to connect the demo workspace.
        return h.send(200, {"shop": shop.shop, "url": shop.url, "admin_url": shop.admin_url, "token": shop.token,
                            "client_id": shop.client_id, "client_secret": shop.client_secret})
    if h.command != "POST":
        return h.send(405, {"error": "POST"})
    try:
        if path == "/_fake/config":
            return h.send(200, shop.configure(**payload))
        if path == "/_fake/reset":
            shop.reset(demo_products=int(payload.get("demo_products", 0)))
            return h.send(200, {"ok": True})
        if path == "/_fake/products":
            return h.send(200, {"ids": shop.create_products(int(payload.get("count", 1)))})
        m = _CONTROL_PRODUCT.match(path)
        if m:
            pid = int(m.group(1))
            if pid not in shop.products:
                return h.send(404, {"error": "no such product"})
            deliveries = shop.update_product(pid, **payload)
            return h.send(200, {"product": shop.rest_product(pid), "deliveries": deliveries or []})
        if path == "/_fake/webhooks":
            return h.send(200, {"deliveries": shop.send_webhook(
                payload["topic"], product_id=payload.get("product_id"), times=int(payload.get("times", 1)),
                url=payload.get("url"))})
        if path == "/_fake/webhooks/out-of-order":
            return h.send(200, {"deliveries": shop.send_out_of_order(int(payload["product_id"]), url=payload.get("url"))})
    except (KeyError, TypeError, ValueError) as exc:
        return h.send(400, {"error": str(exc)})
    return h.send(404, {"error": "unknown control endpoint"})


def cdn(shop, h, path):
    m = re.match(r"^/cdn/files/(\d+)/", path)
    with shop.lock:
        img = shop.images.get(int(m.group(1))) if m else None
        data = img["data"] if img else None
    if not data:
        return h.send(404, {"errors": "Not Found"})
    kind = {b"\x89PNG": "image/png", b"GIF8": "image/gif"}.get(data[:4], "image/jpeg")
    return h.send(200, raw=data, content_type=kind)


def index(shop, h):
    rows = []
    with shop.lock:
        for pid, product in shop.products.items():
            figures = []
            for img in shop.product_images(pid):
                figures.append(
                    f'<figure class="media" data-image-id="{img["id"]}" data-media-id="gid://shopify/MediaImage/{img["id"]}" '
                    f'data-status="{img["status"]}">'
                    + (f'<img src="{html.escape(shop.image_src(img))}" alt="{html.escape(img["alt"] or "")}" '
                       f'data-image-id="{img["id"]}" width="120">' if img["data"] else "")
                    + f'<figcaption>#{img["position"]} {html.escape(img["filename"])} · {img["status"]}</figcaption></figure>'
                )
            rows.append(
                f'<section class="product" data-product-id="{pid}"><h2>{html.escape(product["title"])}</h2>'
                f'<p>{len(product["variants"])} variants · updated {product["updated_at"]}</p>'
                f'<div class="gallery">{"".join(figures) or "<p>No media.</p>"}</div></section>'
            )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Fake shop: "
        f"{html.escape(shop.shop)}</title><style>body{{font-family:sans-serif;margin:2rem}}"
        ".gallery{display:flex;gap:1rem;flex-wrap:wrap}figure{margin:0;font-size:.8rem}</style></head>"
        f"<body><h1>{html.escape(shop.shop)}</h1><p>{len(shop.products)} products (fake storefront for tests and demos)</p>"
        + "".join(rows) + "</body></html>"
    )
    return h.send(200, raw=page.encode(), content_type="text/html; charset=utf-8")
