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


@shared_task(acks_late=True)
def storefront_sync_task(run_id: int) -> None:
    """Work on one import or incremental sync (io queue) for a time slice; a run left
    unfinished queues itself again and goes on from its cursor."""
    from .models import SyncRun
    from .sync import sync_run

    run = SyncRun.objects.filter(pk=run_id).first()
    if run is not None:
        sync_run(run=run)


#: Runs of one export before it fails for a person to retry; the waits between them grow
#: (30 s, 1, 2, 4, 8 min), as a throttling or failing shop needs time more than tries.
EXPORT_MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=EXPORT_MAX_RETRIES)
def storefront_export_task(self, export_id: int) -> None:
    """Send one approved image to its shop (io queue). A passing trouble (throttled, 5xx,
    timeouts, still processing) runs it again later; a refusal fails the export at once."""
    from .models import Export
    from .publish import ExportPending, export_give_up, export_run

    export = Export.objects.filter(pk=export_id).first()
    if export is None:
        return
    try:
        export_run(export=export)
    except ExportPending as exc:
        if self.request.retries >= self.max_retries:
            export_give_up(export=export, reason=str(exc))
            return
        raise self.retry(countdown=min(480, 30 * 2 ** self.request.retries), exc=exc) from None
