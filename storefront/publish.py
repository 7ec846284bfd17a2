"""Publishing approved images to a shop, each exactly once.

`publish_request` checks that an image may leave (approved, pinned bytes, its product linked
to the shop, a brand manager or owner asking) and creates the one `Export` row per
(connection, asset, content sha256) under the table's unique constraint; an io-queue task then
calls `export_run`.

The shop has no idempotency key for media. So every image Vitrine places carries a marker in
its file name, `vitrine-<first 24 hex of the bytes' sha256>`, which the shop keeps in the
staged upload's key, the media's original source and its CDN URL; after any write whose
outcome is unknown (a 5xx or a timeout after the request was sent: `StorefrontAmbiguous`), and
on every later run of an export, the exporter first lists the product's media and adopts the
image carrying its marker before it uploads again. Once the shop has named the media id, the
row records it at once, and no run uploads for that row again: it only polls.

Adapters. GraphQL is the main path: `stagedUploadsCreate` → POST the bytes (parameters
first, the file last) to the staged target → `productCreateMedia` with the alt text → poll
`node(id:)` until READY or FAILED → `productVariantAppendMedia` for the SKU variants the photo
belongs to. REST product images (`POST products/{id}/images.json` with the bytes as a base64
attachment, `variant_ids` and `position`) is the fallback, taken only when GraphQL cannot do
the job at all: the GraphQL endpoint or one of its fields does not exist for this shop / API
version, or the staged upload target refuses the bytes. Throttling, 5xx and timeouts are not
reasons to switch: the paced client waits them out, and a still-failing shop is retried later
by the task. Other refusals (4xx, user errors) fail the export with the shop's words.

"Replace earlier Vitrine images" removes, once the new image is ready, the images that
earlier exports of this connection put on the same product (their rows name them); a
merchant's own image is never touched, as no export row names it."""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta

import requests
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import User
from studio import reviews
from studio.models import Asset, Review, ReviewDecision, ReviewState

from .client import AdminClient, StorefrontAmbiguous, StorefrontError, StorefrontRefused, StorefrontUnavailable
from .models import ConnectionStatus, Export, ExportStatus, StorefrontConnection, StorefrontImage, StorefrontProduct
from .sync import connection_client
from .tasks import storefront_export_task

logger = logging.getLogger(__name__)

#: Seconds waited between the client's retries and media polls; tests swap in a quick one.
sleep = time.sleep

MARKER_PREFIX = "vitrine-"
MARKER_HEX = 24
_MARKER = re.compile(rf"{MARKER_PREFIX}([0-9a-f]{{{MARKER_HEX}}})")
#: Writes of unknown outcome in a row before the run gives up (the task tries again later).
WRITE_ROUNDS = 8
#: Shopify's limits on an image (STOREFRONT.md).
MAX_SIDE = 4472
MAX_PIXELS = 20_000_000
_RUNNING = (ExportStatus.UPLOADING, ExportStatus.PROCESSING)


class PublishConflict(Exception):
    """The image cannot be published as things stand; the message says what to do."""

    def __init__(self, message: str, *, code: str = "publish_conflict"):
        super().__init__(message)
        self.message, self.code = message, code


class ExportPending(Exception):
    """The export did not finish this time for a reason that may pass (the shop throttles,
    fails or is still processing); the task runs it again later."""


class GraphQLUnsupported(StorefrontRefused):
    """The shop's GraphQL Admin API cannot do this (no endpoint, no such field): use REST."""


def marker(sha256: str) -> str:
    return f"{MARKER_PREFIX}{sha256[:MARKER_HEX]}"


def marker_in(*texts) -> str | None:
    """The content-hash prefix of the Vitrine marker found in any of the texts, else None.
    (The importer can use it to leave Vitrine's own published images out of the catalog.)"""
    for text in texts:
        found = _MARKER.search(str(text or ""))
        if found:
            return found.group(1)
    return None


# Request -----------------------------------------------------------------------------------


@dataclass
class BulkPublishResult:
    exports: list[Export] = field(default_factory=list)
    skipped: list[tuple[Asset, str]] = field(default_factory=list)


def require_publisher(*, workspace_id: int, user: User) -> None:
    if not reviews.can_decide(workspace=workspace_id, user=user):
        raise PermissionDenied("Only a brand manager or an owner of this workspace can publish images to a storefront.")


def _check_connection(connection: StorefrontConnection) -> None:
    if not connection.usable:
        raise PublishConflict(
            f"The shop {connection.shop_domain} is disconnected. Connect it again on the Storefronts page, then publish.",
            code="storefront_disconnected",
        )


def _link_for(asset: Asset, connection: StorefrontConnection) -> StorefrontProduct:
    product = asset.photo.product
    if product is None:
        raise PublishConflict(
            "This image's photo belongs to no product, so no shop product can show it. Attach the photo to a product first.",
            code="no_product",
        )
    link = StorefrontProduct.objects.filter(connection=connection, product=product).first()
    if link is None:
        raise PublishConflict(
            f"The product “{product.title}” is not a product of the shop {connection.shop_domain}. "
            "Import the shop's products on the Storefronts page (or publish to the shop it came from).",
            code="product_not_linked",
        )
    return link


def _check_asset(asset: Asset) -> None:
    if asset.review_state not in (ReviewState.APPROVED, ReviewState.PUBLISHED):
        words = ReviewState(asset.review_state).label.lower()
        raise PublishConflict(f"This image is {words}. Only approved images leave Vitrine: approve it on the Review page first.", code="not_approved")
    approval = Review.objects.filter(asset=asset, decision=ReviewDecision.APPROVED).order_by("-decided_at").first()
    if approval is None or approval.asset_sha256 != asset.sha256:
        raise PublishConflict("This image's approval does not cover its current file. Submit it for review again.", code="approval_stale")
    if asset.width > MAX_SIDE or asset.height > MAX_SIDE or asset.width * asset.height > MAX_PIXELS:
        raise PublishConflict(
            f"This image is {asset.width}×{asset.height} px; shops take at most {MAX_SIDE}×{MAX_SIDE} px and 20 megapixels. "
            "Generate it on a smaller channel (e.g. square 2048).",
            code="image_too_large",
        )


def publish_request(*, asset: Asset, connection: StorefrontConnection, user: User, replace_earlier: bool = False) -> Export:
    """Queue one approved image for the shop. The same bytes asked for again return the
    export that exists (a failed one is queued again); nothing is uploaded twice."""
    require_publisher(workspace_id=asset.workspace_id, user=user)
    return _request(asset=asset, connection=connection, user=user, replace_earlier=replace_earlier)


def _request(*, asset: Asset, connection: StorefrontConnection, user: User, replace_earlier: bool) -> Export:
    """publish_request once the caller is known to be allowed to publish."""
    if connection.workspace_id != asset.workspace_id:
        raise PublishConflict("This storefront belongs to another workspace.", code="storefront_other_workspace")
    _check_connection(connection)
    _check_asset(asset)
    link = _link_for(asset, connection)
    key = {"connection": connection, "asset": asset, "content_sha256": asset.sha256}
    defaults = {"workspace_id": asset.workspace_id, "remote_product_id": link.remote_id, "replace_earlier": replace_earlier, "created_by": user}
    try:
        with transaction.atomic():
            export, created = Export.objects.get_or_create(**key, defaults=defaults)
    except IntegrityError:  # a concurrent request made it first: that one is this one
        export, created = Export.objects.get(**key), False
    if created:
        logger.info("storefront.export.queued", extra={"export_id": export.pk, "asset_id": asset.pk, "connection_id": connection.pk})
        transaction.on_commit(lambda: storefront_export_task.delay(export.pk))
        return export
    if export.status == ExportStatus.FAILED:
        Export.objects.filter(pk=export.pk, status=ExportStatus.FAILED).update(replace_earlier=replace_earlier)
        return export_retry(export=export)
    return export


def publish_bulk(*, assets: list[Asset], connection: StorefrontConnection, user: User, replace_earlier: bool = False) -> BulkPublishResult:
    """`publish_request` for each image; one that cannot go is skipped with the reason."""
    result = BulkPublishResult()
    if assets:
        require_publisher(workspace_id=assets[0].workspace_id, user=user)
    for asset in sorted(assets, key=lambda a: a.pk):
        try:
            result.exports.append(_request(asset=asset, connection=connection, user=user, replace_earlier=replace_earlier))
        except PublishConflict as exc:
            result.skipped.append((asset, exc.message))
    return result


def export_retry(*, export: Export) -> Export:
    """Queue a failed export again. Its row keeps any remote media id, so a retry finishes
    what the shop already holds instead of uploading a second copy."""
    with transaction.atomic():
        locked = Export.objects.select_for_update().get(pk=export.pk)
        if locked.status != ExportStatus.FAILED:
            raise PublishConflict(f"This export is {ExportStatus(locked.status).label.lower()}, not failed: there is nothing to retry.", code="export_not_failed")
        _check_connection(locked.connection)
        locked.status, locked.error = ExportStatus.QUEUED, ""
        locked.save(update_fields=["status", "error", "updated_at"])
        transaction.on_commit(lambda: storefront_export_task.delay(locked.pk))
    logger.info("storefront.export.retry", extra={"export_id": locked.pk})
    return locked


# Run ---------------------------------------------------------------------------------------


@dataclass
class Placed:
    """An image as the shop holds it."""

    media_id: str
    status: str = "READY"  # UPLOADED | PROCESSING | READY | FAILED
    url: str = ""
    error: str = ""
    position: int | None = None


def _client(connection: StorefrontConnection) -> AdminClient:
    # Its waits go through this module's `sleep`, which the tests shorten.
    return connection_client(connection=connection, sleep=lambda seconds: sleep(seconds))


def _gid(kind: str, remote_id) -> str:
    text = str(remote_id)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


def _num(remote_id) -> str:
    return str(remote_id).rsplit("/", 1)[-1]


def _user_errors(payload: dict, *keys: str) -> list[dict]:
    return [e for key in keys for e in (payload.get(key) or []) if e]


def _words(errors: list[dict]) -> str:
    return "; ".join(str(e.get("message") or e) for e in errors)


class GraphQLAdapter:
    name = "graphql"

    _STAGED = """mutation stagedUploadsCreate($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) { stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } }
}"""
    _CREATE = """mutation productCreateMedia($productId: ID!, $media: [CreateMediaInput!]!) {
  productCreateMedia(productId: $productId, media: $media) {
    media { id alt status mediaContentType ... on MediaImage { image { url } originalSource { url } } }
    mediaUserErrors { field message code }
  }
}"""
    _MEDIA = """query productMedia($id: ID!) {
  product(id: $id) { id media(first: 250) { nodes { id alt status ... on MediaImage { image { url } originalSource { url } } } } }
}"""
    _NODE = """query mediaStatus($id: ID!) {
  node(id: $id) { id ... on MediaImage { status alt image { url } mediaErrors { code message } } }
}"""
    _VARIANTS = """mutation productVariantAppendMedia($productId: ID!, $variantMedia: [ProductVariantAppendMediaInput!]!) {
  productVariantAppendMedia(productId: $productId, variantMedia: $variantMedia) { productVariants { id } userErrors { field message } }
}"""
    _DELETE = """mutation productDeleteMedia($productId: ID!, $mediaIds: [ID!]!) {
  productDeleteMedia(productId: $productId, mediaIds: $mediaIds) { deletedMediaIds mediaUserErrors { field message } }
}"""

    def __init__(self, client: AdminClient, product_id: str):
        self.client, self.product_gid = client, _gid("Product", product_id)

    def _call(self, query: str, variables: dict, *, write: bool) -> dict:
        try:
            return self.client.graphql(query, variables, write=write)
        except StorefrontRefused as exc:
            if exc.status == 404 or "doesn't exist on type" in exc.message:
                raise GraphQLUnsupported(exc.message, status=exc.status) from exc
            raise

    @staticmethod
    def _placed(node: dict) -> Placed:
        image = node.get("image") or {}
        errors = node.get("mediaErrors") or []
        return Placed(media_id=node["id"], status=node.get("status") or "UPLOADED", url=image.get("url") or "", error=_words(errors))

    def find(self, mark: str) -> Placed | None:
        product = (self._call(self._MEDIA, {"id": self.product_gid}, write=False).get("product")) or {}
        if not product:
            raise StorefrontRefused("The product is no longer in the shop (it may have been deleted in the storefront admin).", status=404)
        for node in (product.get("media") or {}).get("nodes") or []:
            texts = [node.get("alt"), (node.get("image") or {}).get("url"), (node.get("originalSource") or {}).get("url")]
            if any(mark in str(text or "") for text in texts):
                return self._placed(node)
        return None

    def create(self, *, data: bytes, filename: str, alt: str, variant_ids: list[str], position: int | None) -> Placed:
        # Creating a staged target writes nothing the shop shows, and uploading to it again
        # only overwrites the same key: both are resent freely.
        staged = self._call(self._STAGED, {"input": [{"filename": filename, "mimeType": "image/png", "resource": "IMAGE", "httpMethod": "POST", "fileSize": str(len(data))}]}, write=False)
        result = staged.get("stagedUploadsCreate") or {}
        errors = _user_errors(result, "userErrors")
        if errors or not result.get("stagedTargets"):
            raise StorefrontRefused(f"The shop would not take an upload: {_words(errors) or 'no upload target given'}")
        target = result["stagedTargets"][0]
        _staged_post(target, data=data, filename=filename, timeout=settings.VITRINE_STOREFRONT_TIMEOUT_SECONDS)
        media = [{"originalSource": target["resourceUrl"], "alt": alt, "mediaContentType": "IMAGE"}]
        created = self._call(self._CREATE, {"productId": self.product_gid, "media": media}, write=True).get("productCreateMedia") or {}
        errors = _user_errors(created, "mediaUserErrors", "userErrors")
        if errors or not created.get("media"):
            raise StorefrontRefused(f"The shop refused the image: {_words(errors) or 'no media created'}")
        return self._placed(created["media"][0])

    def status(self, media_id: str) -> Placed:
        node = self._call(self._NODE, {"id": media_id}, write=False).get("node")
        if not node:
            raise StorefrontRefused("The image is no longer in the shop (it may have been deleted in the storefront admin).", status=404)
        return self._placed(node)

    def assign_variants(self, media_id: str, variant_ids: list[str]) -> str:
        if not variant_ids:
            return ""
        variant_media = [{"variantId": _gid("ProductVariant", v), "mediaIds": [media_id]} for v in variant_ids]
        # Setting a variant's image to this media twice leaves it the same: safe to resend.
        result = self._call(self._VARIANTS, {"productId": self.product_gid, "variantMedia": variant_media}, write=False).get("productVariantAppendMedia") or {}
        return _words(_user_errors(result, "userErrors"))

    def position_of(self, media_ids: list[str]) -> int | None:
        return None  # productCreateMedia appends; the merchant orders media in the shop

    def delete(self, media_id: str) -> None:
        result = self._call(self._DELETE, {"productId": self.product_gid, "mediaIds": [_gid("MediaImage", _num(media_id))]}, write=False)
        errors = [e for e in _user_errors(result.get("productDeleteMedia") or {}, "mediaUserErrors", "userErrors") if "does not exist" not in str(e.get("message"))]
        if errors:
            raise StorefrontRefused(f"The shop would not remove an earlier Vitrine image: {_words(errors)}")


class RestAdapter:
    """Product images over REST: the image is ready when the create answers."""

    name = "rest"

    def __init__(self, client: AdminClient, product_id: str):
        self.client, self.product_id = client, _num(product_id)

    def _image(self, image: dict) -> Placed:
        return Placed(media_id=str(image["id"]), status="READY", url=image.get("src") or "", position=image.get("position"))

    def find(self, mark: str) -> Placed | None:
        images = self.client.rest("GET", f"products/{self.product_id}/images.json").body.get("images") or []
        for image in images:
            if any(mark in str(image.get(key) or "") for key in ("src", "filename", "alt")):
                return self._image(image)
        return None

    def create(self, *, data: bytes, filename: str, alt: str, variant_ids: list[str], position: int | None) -> Placed:
        image = {"attachment": base64.b64encode(data).decode(), "filename": filename, "alt": alt, "variant_ids": [int(_num(v)) for v in variant_ids]}
        if position:
            image["position"] = position
        answer = self.client.rest("POST", f"products/{self.product_id}/images.json", json={"image": image})
        return self._image(answer.body["image"])

    def status(self, media_id: str) -> Placed:
        answer = self.client.rest("GET", f"products/{self.product_id}/images/{_num(media_id)}.json")
        return self._image(answer.body["image"])

    def assign_variants(self, media_id: str, variant_ids: list[str]) -> str:
        return ""  # sent with the create

    def position_of(self, media_ids: list[str]) -> int | None:
        """Where the first of the images a replacing one replaces stands: it takes that place."""
        if not media_ids:
            return None
        wanted = {_num(m) for m in media_ids}
        images = self.client.rest("GET", f"products/{self.product_id}/images.json").body.get("images") or []
        positions = [image.get("position") for image in images if str(image.get("id")) in wanted and image.get("position")]
        return min(positions) if positions else None

    def delete(self, media_id: str) -> None:
        try:
            self.client.rest("DELETE", f"products/{self.product_id}/images/{_num(media_id)}.json")
        except StorefrontRefused as exc:
            if exc.status != 404:  # already gone: what was asked for
                raise
        except StorefrontAmbiguous:
            pass  # a resend finds it gone or removes it; the next replace sees it either way


ADAPTERS = {GraphQLAdapter.name: GraphQLAdapter, RestAdapter.name: RestAdapter}


def _staged_post(target: dict, *, data: bytes, filename: str, timeout: float, attempts: int = 4) -> None:
    """The bytes to the staged upload target: its parameters first, the file last. Not the
    admin host, so no access token goes with it. A 4xx there means GraphQL uploads do not work
    for this shop: the caller falls back to REST."""
    fields = [(p["name"], (None, p["value"])) for p in target.get("parameters") or []]
    fields.append(("file", (filename, data, "image/png")))
    for attempt in range(1, attempts + 1):
        try:
            answer = requests.post(target["url"], files=fields, timeout=timeout)
        except (requests.Timeout, requests.ConnectionError):
            answer = None
        if answer is not None and answer.status_code < 300:
            return
        if answer is not None and 400 <= answer.status_code < 500:
            raise GraphQLUnsupported(f"The shop's upload storage refused the image ({answer.status_code}).", status=answer.status_code)
        if attempt < attempts:
            sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
    raise StorefrontUnavailable("The shop's upload storage did not take the image; Vitrine will try again later.")


def _variant_ids(asset: Asset, link: StorefrontProduct) -> list[str]:
    """The SKU variants whose image is the shop image this photo was imported from (a photo
    uploaded in Vitrine belongs to no variant in particular: the image goes on the product)."""
    remote_image_ids = set(
        StorefrontImage.objects.filter(connection_id=link.connection_id, photo_id=asset.photo_id).values_list("remote_id", flat=True)
    )
    return [str(v["id"]) for v in link.variants or [] if v.get("id") and v.get("image_id") is not None and str(v["image_id"]) in remote_image_ids]


def _alt_text(asset: Asset) -> str:
    product = asset.photo.product
    preset = ((asset.job.plan or {}).get("preset") or {}).get("name") or (asset.job.preset.name if asset.job.preset_id else "")
    title = product.title if product else asset.photo.original_name
    return (f"{title} — {preset}" if preset else title)[:512]


def _filename(asset: Asset, sha256: str) -> str:
    product = asset.photo.product
    stem = (product.handle if product and product.handle else "image")[:60]
    return f"{stem}-{marker(sha256)}.png"


def _claim(export: Export) -> Export | None:
    """Take the export for this run (one run at a time: a run that stopped moving for longer
    than a job lease was lost, and its export is taken over)."""
    with transaction.atomic():
        locked = Export.objects.select_for_update(of=("self",)).select_related("connection", "asset", "asset__photo__product", "asset__job__preset").get(pk=export.pk)
        if locked.status in (ExportStatus.PUBLISHED, ExportStatus.FAILED):
            return None
        stale = timezone.now() - timedelta(seconds=settings.VITRINE_JOB_LEASE_SECONDS)
        if locked.status in _RUNNING and locked.updated_at > stale:
            raise ExportPending("Another worker is sending this image right now.")
        locked.attempts += 1
        if locked.status == ExportStatus.QUEUED:
            locked.status = ExportStatus.PROCESSING if locked.remote_media_id else ExportStatus.UPLOADING
        locked.save(update_fields=["attempts", "status", "updated_at"])
    return locked


def _save(export: Export, **values) -> None:
    for key, value in values.items():
        setattr(export, key, value)
    export.save(update_fields=[*values, "updated_at"])


def _fail(export: Export, message: str) -> Export:
    _save(export, status=ExportStatus.FAILED, error=message[:1000])
    logger.info("storefront.export.failed", extra={"export_id": export.pk, "reason": message})
    return export


def export_run(*, export: Export) -> Export:
    """Send one export's image to its shop and see it through to READY. A terminal refusal
    fails the export with the shop's words; a passing trouble raises `ExportPending` after
    writing why on the row (the task runs it again; the row's media id and the marker keep
    it from uploading twice)."""
    claimed = _claim(export)
    if claimed is None:
        export.refresh_from_db()
        return export
    export = claimed
    try:
        return _run(export)
    except StorefrontRefused as exc:
        return _fail(export, exc.message)
    except (StorefrontUnavailable, StorefrontAmbiguous, ExportPending) as exc:
        message = getattr(exc, "message", str(exc))
        _save(export, status=ExportStatus.QUEUED, error=message[:1000])
        logger.info("storefront.export.pending", extra={"export_id": export.pk, "reason": message})
        raise ExportPending(message) from exc
    except Exception as exc:  # noqa: BLE001 - anything else (an answer of an unexpected shape, unreadable credentials) ends the run on the row, never leaves it "uploading"
        logger.exception("storefront.export.crashed", extra={"export_id": export.pk})
        return _fail(export, f"Vitrine could not finish sending the image ({type(exc).__name__}: {exc}). Retry; if it fails again, tell your Vitrine administrator.")


def export_give_up(*, export: Export, reason: str) -> Export:
    """The task ran out of tries: the export fails with the last reason, for a person to retry."""
    with transaction.atomic():
        locked = Export.objects.select_for_update().get(pk=export.pk)
        if locked.status == ExportStatus.PUBLISHED:
            return locked
        return _fail(locked, f"Gave up after {locked.attempts} tries: {reason}")


def _run(export: Export) -> Export:
    asset, connection = export.asset, export.connection
    if not connection.usable:
        raise StorefrontRefused(f"The shop {connection.shop_domain} was disconnected. Connect it again, then retry.")
    link = StorefrontProduct.objects.filter(connection=connection, remote_id=export.remote_product_id).first()
    if link is None:
        raise StorefrontRefused("The shop's product for this image is gone (deleted in the storefront admin?).")
    client = _client(connection)
    adapter = ADAPTERS[export.adapter or GraphQLAdapter.name](client, export.remote_product_id)
    variant_ids = _variant_ids(asset, link)
    if not export.remote_media_id:
        with asset.file.open("rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != export.content_sha256:
            raise StorefrontRefused("The image's file is not the one that was approved; it was not sent. Regenerate and approve it again.")
        placed, adapter = _place(export, adapter, client, data=data, variant_ids=variant_ids)
        _save(export, remote_media_id=placed.media_id, remote_url=placed.url[:1000], adapter=adapter.name, status=ExportStatus.PROCESSING, error="")
    else:
        placed = Placed(media_id=export.remote_media_id, status="UPLOADED")
    placed = _wait_ready(export, adapter, placed)
    notes = []
    note = adapter.assign_variants(placed.media_id, variant_ids)
    if note:
        notes.append(f"The image is in the shop, but it could not be set on its variants: {note}")
    if export.replace_earlier:
        note = _replace_earlier(export)
        if note:
            notes.append(note)
    return _published(export, placed, notes)


def _place(export: Export, adapter, client, *, data: bytes, variant_ids: list[str]):
    mark = marker(export.content_sha256)
    # Any earlier run may have written the image before it stopped: look before uploading.
    look = export.attempts > 1
    for _round in range(WRITE_ROUNDS):
        try:
            position = adapter.position_of([e.remote_media_id for e in _earlier(export)]) if export.replace_earlier else None
            if look:
                found = adapter.find(mark)
                if found is not None:
                    logger.info("storefront.export.found_own_image", extra={"export_id": export.pk, "media_id": found.media_id})
                    return found, adapter
            return adapter.create(data=data, filename=_filename(export.asset, export.content_sha256), alt=_alt_text(export.asset), variant_ids=variant_ids, position=position), adapter
        except StorefrontAmbiguous as exc:
            logger.info("storefront.export.ambiguous", extra={"export_id": export.pk, "reason": exc.message, "adapter": adapter.name})
            look = True
        except GraphQLUnsupported as exc:
            if adapter.name == RestAdapter.name:
                raise StorefrontRefused(exc.message, status=exc.status) from exc
            logger.info("storefront.export.rest_fallback", extra={"export_id": export.pk, "reason": exc.message})
            adapter, look = RestAdapter(client, export.remote_product_id), True
            _save(export, adapter=adapter.name)
    raise StorefrontUnavailable("The shop kept failing while taking the image; Vitrine will look for it and try again later.")


def _wait_ready(export: Export, adapter, placed: Placed) -> Placed:
    polls = settings.VITRINE_STOREFRONT_MEDIA_POLLS
    for poll in range(polls + 1):
        if placed.status == "READY":
            return placed
        if placed.status == "FAILED":
            try:
                adapter.delete(placed.media_id)  # a broken image is not left on the product
            except StorefrontError:
                logger.warning("storefront.export.failed_media_not_removed", extra={"export_id": export.pk, "media_id": placed.media_id})
            _save(export, remote_media_id="", remote_url="")
            raise StorefrontRefused(f"The shop could not process the image: {placed.error or 'no reason given'}. Retry, or regenerate the image.")
        if poll:
            sleep(settings.VITRINE_STOREFRONT_MEDIA_POLL_SECONDS)
        placed = adapter.status(placed.media_id)
        export.save(update_fields=["updated_at"])  # still moving: the lease holds
    raise ExportPending("The shop is still processing the image; Vitrine will check again.")


def _earlier(export: Export):
    return (
        Export.objects.filter(connection_id=export.connection_id, remote_product_id=export.remote_product_id, status=ExportStatus.PUBLISHED, removed_at__isnull=True)
        .exclude(pk=export.pk)
        .exclude(remote_media_id="")
    )


def _replace_earlier(export: Export) -> str:
    """Remove the images earlier exports put on this product; only rows of this connection
    name them, so a merchant's own image is never among them."""
    client = _client(export.connection)
    failed = []
    for earlier in _earlier(export):
        adapter = ADAPTERS[earlier.adapter or GraphQLAdapter.name](client, earlier.remote_product_id)
        try:
            adapter.delete(earlier.remote_media_id)
        except StorefrontError as exc:
            failed.append(exc.message)
            continue
        _save(earlier, removed_at=timezone.now())
    if failed:
        return f"{len(failed)} earlier Vitrine image(s) could not be removed: {failed[0]}"
    return ""


def _published(export: Export, placed: Placed, notes: list[str]) -> Export:
    with transaction.atomic():
        locked = Export.objects.select_for_update().get(pk=export.pk)
        locked.status, locked.published_at = ExportStatus.PUBLISHED, timezone.now()
        locked.remote_media_id, locked.remote_url = placed.media_id, (placed.url or locked.remote_url)[:1000]
        asset = reviews.asset_published(
            asset=export.asset, where=export.connection.shop_domain, remote_id=placed.media_id, url=locked.remote_url, actor=locked.created_by,
            detail={"export_id": locked.pk, "product_id": locked.remote_product_id, "adapter": locked.adapter},
        )
        if asset.review_state != ReviewState.PUBLISHED:
            notes = [*notes, f"The image was {asset.get_review_state_display().lower()} while it was being sent; it is in the shop now, so remove it there if it should not be."]
        locked.error = " ".join(notes)[:1000]
        locked.save()
    logger.info("storefront.export.published", extra={"export_id": locked.pk, "media_id": placed.media_id, "adapter": locked.adapter})
    return locked
