"""GraphQL Admin: the root fields listed in README.md, cost throttling, staged uploads."""

import base64
import json
import re
import secrets
import urllib.parse
from email.parser import BytesParser
from email.policy import HTTP

from fakeshop import gql
from fakeshop.rest_api import fetch_own_src, send_failure_before_write
from fakeshop.server import MAX_IMAGES, _parse_time, gid, gid_num, inspect_image

THROTTLED = {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}
_UPDATED = re.compile(r"updated_at:(>=|>|<=|<)\s*'?([^'\s]+)'?")
_MUTATION_COST = 10


class UserError(Exception):
    def __init__(self, field, message):
        super().__init__(message)
        self.field, self.message = field, message


def _cost(kind, fields):
    cost = 0
    for _alias, field, args in fields:
        if field == "products":
            cost += 2 + int(args.get("first") or args.get("last") or 0)
        elif kind == "mutation":
            cost += _MUTATION_COST
        else:
            cost += 1
    return max(cost, 1)


def _extensions(shop, requested, actual):
    with shop.lock:
        available = shop.gql_available
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                     "throttleStatus": {"maximumAvailable": float(shop.config["gql_max"]),
                                        "currentlyAvailable": int(available),
                                        "restoreRate": float(shop.config["gql_restore"])}}}


def handle_graphql(shop, h, version, body, headers):
    try:
        request = json.loads(body or b"{}")
        kind, fields = gql.parse_operation(request.get("query"), request.get("variables"))
    except (ValueError, AttributeError, IndexError) as exc:
        return h.send(200, {"errors": [{"message": f"Parse error: {exc}"}]}, headers=headers)
    requested = _cost(kind, fields)
    if not shop.gql_take(requested):
        return h.send(200, {"errors": [THROTTLED], "extensions": _extensions(shop, requested, None)}, headers=headers)
    failure = shop.draw_failure()
    if failure == "429":
        shop.gql_refund(requested)
        return h.send(200, {"errors": [THROTTLED], "extensions": _extensions(shop, requested, None)}, headers=headers)
    if failure in ("5xx", "timeout_before"):
        return send_failure_before_write(shop, h, failure, headers)
    data, errors = {}, []
    for alias, field, args in fields:
        resolver = RESOLVERS.get((kind, field))
        if resolver is None:
            errors.append({"message": f"Field '{field}' doesn't exist on type '{kind.capitalize() if kind == 'query' else 'Mutation'}'",
                           "extensions": {"code": "undefinedField"}})
            continue
        try:
            data[alias] = resolver(shop, args)
        except (KeyError, TypeError, ValueError) as exc:
            errors.append({"message": f"Invalid argument for {field}: {exc}", "path": [alias]})
    payload = {"data": data, "extensions": _extensions(shop, requested, requested)}
    if errors:
        payload["errors"] = errors
    if failure == "timeout_after":
        shop.sleep(shop.config["timeout_sleep"])
    return h.send(200, payload, headers=headers)


# ---- shapes ------------------------------------------------------------------------------
def _connection(nodes, cursor_of=lambda n: n["id"]):
    return {"nodes": nodes, "edges": [{"cursor": cursor_of(n), "node": n} for n in nodes],
            "pageInfo": {"hasNextPage": False, "hasPreviousPage": False,
                         "startCursor": cursor_of(nodes[0]) if nodes else None,
                         "endCursor": cursor_of(nodes[-1]) if nodes else None}}


def media_node(shop, img):
    ready = img["status"] == "READY"
    image = ({"url": shop.image_src(img), "width": img["width"], "height": img["height"], "altText": img["alt"],
              "id": gid("ProductImage", img["id"])} if ready else None)
    return {
        "__typename": "MediaImage", "id": gid("MediaImage", img["id"]), "alt": img["alt"],
        "mediaContentType": "IMAGE", "status": img["status"], "fileStatus": img["status"],
        "mediaErrors": [{"code": "UNKNOWN", "details": img["error"], "message": img["error"]}] if img["error"] else [],
        "image": image, "preview": {"status": img["status"], "image": image},
        # The uploaded file as the shop keeps it (its name in the URL), from the moment it is
        # uploaded; MediaImage has no `filename` field.
        "originalSource": {"url": shop.image_src(img), "fileSize": len(img["data"]) if img.get("data") else None},
        "product": {"id": gid("Product", img["product_id"])},
        "createdAt": img["created_at"], "updatedAt": img["updated_at"],
    }


def product_node(shop, pid):
    p = shop.products[pid]
    imgs = shop.product_images(pid)
    variants = [{"__typename": "ProductVariant", "id": v["admin_graphql_api_id"], "legacyResourceId": str(v["id"]),
                 "title": v["title"], "sku": v["sku"], "price": v["price"], "position": v["position"],
                 "image": ({"id": gid("ProductImage", v["image_id"])} if v["image_id"] else None),
                 "media": _connection([{"id": gid("MediaImage", v["image_id"])}] if v["image_id"] else [])}
                for v in p["variants"]]
    return {
        "__typename": "Product", "id": p["admin_graphql_api_id"], "legacyResourceId": str(pid), "title": p["title"],
        "handle": p["handle"], "status": p["status"].upper(), "vendor": p["vendor"], "productType": p["product_type"],
        "tags": [t.strip() for t in p["tags"].split(",") if t.strip()], "descriptionHtml": p["body_html"],
        "createdAt": p["created_at"], "updatedAt": p["updated_at"],
        "variants": _connection(variants), "media": _connection([media_node(shop, i) for i in imgs]),
        "images": _connection([media_node(shop, i)["image"] for i in imgs if i["status"] == "READY"]),
    }


# ---- queries -----------------------------------------------------------------------------
def q_products(shop, args):
    first = int(args.get("first") or 0)
    if not 1 <= first <= 250:
        raise ValueError("first must be between 1 and 250")
    with shop.lock:
        ids = sorted(shop.products)
        for op, value in _UPDATED.findall(args.get("query") or ""):
            since = _parse_time(value)
            test = {">": lambda t: t > since, ">=": lambda t: t >= since, "<": lambda t: t < since,
                    "<=": lambda t: t <= since}[op]
            ids = [i for i in ids if test(_parse_time(shop.products[i]["updated_at"]))]
        after = args.get("after")
        start = 0
        if after:
            after_id = gid_num(_decode_cursor(after))
            start = next((n for n, i in enumerate(ids) if i > after_id), len(ids))
        page = ids[start:start + first]
        nodes = [product_node(shop, i) for i in page]
    conn = _connection(nodes, cursor_of=lambda n: _encode_cursor(n["id"]))
    conn["pageInfo"]["hasNextPage"] = start + first < len(ids)
    conn["pageInfo"]["hasPreviousPage"] = start > 0
    return conn


def _encode_cursor(value):
    return base64.b64encode(json.dumps({"last_id": value}).encode()).decode()


def _decode_cursor(text):
    return json.loads(base64.b64decode(text))["last_id"]


def q_product(shop, args):
    with shop.lock:
        pid = gid_num(args["id"])
        return product_node(shop, pid) if pid in shop.products else None


def q_node(shop, args):
    node_id = args["id"]
    kind = str(node_id).split("/")[-2]
    num = gid_num(node_id)
    with shop.lock:
        if kind == "Product":
            return product_node(shop, num) if num in shop.products else None
        if kind == "MediaImage" and num in shop.images:
            img = shop.images[num]
            _advance(shop, img)
            return media_node(shop, img)
    return None


def _advance(shop, img):
    """Each poll moves media one step on; the outcome was decided when the bytes were read."""
    if img["status"] in ("READY", "FAILED"):
        return
    img["polls"] += 1
    if img["polls"] >= shop.config["media_polls_to_ready"]:
        img["status"] = "FAILED" if img["error"] else "READY"
    elif img["status"] == "UPLOADED":
        img["status"] = "PROCESSING"
    shop._save()


# ---- mutations ---------------------------------------------------------------------------
def m_staged_uploads_create(shop, args):
    targets, errors = [], []
    for n, item in enumerate(args.get("input") or []):
        filename = item.get("filename")
        if not filename or item.get("resource") not in ("IMAGE", "FILE", "PRODUCT_IMAGE"):
            errors.append({"field": ["input", str(n)], "message": "filename and resource IMAGE are required"})
            continue
        key = f"tmp/{secrets.token_hex(8)}/{filename}"
        with shop.lock:
            shop.staged[key] = {"data": None, "filename": filename, "mime": item.get("mimeType")}
        params = [{"name": "Content-Type", "value": item.get("mimeType") or "application/octet-stream"},
                  {"name": "success_action_status", "value": "201"},
                  {"name": "acl", "value": "private"},
                  {"name": "key", "value": key},
                  {"name": "policy", "value": secrets.token_urlsafe(24)}]
        targets.append({"url": f"{shop.url}/staged/upload",
                        "resourceUrl": f"{shop.url}/staged/{urllib.parse.quote(key)}", "parameters": params})
    return {"stagedTargets": targets, "userErrors": errors}


def staged_upload(shop, h, path, body):
    if path != "/staged/upload" or h.command != "POST":
        if h.command == "GET":
            data = fetch_own_src(shop, shop.url + path)
            if data is not None:
                return h.send(200, raw=data, content_type="application/octet-stream")
        return h.send(404, raw=b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")
    ctype = h.headers.get("Content-Type", "")
    if not ctype.startswith("multipart/form-data"):
        return h.send(400, raw=b"<Error><Code>InvalidArgument</Code><Message>multipart/form-data required</Message></Error>",
                      content_type="application/xml")
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    parts = [(p.get_param("name", header="content-disposition"), p) for p in msg.iter_parts()]
    names = [n for n, _ in parts]
    if not names or names[-1] != "file" or names.count("file") != 1:
        return h.send(400, raw=b"<Error><Code>InvalidArgument</Code><Message>file must be the last field</Message></Error>",
                      content_type="application/xml")
    fields = {n: p.get_payload(decode=True).decode() for n, p in parts[:-1]}
    key = fields.get("key")
    with shop.lock:
        entry = shop.staged.get(key)
        if entry is None:
            return h.send(403, raw=b"<Error><Code>AccessDenied</Code></Error>", content_type="application/xml")
        entry["data"] = parts[-1][1].get_payload(decode=True)
    return h.send(201, raw=f"<PostResponse><Key>{key}</Key></PostResponse>".encode(), content_type="application/xml")


def _create_media(shop, pid, media_inputs):
    media, errors = [], []
    if pid not in shop.products:
        raise UserError(["productId"], "Product does not exist")
    for n, item in enumerate(media_inputs or []):
        if item.get("mediaContentType", "IMAGE") != "IMAGE":
            errors.append({"field": ["media", str(n), "mediaContentType"], "message": "Only IMAGE is supported by the fake", "code": "INVALID"})
            continue
        if len(shop.product_images(pid)) >= MAX_IMAGES:
            errors.append({"field": ["media"], "message": f"Product cannot have more than {MAX_IMAGES} media", "code": "PRODUCT_MEDIA_LIMIT_EXCEEDED"})
            continue
        source = item.get("originalSource")
        data = fetch_own_src(shop, source)
        width = height = 0
        if data is None:
            error = "Image could not be downloaded from originalSource"
        else:
            width, height, error = inspect_image(data)
        filename = urllib.parse.unquote(str(source).rsplit("/", 1)[-1]) or "image"
        img = shop.add_image(pid, data=data, filename=filename, alt=item.get("alt"), status="UPLOADED",
                             error=error, width=width, height=height)
        media.append(media_node(shop, img))
    return media, errors


def m_product_create_media(shop, args):
    with shop.lock:
        try:
            media, errors = _create_media(shop, gid_num(args["productId"]), args.get("media"))
        except UserError as exc:
            return {"media": [], "mediaUserErrors": [{"field": exc.field, "message": exc.message, "code": "PRODUCT_DOES_NOT_EXIST"}],
                    "userErrors": [{"field": exc.field, "message": exc.message}], "product": None}
        return {"media": media, "mediaUserErrors": errors,
                "userErrors": [{"field": e["field"], "message": e["message"]} for e in errors],
                "product": {"id": args["productId"]}}


def m_product_update(shop, args):
    product_input = args.get("product") or args.get("input") or {}
    with shop.lock:
        pid = gid_num(product_input["id"])
        if pid not in shop.products:
            return {"product": None, "userErrors": [{"field": ["id"], "message": "Product does not exist"}]}
        for key, field in (("title", "title"), ("descriptionHtml", "body_html"), ("vendor", "vendor")):
            if key in product_input:
                shop.products[pid][field] = product_input[key]
        _media, errors = _create_media(shop, pid, args.get("media"))
        shop._touch(shop.products[pid])
        shop._save()
        return {"product": product_node(shop, pid),
                "userErrors": [{"field": e["field"], "message": e["message"]} for e in errors]}


def m_variant_append_media(shop, args):
    with shop.lock:
        pid = gid_num(args["productId"])
        if pid not in shop.products:
            return {"product": None, "productVariants": [], "userErrors": [{"field": ["productId"], "message": "Product does not exist"}]}
        done, errors = [], []
        for n, item in enumerate(args.get("variantMedia") or []):
            vid = gid_num(item["variantId"])
            for mid in item.get("mediaIds") or []:
                iid = gid_num(mid)
                if iid not in shop.images or shop.images[iid]["product_id"] != pid:
                    errors.append({"field": ["variantMedia", str(n), "mediaIds"], "message": "Media does not exist"})
                elif not shop._assign_variant(pid, vid, iid):
                    errors.append({"field": ["variantMedia", str(n), "variantId"], "message": "Variant does not exist"})
                else:
                    done.append({"id": gid("ProductVariant", vid)})
        shop._save()
        return {"product": {"id": gid("Product", pid)}, "productVariants": done, "userErrors": errors}


def _delete_media(shop, ids, pid=None):
    deleted, images, errors = [], [], []
    for n, mid in enumerate(ids or []):
        iid = gid_num(mid)
        img = shop.images.get(iid)
        if img is None or (pid is not None and img["product_id"] != pid):
            errors.append({"field": ["mediaIds", str(n)], "message": f"Media id {mid} does not exist"})
            continue
        shop.delete_image(iid)
        deleted.append(mid)
        images.append(gid("ProductImage", iid))
    return deleted, images, errors


def m_product_delete_media(shop, args):
    with shop.lock:
        pid = gid_num(args["productId"])
        deleted, images, errors = _delete_media(shop, args.get("mediaIds"), pid)
        return {"deletedMediaIds": deleted, "deletedProductImageIds": images, "product": {"id": args["productId"]},
                "mediaUserErrors": errors, "userErrors": errors}


def m_file_delete(shop, args):
    with shop.lock:
        deleted, _images, errors = _delete_media(shop, args.get("fileIds"))
        return {"deletedFileIds": deleted, "userErrors": [dict(e, field=["fileIds", e["field"][1]]) for e in errors]}


def m_file_update(shop, args):
    files, errors = [], []
    with shop.lock:
        for n, item in enumerate(args.get("files") or []):
            iid = gid_num(item["id"])
            img = shop.images.get(iid)
            if img is None:
                errors.append({"field": ["files", str(n), "id"], "message": "File does not exist", "code": "FILE_DOES_NOT_EXIST"})
                continue
            if "alt" in item:
                img["alt"] = item["alt"]
            if item.get("filename"):
                img["filename"] = item["filename"]
            files.append(media_node(shop, img))
        shop._save()
    return {"files": files, "userErrors": errors}


RESOLVERS = {
    ("query", "products"): q_products,
    ("query", "product"): q_product,
    ("query", "node"): q_node,
    ("mutation", "stagedUploadsCreate"): m_staged_uploads_create,
    ("mutation", "productCreateMedia"): m_product_create_media,
    ("mutation", "productUpdate"): m_product_update,
    ("mutation", "productVariantAppendMedia"): m_variant_append_media,
    ("mutation", "productDeleteMedia"): m_product_delete_media,
    ("mutation", "fileDelete"): m_file_delete,
    ("mutation", "fileUpdate"): m_file_update,
}
