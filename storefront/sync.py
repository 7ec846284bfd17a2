"""Importing a shop's catalog and keeping it in step: the first import (`full`) reads every
product; an incremental sync reads those updated since the last run's high-water mark. Both
read REST `products.json` page by page (cursor pagination by `page_info`, through the paced
AdminClient), apply each product (`services.storefront_product_apply`: an older state never
overwrites a newer one) and import its images (`services.storefront_product_images_import`).

A run is a row (SyncRun): progress (`done` of `total`), the cursor of the next page, the
high-water mark reached, the error in words. One task works for a time slice, stores where it
is after every page, and queues itself again to go on; the worker loop (`sync_due`) sends
runs whose message was lost and queues the scheduled incremental syncs."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.models import User

from . import services
from .crypto import CredentialsUnreadable
from .client import AdminClient, StorefrontError
from .models import ConnectionStatus, RunStatus, StorefrontConnection, StorefrontProduct, SyncRun
from .tasks import storefront_sync_task

logger = logging.getLogger(__name__)

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def connection_client(*, connection: StorefrontConnection, sleep: Callable[[float], None] = time.sleep) -> AdminClient:
    """The paced Admin API client for a connection (the token is decrypted only here); the
    one constructor the import and the exporter share."""
    return AdminClient(
        base_url=connection.api_base_url, access_token=connection.access_token(),
        timeout=settings.VITRINE_STOREFRONT_TIMEOUT_SECONDS, sleep=sleep,
    )


def _enqueue(run: SyncRun) -> None:
    transaction.on_commit(lambda: storefront_sync_task.delay(run.pk))


def sync_request(*, connection: StorefrontConnection, user: User | None = None, full: bool) -> SyncRun:
    """Queue an import (`full`: every product) or an incremental sync (products updated since
    the last finished run; without one it is a full import). A run already queued or running
    for this shop is returned instead of a second one."""
    if not connection.usable:
        raise ValidationError({"connection": "This storefront is disconnected; connect it again before importing."})
    previous = SyncRun.objects.filter(connection=connection, status=RunStatus.SUCCEEDED, updated_since__isnull=False).order_by("-finished_at", "-pk").first()
    since = None if full or previous is None else previous.updated_since
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(connection=connection, full=since is None, updated_since=since, created_by=user)
            _enqueue(run)
    except IntegrityError:  # the partial unique constraint: one live run per shop
        live = SyncRun.objects.filter(connection=connection, status__in=ACTIVE).first()
        if live is None:  # it finished between the insert and this read
            return sync_request(connection=connection, user=user, full=full)
        return live
    logger.info("storefront.sync.queued", extra={"connection_id": connection.pk, "run_id": run.pk, "full": run.full})
    return run


def _start(run: SyncRun) -> SyncRun | None:
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().select_related("connection", "connection__workspace").get(pk=run.pk)
        if run.status not in ACTIVE:
            return None
        run.status = RunStatus.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.save(update_fields=["status", "started_at", "updated_at"])
    return run


def _finish(run: SyncRun, *, error: str = "") -> SyncRun:
    """Succeed (`error` empty; `run.error` may still list products that were skipped) or fail
    with the reason in words."""
    now = timezone.now()
    with transaction.atomic():
        run.status = RunStatus.FAILED if error else RunStatus.SUCCEEDED
        run.error = (error or run.error)[:1000]
        run.finished_at = now
        if not error and run.total != run.done:
            # Products created or deleted in the shop while the pages were read: the count
            # asked first is out of date, what was read is the truth.
            run.total = run.done
        run.save()
        fields = {"last_sync_error": run.error}
        if not error:
            fields["last_sync_at"] = now
        StorefrontConnection.objects.filter(pk=run.connection_id).update(**fields)
    logger.info("storefront.sync.finished", extra={"run_id": run.pk, "status": run.status, "done": run.done, "photos_added": run.photos_added})
    return run


def _page_info(next_url: str | None) -> str:
    if not next_url:
        return ""
    values = parse_qs(urlsplit(next_url).query).get("page_info") or [""]
    return values[0]


def sync_run(*, run: SyncRun) -> SyncRun:
    """Work on one run for up to VITRINE_STOREFRONT_SYNC_SLICE_SECONDS, page by page, storing
    progress and the next cursor after each page; then finish it, or queue the rest. A
    refusal or an outage of the shop fails the run with the reason in words."""
    started = _start(run)
    if started is None:
        return run
    run = started
    connection = run.connection
    if not connection.usable:
        return _finish(run, error="The storefront was disconnected; connect it again to import.")
    slice_ends = time.monotonic() + settings.VITRINE_STOREFRONT_SYNC_SLICE_SECONDS
    filters = {"updated_at_min": run.updated_since.isoformat()} if run.updated_since and not run.full else {}
    try:
        client = connection_client(connection=connection)
        if run.total is None:
            counted = client.rest("GET", "products/count.json", params=filters).body
            run.total = int(counted.get("count", 0)) if isinstance(counted, dict) else None
            run.save(update_fields=["total", "updated_at"])
        while True:
            params = {"limit": settings.VITRINE_STOREFRONT_SYNC_PAGE_SIZE}
            # The shop refuses filters next to page_info: the cursor carries them.
            params.update({"page_info": run.cursor} if run.cursor else filters)
            page = client.rest("GET", "products.json", params=params)
            products = page.body.get("products") if isinstance(page.body, dict) else None
            if not isinstance(products, list):
                return _finish(run, error="The shop answered the product list with something that is not a product list.")
            _page_apply(run, products)
            next_cursor = _page_info(page.links.get("next"))
            run.cursor = next_cursor if len(next_cursor) <= 500 else ""
            run.save(update_fields=["cursor", "done", "photos_added", "updated_since", "error", "updated_at"])
            if not next_cursor:
                return _finish(run)
            if not run.cursor:
                return _finish(run, error="The shop's page cursor is too long to store; the import stopped after "
                               f"{run.done} products. Try again; if it recurs, report it.")
            if time.monotonic() > slice_ends:
                with transaction.atomic():
                    _enqueue(run)  # the rest in a new task, from the stored cursor
                logger.info("storefront.sync.continued", extra={"run_id": run.pk, "done": run.done})
                return run
    except StorefrontError as exc:
        return _finish(run, error=exc.message)
    except CredentialsUnreadable:
        return _finish(run, error="Vitrine cannot read this storefront's stored access token (the credentials key changed); connect the storefront again.")
    except Exception:
        logger.exception("storefront.sync.crashed", extra={"run_id": run.pk})
        _finish(run, error="The import stopped on an error inside Vitrine; it has been logged. Start it again.")
        raise


def _page_apply(run: SyncRun, products: list) -> None:
    """Apply one page's products and import their images; moves `done` and the mark."""
    connection = run.connection
    for payload in products:
        if not isinstance(payload, dict) or "id" not in payload:
            continue
        try:
            link = services.storefront_product_apply(connection=connection, payload=payload)
        except ValidationError as exc:
            reason = "; ".join(exc.messages)
            logger.warning("storefront.sync.product_skipped", extra={"run_id": run.pk, "remote_id": str(payload.get("id")), "reason": reason})
            if len(run.error) < 800:  # the first few, in words; the log has them all
                run.error = f"{run.error} Product {payload.get('id')} was not imported: {reason}".strip()[:1000]
            run.done += 1
            continue
        if link is None:  # unchanged since the last sync (or deleted): its images may still be new
            link = StorefrontProduct.objects.filter(connection=connection, remote_id=str(payload["id"])).select_related("product").first()
        if link is not None and isinstance(payload.get("images"), list) and payload["images"]:
            run.photos_added += services.storefront_product_images_import(connection=connection, link=link, images=payload["images"], user=run.created_by)
            run.save(update_fields=["photos_added", "updated_at"])  # downloads are slow: show life
        updated_at = services.remote_time(payload.get("updated_at"))
        if run.updated_since is None or updated_at > run.updated_since:
            run.updated_since = updated_at
        run.done += 1


def sync_due() -> int:
    """The worker loop's round: send again the runs that stopped moving (a lost message or a
    dead worker; they go on from their cursor), and queue an incremental sync for each active
    connection with no run in the last VITRINE_STOREFRONT_SYNC_SECONDS (0: no schedule).
    Returns the runs queued or sent. Safe from many workers at once (one live run per shop)."""
    now = timezone.now()
    sent = 0
    stale = now - timedelta(seconds=settings.VITRINE_STOREFRONT_SYNC_STALE_SECONDS)
    for run in SyncRun.objects.filter(status__in=ACTIVE, updated_at__lt=stale):
        with transaction.atomic():
            touched = SyncRun.objects.filter(pk=run.pk, status__in=ACTIVE, updated_at__lt=stale).update(status=RunStatus.QUEUED, updated_at=now)
            if touched:
                _enqueue(run)
                sent += 1
    every = settings.VITRINE_STOREFRONT_SYNC_SECONDS
    if every <= 0:
        return sent
    busy = SyncRun.objects.filter(Q(created_at__gte=now - timedelta(seconds=every)) | Q(status__in=ACTIVE)).values("connection_id")
    due = StorefrontConnection.objects.filter(status=ConnectionStatus.ACTIVE).exclude(access_token_encrypted="").exclude(pk__in=busy)
    for connection in due:
        try:
            sync_request(connection=connection, full=False)
            sent += 1
        except ValidationError:
            continue
    return sent
