"""Receiving a webhook: who sent it, is it signed, have we had it — before anything is parsed.
The work itself runs later in an io task, so the shop gets its answer within a second."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from . import selectors, services
from .signatures import webhook_valid

logger = logging.getLogger(__name__)

TOPICS = {"products/create", "products/update", "products/delete", "app/uninstalled"}


@dataclass(frozen=True)
class Answer:
    status: int
    message: str


def webhook_receive(*, body: bytes, headers) -> Answer:
    """`headers` is a case-insensitive mapping (Django's request.headers)."""
    shop = headers.get("X-Shopify-Shop-Domain", "")
    connection = selectors.connection_for_shop(shop_domain=shop) if shop else None
    # Unknown shop and bad signature answer alike: nobody learns which shops are connected.
    if connection is None or not webhook_valid(body, headers.get("X-Shopify-Hmac-Sha256", ""), secrets=connection.webhook_secrets()):
        logger.warning("storefront.webhook.refused", extra={"shop": shop[:255], "known_shop": connection is not None})
        return Answer(401, "The webhook's signature does not match a connected shop.")
    topic, webhook_id = headers.get("X-Shopify-Topic", ""), headers.get("X-Shopify-Webhook-Id", "")
    if not webhook_id:
        return Answer(400, "The webhook has no X-Shopify-Webhook-Id.")
    if topic not in TOPICS:
        return Answer(200, "Topic not handled.")  # 200: a shop retries anything else for hours
    try:
        payload = json.loads(body)
    except ValueError:
        return Answer(400, "The webhook body is not JSON.")
    if not isinstance(payload, dict):
        return Answer(400, "The webhook body is not a JSON object.")
    delivery = services.webhook_delivery_record(connection=connection, webhook_id=webhook_id, topic=topic, payload=payload)
    logger.info("storefront.webhook.received", extra={"connection_id": connection.pk, "topic": topic, "duplicate": delivery is None})
    return Answer(200, "Received." if delivery else "Already received.")
