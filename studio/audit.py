"""The audit trail's one writer. Every service and worker step that the trail must show calls
`audit_record` inside its own transaction, so an event exists exactly when its change does."""
from __future__ import annotations

from .models import AuditEvent


def audit_record(*, workspace_id: int, verb: str, actor=None, photo=None, cutout=None, asset=None, detail: dict | None = None) -> AuditEvent:
    """Append one event. `detail` keeps what a reader needs after the rows it names are gone."""
    return AuditEvent.objects.create(
        workspace_id=workspace_id,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_email=getattr(actor, "email", "") or "",
        verb=verb,
        photo=photo,
        cutout=cutout,
        asset=asset,
        detail=detail or {},
    )
