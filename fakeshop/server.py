"""The fake storefront: a Shopify Admin API subset on loopback (see README.md)."""

import base64
import hashlib
import hmac
import io
import json
import os
import random
import secrets
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_PREFIX = "/admin/api/"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
MAX_IMAGES = 250
MAX_SIDE = 4472
MAX_PIXELS = 20_000_000

DEFAULT_CONFIG = {
    "seed": 0,
    "rate_429": 0.0,
    "rate_5xx": 0.0,
    "rate_timeout_before": 0.0,
    "rate_timeout_after": 0.0,
    "timeout_sleep": 3.0,
    "bucket_size": 40,
    "leak_rate": 2.0,
    "gql_max": 1000.0,
    "gql_restore": 50.0,
    "media_polls_to_ready": 2,
    "webhook_url": None,
}
COUNTERS = (
    "requests", "rest_requests", "graphql_requests", "over_limit", "graphql_throttled",
    "injected_429", "injected_5xx", "injected_timeout_before", "injected_timeout_after",
    "webhooks_sent",
)


def _now():
    return datetime.now(timezone.utc)


def _iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text):
    text = text.strip().strip("'\"")
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def oauth_hmac(secret, params):
    """Shopify's query HMAC: drop `hmac`, sort k=v pairs, join with &, hex HMAC-SHA256."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def webhook_hmac(secret, body):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def gid(kind, num):
    return f"gid://shopify/{kind}/{num}"


def gid_num(value):
    return int(str(value).rsplit("/", 1)[-1])


def inspect_image(data):
    """(width, height, error) for PNG/JPEG/GIF bytes; error is a message or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (w, h) = img.format, img.size
            img.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 0, 0, "Image is not a valid image file"
    if fmt not in ("PNG", "JPEG", "GIF"):
        return w, h, f"Image format {fmt} is not supported (PNG, JPEG or GIF)"
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        return w, h, f"Image dimensions {w}x{h} exceed {MAX_SIDE}x{MAX_SIDE} px or 20 megapixels"
    return w, h, None


class _Stopped(Exception):
    pass


class FakeShop:
    def __init__(self, *, shop="demo-shop.myshopify.com", host="127.0.0.1", port=0, token=None,
                 client_secret=None, client_id="fake-client-id", scope="read_products,write_products",
                 demo_products=0, state_file=None, **knobs):
        unknown = set(knobs) - set(DEFAULT_CONFIG)
        if unknown:
            raise TypeError(f"unknown knobs: {sorted(unknown)}")
        self.shop = shop
        self.host, self.port = host, port
        self._given_token, self._given_secret = token, client_secret
        self.token = token or "shpat_" + secrets.token_hex(16)
        self.client_secret = client_secret or "shpss_" + secrets.token_hex(16)
        self.client_id, self.scope = client_id, scope
        self.state_file = state_file
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._server = None
        self._thread = None
        self.config = dict(DEFAULT_CONFIG)
        self.config.update(knobs)
        self.rng = random.Random(self.config["seed"])
        self._reset_state()
        if state_file and os.path.exists(state_file):
            self._load(state_file)
        elif demo_products:
            self.create_products(demo_products)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self):
        self._stop.clear()
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def admin_url(self):
        return f"{self.url}/admin/api/2024-10"

    # ---- state -----------------------------------------------------------------------------
    def _reset_state(self):
        self.products = {}  # id -> product dict (REST shape minus images)
        self.images = {}  # image id -> image record
        self.staged = {}  # key -> {"data", "filename", "mime"} (None until uploaded)
        self.codes = {}  # oauth code -> used?
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._next_id = 7_000_000_000
        self.bucket_level, self.bucket_at = 0.0, time.monotonic()
        self.gql_available, self.gql_at = float(self.config["gql_max"]), time.monotonic()

    def new_id(self):
        with self.lock:
            self._next_id += 1
            return self._next_id

    def configure(self, **knobs):
        unknown = set(knobs) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}")
        with self.lock:
            self.config.update(knobs)
            if "seed" in knobs:
                self.rng = random.Random(knobs["seed"])
        return dict(self.config)

    def reset(self, demo_products=0):
        with self.lock:
            self._reset_state()
            self.rng = random.Random(self.config["seed"])
            if demo_products:
                self.create_products(demo_products)
            self._save()

    def create_products(self, count):
        with self.lock:
            created = []
            base = len(self.products)
            stamp = _now()
            for n in range(count):
                pid = self.new_id()
                number = base + n + 1
                variants = []
                for pos, size in enumerate(("S", "M"), start=1):
                    vid = self.new_id()
                    variants.append({
                        "id": vid, "product_id": pid, "title": size, "price": f"{19 + number % 7}.00",
                        "sku": f"FAKE-{number:04d}-{size}", "position": pos, "image_id": None,
                        "option1": size, "option2": None, "option3": None,
                        "inventory_quantity": 10, "admin_graphql_api_id": gid("ProductVariant", vid),
                        "created_at": _iso(stamp), "updated_at": _iso(stamp),
                    })
                self.products[pid] = {
                    "id": pid, "title": f"Demo product {number}", "body_html": f"<p>Demo product {number}.</p>",
                    "vendor": "Fake Vendor", "product_type": "Demo", "handle": f"demo-product-{number}",
                    "status": "active", "tags": "demo, fake", "created_at": _iso(stamp),
                    "updated_at": _iso(stamp), "published_at": _iso(stamp),
                    "admin_graphql_api_id": gid("Product", pid), "variants": variants,
                    "options": [{"id": self.new_id(), "product_id": pid, "name": "Size", "position": 1, "values": ["S", "M"]}],
                }
                created.append(pid)
            self._save()
            return created

    def update_product(self, pid, *, title=None, send_webhook=False, **fields):
        with self.lock:
            product = self.products[pid]
            if title is not None:
                product["title"] = title
            product.update({k: v for k, v in fields.items() if k in ("body_html", "vendor", "product_type", "tags", "status")})
            self._touch(product)
            self._save()
        if send_webhook:
            return self.send_webhook("products/update", product_id=pid)
        return None

    def _touch(self, product):
        # Strictly increasing per product so "newer" is well defined even within one second.
        prev = _parse_time(product["updated_at"])
        product["updated_at"] = _iso(max(_now(), prev + timedelta(seconds=1)))

    def product_images(self, pid, ready_only=False):
        imgs = [i for i in self.images.values() if i["product_id"] == pid]
        if ready_only:
            imgs = [i for i in imgs if i["status"] == "READY"]
        return sorted(imgs, key=lambda i: i["position"])

    def _renumber(self, pid):
        for pos, img in enumerate(self.product_images(pid), start=1):
            img["position"] = pos

    def add_image(self, pid, *, data, filename, alt, position=None, variant_ids=(), status="READY", error=None,
                  width=0, height=0):
        with self.lock:
            iid = self.new_id()
            existing = self.product_images(pid)
            stamp = _iso(_now())
            img = {
                "id": iid, "product_id": pid, "alt": alt, "filename": filename, "width": width, "height": height,
                "created_at": stamp, "updated_at": stamp, "variant_ids": list(variant_ids),
                "status": status, "error": error, "polls": 0, "data": data,
                "sha256": hashlib.sha256(data or b"").hexdigest(),
                "position": len(existing) + 1,
            }
            self.images[iid] = img
            if position is not None and 1 <= int(position) <= len(existing):
                for other in existing:
                    if other["position"] >= int(position):
                        other["position"] += 1
                img["position"] = int(position)
            self._renumber(pid)
            for vid in variant_ids:
                self._assign_variant(pid, vid, iid)
            self._touch(self.products[pid])
            self._save()
            return img

    def _assign_variant(self, pid, vid, iid):
        for v in self.products[pid]["variants"]:
            if v["id"] == int(vid):
                v["image_id"] = iid
                for img in self.images.values():
                    if img["id"] != iid and int(vid) in img["variant_ids"]:
                        img["variant_ids"].remove(int(vid))
                if int(vid) not in self.images[iid]["variant_ids"]:
                    self.images[iid]["variant_ids"].append(int(vid))
                return True
        return False

    def delete_image(self, iid):
        with self.lock:
            img = self.images.pop(iid)
            for v in self.products[img["product_id"]]["variants"]:
                if v["image_id"] == iid:
                    v["image_id"] = None
            self._renumber(img["product_id"])
            self._touch(self.products[img["product_id"]])
            self._save()
            return img

    def image_src(self, img):
        return f"{self.url}/cdn/files/{img['id']}/{urllib.parse.quote(img['filename'])}"

    def rest_image(self, img):
        return {
            "id": img["id"], "product_id": img["product_id"], "position": img["position"], "alt": img["alt"],
            "width": img["width"], "height": img["height"], "src": self.image_src(img),
            "created_at": img["created_at"], "updated_at": img["updated_at"],
            "variant_ids": list(img["variant_ids"]), "admin_graphql_api_id": gid("ProductImage", img["id"]),
        }

    def rest_product(self, pid):
        product = json.loads(json.dumps(self.products[pid]))
        images = [self.rest_image(i) for i in self.product_images(pid, ready_only=True)]
        product["images"] = images
        product["image"] = images[0] if images else None
        return product

    def state(self):
        with self.lock:
            products = []
            for pid in self.products:
                p = self.rest_product(pid)
                p["images"] = [
                    dict(self.rest_image(i), filename=i["filename"], status=i["status"], sha256=i["sha256"],
                         media_id=gid("MediaImage", i["id"]), error=i["error"])
                    for i in self.product_images(pid)
                ]
                products.append(p)
            return {"shop": self.shop, "products": products, "counters": dict(self.counters),
                    "config": dict(self.config)}

    def _save(self):
        if not self.state_file:
            return
        with self.lock:
            payload = {
                "next_id": self._next_id, "token": self.token, "client_secret": self.client_secret,
                "products": list(self.products.values()),
                "images": [dict(i, data=base64.b64encode(i["data"] or b"").decode()) for i in self.images.values()],
            }
            tmp = self.state_file + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(payload, fh)
            os.replace(tmp, self.state_file)

    def _load(self, path):
        with open(path) as fh:
            payload = json.load(fh)
        self._next_id = payload["next_id"]
        # A restarted demo keeps its credentials, so a stored connection keeps working.
        self.token = self._given_token or payload.get("token") or self.token
        self.client_secret = self._given_secret or payload.get("client_secret") or self.client_secret
        self.products = {p["id"]: p for p in payload["products"]}
        self.images = {i["id"]: dict(i, data=base64.b64decode(i["data"])) for i in payload["images"]}

    # ---- rate limits and injected failures -------------------------------------------------
    def take_rest_call(self):
        """Leak the bucket, then add this call; returns (allowed, level)."""
        with self.lock:
            now = time.monotonic()
            self.bucket_level = max(0.0, self.bucket_level - (now - self.bucket_at) * self.config["leak_rate"])
            self.bucket_at = now
            if self.bucket_level + 1 > self.config["bucket_size"]:
                self.counters["over_limit"] += 1
                return False, self.bucket_level
            self.bucket_level += 1
            return True, self.bucket_level

    def gql_take(self, cost):
        with self.lock:
            now = time.monotonic()
            self.gql_available = min(float(self.config["gql_max"]),
                                     self.gql_available + (now - self.gql_at) * self.config["gql_restore"])
            self.gql_at = now
            if cost > self.gql_available:
                self.counters["graphql_throttled"] += 1
                return False
            self.gql_available -= cost
            return True

    def gql_refund(self, amount):
        with self.lock:
            self.gql_available = min(float(self.config["gql_max"]), self.gql_available + amount)

    def draw_failure(self):
        with self.lock:
            x = self.rng.random()
            for kind in ("429", "5xx", "timeout_before", "timeout_after"):
                x -= self.config[f"rate_{kind}"]
                if x < 0:
                    self.counters[f"injected_{kind}"] += 1
                    return kind
            return None

    def sleep(self, seconds):
        if self._stop.wait(seconds):
            raise _Stopped()

    # ---- webhooks --------------------------------------------------------------------------
    def webhook_payload(self, topic, product_id=None):
        if topic == "app/uninstalled":
            return {"id": 1, "name": "Fake shop", "domain": self.shop, "myshopify_domain": self.shop}
        if topic == "products/delete":
            return {"id": product_id}
        with self.lock:
            return self.rest_product(product_id)

    def deliver(self, topic, payload, *, url=None, webhook_id=None, times=1):
        url = url or self.config["webhook_url"]
        if not url:
            raise ValueError("no webhook_url configured")
        body = json.dumps(payload).encode()
        webhook_id = webhook_id or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": webhook_hmac(self.client_secret, body),
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-API-Version": "2024-10",
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": _iso(_now()),
        }
        results = []
        for _ in range(times):
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    results.append({"status": resp.status, "webhook_id": webhook_id})
            except urllib.error.HTTPError as exc:
                results.append({"status": exc.code, "webhook_id": webhook_id})
            except OSError as exc:
                results.append({"status": None, "error": str(exc), "webhook_id": webhook_id})
            with self.lock:
                self.counters["webhooks_sent"] += 1
        return results

    def send_webhook(self, topic, *, product_id=None, times=1, url=None):
        return self.deliver(topic, self.webhook_payload(topic, product_id), url=url, times=times)

    def send_out_of_order(self, product_id, *, url=None):
        """Two successive updates of one product; the newer is delivered first."""
        with self.lock:
            self.update_product(product_id, title=self.products[product_id]["title"] + " (older)")
            older = self.webhook_payload("products/update", product_id)
            self.update_product(product_id, title=older["title"].replace(" (older)", " (newer)"))
            newer = self.webhook_payload("products/update", product_id)
        return self.deliver("products/update", newer, url=url) + self.deliver("products/update", older, url=url)


def _handler_for(shop):
    from fakeshop import graphql_api, pages, rest_api

    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeShop/1.0"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # tests and demo stay quiet
            pass

        def _body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def send(self, status, payload=None, *, headers=None, content_type="application/json", raw=None):
            data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def handle_any(self):
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
            body = self._body()
            with shop.lock:
                shop.counters["requests"] += 1
            try:
                if parsed.path.startswith(API_PREFIX):
                    return rest_api.dispatch_admin(shop, self, parsed.path, query, body)
                if parsed.path.startswith("/admin/oauth/"):
                    return pages.oauth(shop, self, parsed.path, query, body)
                if parsed.path.startswith("/_fake/"):
                    return pages.control(shop, self, parsed.path, body)
                if parsed.path.startswith("/staged/"):
                    return graphql_api.staged_upload(shop, self, parsed.path, body)
                if parsed.path.startswith("/cdn/files/"):
                    return pages.cdn(shop, self, parsed.path)
                if parsed.path == "/":
                    return pages.index(shop, self)
                return self.send(404, {"errors": "Not Found"})
            except _Stopped:
                self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    return Handler


