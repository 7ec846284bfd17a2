"""Thin Celery entry points of the connector (io queue): take ids, re-fetch, call a service."""
from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def storefront_webhook_process_task(delivery_id: int) -> None:
    """Apply one received webhook (io queue)."""
    from .models import WebhookDelivery
    from .services import webhook_delivery_process

    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is not None:
        webhook_delivery_process(delivery=delivery)
