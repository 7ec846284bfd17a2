"""Every read of the storefront connector, scoped to the caller's workspace."""
from __future__ import annotations

from django.db.models import Count, Exists, F, Max, OuterRef, Prefetch, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from catalog.models import Workspace
from catalog.selectors import get_or_404
from studio.models import ReviewState
from studio.selectors import AssetFilters, asset_list

from .models import Export, StorefrontConnection, SyncRun


def connection_list(*, workspace: Workspace) -> QuerySet[StorefrontConnection]:
    return StorefrontConnection.objects.filter(workspace=workspace)


def connection_get(*, workspace: Workspace, connection_id) -> StorefrontConnection:
    return get_or_404(connection_list(workspace=workspace), connection_id)


def connection_for_shop(*, shop_domain: str) -> StorefrontConnection | None:
    """The one connection a shop's webhook belongs to (webhooks carry no workspace)."""
    return StorefrontConnection.objects.filter(shop_domain=shop_domain).first()


def sync_latest(*, connection: StorefrontConnection) -> SyncRun | None:
    """The connection's newest import or sync (the page's progress bar), or None."""
    prefetched = getattr(connection, "latest_sync_runs", None)
    if prefetched is not None:  # connection_list_with_sync loaded it with the list
        return prefetched[0] if prefetched else None
    return SyncRun.objects.filter(connection=connection).order_by("-created_at", "-pk").first()


def connection_list_with_sync(*, workspace: Workspace) -> QuerySet[StorefrontConnection]:
    """connection_list with each connection's newest run loaded in one more query (a window
    picks the newest per connection, however many runs the schedule has made)."""
    newest = SyncRun.objects.annotate(
        newest_rank=Window(RowNumber(), partition_by=[F("connection_id")], order_by=[F("created_at").desc(), F("pk").desc()])
    ).filter(newest_rank=1)
    return connection_list(workspace=workspace).prefetch_related(Prefetch("sync_runs", queryset=newest, to_attr="latest_sync_runs"))


def webhook_health(*, connection: StorefrontConnection) -> dict:
    """What the Storefronts page says about a connection's webhooks: when the last one came,
    how many arrived, how many could not be applied."""
    return connection.webhook_deliveries.aggregate(
        last_received_at=Max("received_at"), received=Count("pk"), errors=Count("pk", filter=~Q(error=""))
    )


def publishable_assets(*, workspace: Workspace, connection: StorefrontConnection) -> QuerySet:
    """Approved images of the connection's products that this shop does not hold yet (no
    export of these exact bytes to it), newest first: the page's "Ready to publish" list."""
    sent = Export.objects.filter(connection=connection, asset=OuterRef("pk"), content_sha256=OuterRef("sha256"))
    return (
        asset_list(workspace=workspace, filters=AssetFilters(review_state=ReviewState.APPROVED))
        .filter(photo__product__storefront_link__connection=connection)
        .exclude(Exists(sent))
    )


def export_list(*, workspace: Workspace, connection=None, status: str | None = None) -> QuerySet[Export]:
    """The workspace's exports, newest first; `connection` (a row or an id) and `status` narrow it."""
    exports = Export.objects.filter(workspace=workspace).select_related("connection", "asset", "asset__photo__product")
    if connection is not None:
        exports = exports.filter(connection_id=getattr(connection, "pk", connection))
    if status:
        exports = exports.filter(status=status)
    return exports


def export_get(*, workspace: Workspace, export_id) -> Export:
    return get_or_404(export_list(workspace=workspace), export_id)
