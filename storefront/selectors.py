"""Every read of the storefront connector, scoped to the caller's workspace."""
from __future__ import annotations

from django.db.models import QuerySet

from catalog.models import Workspace
from catalog.selectors import get_or_404

from .models import StorefrontConnection


def connection_list(*, workspace: Workspace) -> QuerySet[StorefrontConnection]:
    return StorefrontConnection.objects.filter(workspace=workspace)


def connection_get(*, workspace: Workspace, connection_id) -> StorefrontConnection:
    return get_or_404(connection_list(workspace=workspace), connection_id)


def connection_for_shop(*, shop_domain: str) -> StorefrontConnection | None:
    """The one connection a shop's webhook belongs to (webhooks carry no workspace)."""
    return StorefrontConnection.objects.filter(shop_domain=shop_domain).first()
