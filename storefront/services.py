"""Every write of the storefront connector: connections and their credentials."""
from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog import services as catalog_services
from catalog.models import Product, User, Workspace
from generation.decoding import UploadRejected
from studio.services import photo_add

from . import crypto
from .fetch import FetchFailed, FetchRefused, image_fetch
from .models import (
    ConnectionMethod,
    ConnectionStatus,
    Export,
    StorefrontConnection,
    StorefrontDeletion,
    StorefrontImage,
    StorefrontProduct,
    WebhookDelivery,
)
from .signatures import shop_domain_valid
from .tasks import storefront_webhook_process_task

logger = logging.getLogger(__name__)


def shop_base_url(shop_domain: str) -> str:
    """Where a shop answers (OAuth, Admin API): `https://{shop}` unless VITRINE_STOREFRONT_SHOP_URL
    says otherwise (the loopback fake in tests and `make run`)."""
    return settings.VITRINE_STOREFRONT_SHOP_URL.replace("{shop}", shop_domain).rstrip("/")


def default_api_base_url(shop_domain: str) -> str:
    return f"{shop_base_url(shop_domain)}/admin/api/{settings.VITRINE_STOREFRONT_API_VERSION}"


def _api_base_url_check(url: str) -> str:
    parts = urlsplit(url)
    # Plain http only to this machine (the loopback fake storefront): a token never crosses a
    # network in the clear.
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}):
        return url.rstrip("/")
    raise ValidationError({"api_base_url": "The API address must start with https:// (plain http only to 127.0.0.1, for the test storefront)."})


def connection_create(
    *,
    workspace: Workspace,
    shop_domain: str,
    access_token: str,
    method: str = ConnectionMethod.TOKEN,
    api_base_url: str = "",
    scopes: str = "",
    webhook_secret: str = "",
    created_by: User | None = None,
) -> StorefrontConnection:
    """Connect a shop to the workspace, or reconnect the workspace's own disconnected shop.
    The token is stored encrypted and never handed back."""
    shop_domain = shop_domain.strip().lower()
    if not shop_domain_valid(shop_domain):
        raise ValidationError({"shop_domain": "A shop domain looks like your-shop.myshopify.com (lowercase letters, digits and dashes)."})
    if not access_token.strip():
        raise ValidationError({"access_token": "Paste the Admin API access token of your custom app."})
    values = dict(
        api_base_url=_api_base_url_check(api_base_url or default_api_base_url(shop_domain)),
        method=method,
        status=ConnectionStatus.ACTIVE,
        scopes=scopes,
        access_token_encrypted=crypto.encrypt(access_token.strip()),
        webhook_secret_encrypted=crypto.encrypt(webhook_secret.strip()),
        previous_webhook_secret_encrypted="",
        last_sync_error="",
    )
    try:
        with transaction.atomic():
            connection, created = StorefrontConnection.objects.select_for_update().get_or_create(
                shop_domain=shop_domain, defaults={"workspace": workspace, "created_by": created_by, **values}
            )
            if not created:
                if connection.workspace_id != workspace.pk:
                    raise ValidationError({"shop_domain": "This shop is already connected to another Vitrine workspace; disconnect it there first."})
                for key, value in values.items():
                    setattr(connection, key, value)
                connection.save()
    except IntegrityError as exc:  # a concurrent connect of the same shop
        raise ValidationError({"shop_domain": "This shop is already connected."}) from exc
    logger.info("storefront.connection.connected", extra={"connection_id": connection.pk, "shop": shop_domain, "method": method})
    return connection


def connection_webhook_secret_rotate(*, connection: StorefrontConnection, new_secret: str) -> StorefrontConnection:
    """The new secret signs from now on; the current one is still accepted until the next rotation."""
    with transaction.atomic():
        connection = StorefrontConnection.objects.select_for_update().get(pk=connection.pk)
        connection.previous_webhook_secret_encrypted = connection.webhook_secret_encrypted
        connection.webhook_secret_encrypted = crypto.encrypt(new_secret)
        connection.save(update_fields=["previous_webhook_secret_encrypted", "webhook_secret_encrypted", "updated_at"])
    return connection


def connection_disable(*, connection: StorefrontConnection, reason: str) -> StorefrontConnection:
    """Disconnect and erase every credential (the app was uninstalled, or a person disconnected)."""
    with transaction.atomic():
        connection = StorefrontConnection.objects.select_for_update().get(pk=connection.pk)
        connection.status = ConnectionStatus.DISABLED
        connection.access_token_encrypted = ""
        connection.webhook_secret_encrypted = ""
        connection.previous_webhook_secret_encrypted = ""
        connection.last_sync_error = reason[:1000]
        connection.save()
    logger.info("storefront.connection.disabled", extra={"connection_id": connection.pk, "reason": reason})
    return connection


def credentials_rotate() -> int:
    """Re-encrypt every stored credential under the first VITRINE_CREDENTIALS_KEYS key; after
    it, older keys can be dropped from the setting. Returns the connections rewritten."""
    fields = ["access_token_encrypted", "webhook_secret_encrypted", "previous_webhook_secret_encrypted"]
    count = 0
    for pk in StorefrontConnection.objects.values_list("pk", flat=True):
        with transaction.atomic():
            connection = StorefrontConnection.objects.select_for_update().get(pk=pk)
            for field in fields:
                setattr(connection, field, crypto.rotate(getattr(connection, field)))
            connection.save(update_fields=fields)
            count += 1
    return count


# Products from the shop --------------------------------------------------------------------


def remote_time(value) -> datetime:
    parsed = parse_datetime(str(value or ""))
    if parsed is None:
        raise ValidationError({"updated_at": f"The shop sent a product without a readable updated_at ({value!r})."})
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, timezone.utc)


def storefront_product_apply(*, connection: StorefrontConnection, payload: dict) -> StorefrontProduct | None:
    """Create or update the catalog Product for one shop product (REST shape). A payload older
    than what was already applied, or one of a product the shop deleted (a tombstone), changes
    nothing (webhooks arrive out of order), and so returns None."""
    remote_id = str(payload["id"])
    updated_at = remote_time(payload.get("updated_at"))
    variants = [
        {key: variant.get(key) for key in ("id", "title", "sku", "position", "image_id")} for variant in payload.get("variants") or []
    ]
    title = (payload.get("title") or "").strip() or f"Product {remote_id}"
    fields = {"title": title[:200], "handle": (payload.get("handle") or "")[:200], "sku": ((variants[0].get("sku") or "") if variants else "")[:100]}
    with transaction.atomic():
        link = StorefrontProduct.objects.select_for_update().filter(connection=connection, remote_id=remote_id).select_related("product").first()
        if StorefrontDeletion.objects.filter(connection=connection, remote_id=remote_id).exists():
            return None
        if link is not None:
            if link.remote_updated_at >= updated_at:
                return None
            catalog_services.product_update(product=link.product, **fields)
            link.remote_updated_at, link.variants = updated_at, variants
            link.save(update_fields=["remote_updated_at", "variants"])
            return link
        product = Product.objects.filter(workspace=connection.workspace, storefront_product_id=remote_id).first()
        if product is None and fields["handle"]:
            # A product typed in by hand before the shop was connected: the same handle is the same product.
            product = Product.objects.filter(workspace=connection.workspace, handle=fields["handle"], storefront_product_id="").first()
        if product is None:
            product = catalog_services.product_create(workspace=connection.workspace, storefront_product_id=remote_id, **fields)
        else:
            product = catalog_services.product_update(product=product, storefront_product_id=remote_id, **fields)
        return StorefrontProduct.objects.create(connection=connection, product=product, remote_id=remote_id, remote_updated_at=updated_at, variants=variants)


def storefront_product_remove(*, connection: StorefrontConnection, remote_id: str) -> bool:
    """The shop deleted a product: so does the catalog (its photos stay in the library). A
    tombstone stays, so a late create or update of it is ignored. Returns whether a product
    was deleted."""
    remote_id = str(remote_id)
    if not remote_id:
        raise ValidationError({"id": "The delete names no product id."})
    with transaction.atomic():
        StorefrontDeletion.objects.get_or_create(connection=connection, remote_id=remote_id)
        link = StorefrontProduct.objects.select_for_update().filter(connection=connection, remote_id=remote_id).select_related("product").first()
        if link is None:
            return False
        catalog_services.product_delete(product=link.product)  # cascades to the link
    return True


def _own_export(connection: StorefrontConnection, image: dict) -> bool:
    """Whether a shop image is one Vitrine published there (it is not imported back): it
    carries the exporter's marker in its file name or alt text, or an export names it."""
    from .publish import marker_in  # late: publish sits beside this module, not below it

    if marker_in(image.get("src"), image.get("alt")):
        return True
    remote_id = str(image.get("id"))
    ids = {remote_id, f"gid://shopify/ProductImage/{remote_id}", f"gid://shopify/MediaImage/{remote_id}", str(image.get("admin_graphql_api_id") or "")}
    ids.discard("")
    query = Export.objects.filter(connection=connection, remote_media_id__in=ids)
    if image.get("src"):
        query = query | Export.objects.filter(connection=connection, remote_url=image["src"])
    return query.exists()


def storefront_product_images_import(*, connection: StorefrontConnection, link: StorefrontProduct, images: list[dict], user: User | None = None) -> int:
    """Turn a shop product's images into ProductPhotos of its catalog product, through the same
    upload rules as a merchant's upload (`studio.services.photo_add`: validation, dedup by
    content, cutout). Each remote image is tried once: imported, or refused with its reason
    (StorefrontImage). A transient fetch failure records nothing, so the next sync tries
    again. Images Vitrine itself published are skipped. Returns the photos created."""
    added = 0
    seen = set(StorefrontImage.objects.filter(connection=connection, remote_id__in=[str(i.get("id")) for i in images]).values_list("remote_id", flat=True))
    for image in sorted(images, key=lambda i: i.get("position") or 0):
        remote_id, src = str(image.get("id") or ""), str(image.get("src") or "")
        if not remote_id or not src or remote_id in seen or _own_export(connection, image):
            continue
        photo, error = None, ""
        try:
            fetched = image_fetch(src)
            name = (unquote(urlsplit(fetched.url).path.rsplit("/", 1)[-1]) or f"shop-image-{remote_id}")[:200]
            result = photo_add(workspace=connection.workspace, file=ContentFile(fetched.data, name=name), uploaded_by=user, product=link.product)
            photo, added = result.photo, added + int(result.created)
        except FetchFailed as exc:
            logger.info("storefront.image.fetch_failed", extra={"connection_id": connection.pk, "remote_image_id": remote_id, "reason": exc.message})
            continue
        except (FetchRefused, UploadRejected) as exc:
            error = exc.message
            logger.info("storefront.image.refused", extra={"connection_id": connection.pk, "remote_image_id": remote_id, "reason": error})
        StorefrontImage.objects.get_or_create(
            connection=connection, remote_id=remote_id,
            defaults={"remote_product_id": link.remote_id, "photo": photo, "src": src[:1000], "error": error[:1000]},
        )
    return added


# Webhooks ----------------------------------------------------------------------------------


def webhook_delivery_record(*, connection: StorefrontConnection, webhook_id: str, topic: str, payload: dict) -> WebhookDelivery | None:
    """Store a verified delivery once; a repeat (the same webhook id) returns None. The unique
    constraint decides, so two deliveries racing each other still count once."""
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(connection=connection, webhook_id=webhook_id[:100], topic=topic[:64], payload=payload)
    except IntegrityError:
        return None
    transaction.on_commit(lambda: storefront_webhook_process_task.delay(delivery.pk))
    return delivery


def webhook_delivery_process(*, delivery: WebhookDelivery) -> None:
    """Apply one delivery's topic; it is processed at most once (processed_at guards). The
    order of arrival does not matter: a product change older than the one applied, or one of
    a deleted product, changes nothing. A disconnected shop's deliveries change nothing."""
    link = None
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("connection").get(pk=delivery.pk)
        if delivery.processed_at is not None:
            return
        connection, payload = delivery.connection, delivery.payload
        try:
            if connection.status != ConnectionStatus.ACTIVE:
                delivery.error = "The storefront was disconnected before this webhook was processed; nothing changed."
            elif delivery.topic in {"products/create", "products/update"}:
                link = storefront_product_apply(connection=connection, payload=payload)
            elif delivery.topic == "products/delete":
                storefront_product_remove(connection=connection, remote_id=str(payload.get("id", "")))
            elif delivery.topic == "app/uninstalled":
                connection_disable(connection=connection, reason="The app was uninstalled from the shop; connect it again to resume.")
        except (ValidationError, KeyError) as exc:
            delivery.error = str(exc)[:1000]
        delivery.processed_at = timezone.now()
        delivery.save(update_fields=["processed_at", "error"])
    if link is not None and isinstance(payload.get("images"), list):
        # Outside the transaction: downloads must not hold the delivery's row lock.
        storefront_product_images_import(connection=connection, link=link, images=payload["images"])
