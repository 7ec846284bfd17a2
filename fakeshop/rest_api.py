"""REST Admin routes, the auth gate, the call-limit bucket and injected failures."""

import base64
import binascii
import json
import math
import re
import urllib.parse

from fakeshop.server import INVALID_TOKEN, MAX_IMAGES, _parse_time, inspect_image

_VERSION = re.compile(r"^/admin/api/(\d{4}-\d{2}|unstable)/(.+)$")
_PRODUCT = re.compile(r"^products/(\d+)\.json$")
_IMAGES = re.compile(r"^products/(\d+)/images\.json$")
_IMAGE = re.compile(r"^products/(\d+)/images/(\d+)\.json$")
_FAIL_STATUS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def dispatch_admin(shop, h, path, query, body):
    m = _VERSION.match(path)
    if not m:
        return h.send(404, {"errors": "Not Found"})
    version, rest = m.groups()
    base_headers = {"X-Shopify-API-Version": version}
    if h.headers.get("X-Shopify-Access-Token") != shop.token:
        return h.send(401, {"errors": INVALID_TOKEN}, headers=base_headers)
    if rest == "graphql.json" and h.command == "POST":
        from fakeshop.graphql_api import handle_graphql

        with shop.lock:
            shop.counters["graphql_requests"] += 1
        return handle_graphql(shop, h, version, body, base_headers)
    with shop.lock:
        shop.counters["rest_requests"] += 1
    allowed, level = shop.take_rest_call()
    limit = f"{min(math.ceil(level), shop.config['bucket_size'])}/{shop.config['bucket_size']}"
    headers = dict(base_headers, **{"X-Shopify-Shop-Api-Call-Limit": limit})
    if not allowed:
        return h.send(429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."},
                      headers=dict(headers, **{"Retry-After": "2.0"}))
    failure = shop.draw_failure()
    if failure == "429":
        return h.send(429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."},
                      headers=dict(headers, **{"Retry-After": "2.0"}))
    if failure in ("5xx", "timeout_before"):
        return send_failure_before_write(shop, h, failure, headers)
    status, payload, extra = route(shop, h.command, rest, query, body, version)
    if failure == "timeout_after":
        shop.sleep(shop.config["timeout_sleep"])
    return h.send(status, payload, headers=dict(headers, **extra))


def send_failure_before_write(shop, h, failure, headers):
    """An injected 5xx, or a timeout (sleep past the client's patience, then 504): nothing applied."""
    if failure == "5xx":
        status = shop.rng.choice(sorted(_FAIL_STATUS))
        return h.send(status, {"errors": _FAIL_STATUS[status]}, headers=headers)
    shop.sleep(shop.config["timeout_sleep"])
    return h.send(504, {"errors": "Gateway Timeout"}, headers=headers)


def route(shop, method, rest, query, body, version):
    if rest == "products.json" and method == "GET":
        return list_products(shop, query, version)
    if rest == "products/count.json" and method == "GET":
        return count_products(shop, query)
    m = _PRODUCT.match(rest)
    if m and method == "GET":
        pid = int(m.group(1))
        with shop.lock:
            if pid not in shop.products:
                return 404, {"errors": "Not Found"}, {}
            return 200, {"product": _fields(shop.rest_product(pid), query.get("fields"))}, {}
    m = _IMAGES.match(rest)
    if m:
        pid = int(m.group(1))
        if pid not in shop.products:
            return 404, {"errors": "Not Found"}, {}
        if method == "GET":
            with shop.lock:
                return 200, {"images": [shop.rest_image(i) for i in shop.product_images(pid, ready_only=True)]}, {}
        if method == "POST":
            return create_image(shop, pid, body)
    m = _IMAGE.match(rest)
    if m:
        pid, iid = int(m.group(1)), int(m.group(2))
        with shop.lock:
            img = shop.images.get(iid)
            if pid not in shop.products or not img or img["product_id"] != pid:
                return 404, {"errors": "Not Found"}, {}
            if method == "GET":
                return 200, {"image": shop.rest_image(img)}, {}
            if method == "DELETE":
                shop.delete_image(iid)
                return 200, {}, {}
    return 404, {"errors": "Not Found"}, {}


def _fields(product, fields):
    if not fields:
        return product
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    return {k: v for k, v in product.items() if k in wanted}


def _cursor(payload):
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _uncursor(text):
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        return None


def list_products(shop, query, version):
    try:
        limit = int(query.get("limit", 50))
    except ValueError:
        return 400, {"errors": {"limit": ["must be an integer"]}}, {}
    if not 1 <= limit <= 250:
        return 400, {"errors": {"limit": ["must be between 1 and 250"]}}, {}
    filters = {k: v for k, v in query.items() if k not in ("limit", "fields", "page_info")}
    if "page_info" in query:
        if filters:
            return 400, {"errors": {"page_info": ["page_info cannot be combined with other parameters: "
                                                  + ", ".join(sorted(filters))]}}, {}
        cursor = _uncursor(query["page_info"])
        if not cursor:
            return 400, {"errors": {"page_info": ["Invalid value."]}}, {}
        filters, after_id, direction = cursor["f"], cursor["id"], cursor["d"]
    else:
        after_id, direction = None, "next"
    with shop.lock:
        ids = sorted(shop.products)
        if "updated_at_min" in filters:
            try:
                since = _parse_time(filters["updated_at_min"])
            except ValueError:
                return 400, {"errors": {"updated_at_min": ["Invalid value."]}}, {}
            ids = [i for i in ids if _parse_time(shop.products[i]["updated_at"]) >= since]
        if "ids" in filters:
            wanted = {int(x) for x in filters["ids"].split(",") if x.strip().isdigit()}
            ids = [i for i in ids if i in wanted]
        if after_id is None:
            page = ids[:limit]
        elif direction == "next":
            page = [i for i in ids if i > after_id][:limit]
        else:
            page = [i for i in ids if i < after_id][-limit:]
        products = [_fields(shop.rest_product(i), query.get("fields")) for i in page]
    links = []
    base = f"{shop.url}/admin/api/{version}/products.json"

    def link(first_or_last, d, rel):
        params = {"limit": limit, "page_info": _cursor({"f": filters, "id": first_or_last, "d": d})}
        if query.get("fields"):
            params["fields"] = query["fields"]
        return f'<{base}?{urllib.parse.urlencode(params)}>; rel="{rel}"'

    if page and ids and page[0] != ids[0]:
        links.append(link(page[0], "prev", "previous"))
    if page and ids and page[-1] != ids[-1]:
        links.append(link(page[-1], "next", "next"))
    return 200, {"products": products}, ({"Link": ", ".join(links)} if links else {})


def count_products(shop, query):
    """`GET products/count.json?updated_at_min=...` → `{"count": N}` (Shopify's count endpoint)."""
    with shop.lock:
        ids = sorted(shop.products)
        if "updated_at_min" in query:
            try:
                since = _parse_time(query["updated_at_min"])
            except ValueError:
                return 400, {"errors": {"updated_at_min": ["Invalid value."]}}, {}
            ids = [i for i in ids if _parse_time(shop.products[i]["updated_at"]) >= since]
        return 200, {"count": len(ids)}, {}


def create_image(shop, pid, body):
    try:
        image = json.loads(body or b"{}").get("image")
    except (ValueError, AttributeError):
        return 400, {"errors": {"image": ["Required parameter missing or invalid"]}}, {}
    if not isinstance(image, dict):
        return 400, {"errors": {"image": ["Required parameter missing or invalid"]}}, {}
    errors = {}
    data = None
    if "attachment" in image:
        try:
            data = base64.b64decode(image["attachment"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            errors["attachment"] = ["is not valid base64"]
    elif "src" in image:
        data = fetch_own_src(shop, image["src"])
        if data is None:
            errors["src"] = ["could not be downloaded"]
    else:
        errors["image"] = ["must have an attachment or src"]
    width = height = 0
    if data is not None and not errors:
        width, height, problem = inspect_image(data)
        if problem:
            errors["image"] = [problem]
    with shop.lock:
        if len(shop.product_images(pid)) >= MAX_IMAGES:
            errors["images"] = [f"Product cannot have more than {MAX_IMAGES} images"]
        if errors:
            return 422, {"errors": errors}, {}
        variant_ids = [int(v) for v in image.get("variant_ids") or []]
        known = {v["id"] for v in shop.products[pid]["variants"]}
        if set(variant_ids) - known:
            return 422, {"errors": {"variant_ids": ["do not belong to this product"]}}, {}
        filename = image.get("filename") or f"image-{shop.new_id()}.png"
        img = shop.add_image(pid, data=data, filename=filename, alt=image.get("alt"), position=image.get("position"),
                             variant_ids=variant_ids, width=width, height=height)
        return 200, {"image": shop.rest_image(img)}, {}


def fetch_own_src(shop, url):
    """Bytes behind a URL this fake serves (staged resourceUrl or CDN src); None for others."""
    if not isinstance(url, str) or not url.startswith(shop.url + "/"):
        return None
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    with shop.lock:
        if path.startswith("/staged/"):
            entry = shop.staged.get(path[len("/staged/"):])
            return entry["data"] if entry and entry.get("data") is not None else None
        m = re.match(r"^/cdn/files/(\d+)/", path)
        if m and int(m.group(1)) in shop.images:
            return shop.images[int(m.group(1))]["data"]
    return None
