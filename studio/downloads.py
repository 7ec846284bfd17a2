"""Files people take away: a ZIP of chosen assets with their manifest, and the audit trail as
CSV. Reads only; built in a temporary file so a large selection never sits in memory."""
from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from typing import Iterable, Iterator

from .models import Asset, AuditEvent, Review

MANIFEST_COLUMNS = [
    "file", "asset_id", "product_handle", "product_sku", "product_title", "photo", "channel", "width", "height", "variant",
    "seed", "model", "preset", "preset_version", "brand_kit", "brand_kit_version", "cutout_revision", "sha256",
    "lock_locked_pixels", "lock_changed_pixels", "lock_transform_scale", "gates_passed", "review_state", "decided_by", "decided_at",
]


def _decisions(assets: list[Asset]) -> dict[int, Review]:
    latest: dict[int, Review] = {}
    rows = Review.objects.filter(asset__in=assets).exclude(decision="").select_related("decided_by").order_by("asset_id", "-decided_at")
    for review in rows:
        latest.setdefault(review.asset_id, review)
    return latest


def asset_file_name(asset: Asset) -> str:
    product = asset.photo.product.handle if asset.photo.product_id else f"photo-{asset.photo_id}"
    return f"{product}/{asset.channel}-v{asset.variant}-asset{asset.pk}.png"


def manifest_rows(assets: list[Asset]) -> list[dict]:
    decisions = _decisions(assets)
    rows = []
    for asset in assets:
        plan, cert = asset.recipe.get("plan", {}), asset.lock_certificate
        product = asset.photo.product if asset.photo.product_id else None
        decision = decisions.get(asset.pk)
        rows.append({
            "file": asset_file_name(asset),
            "asset_id": asset.pk,
            "product_handle": product.handle if product else "",
            "product_sku": product.sku if product else "",
            "product_title": product.title if product else "",
            "photo": asset.photo.original_name,
            "channel": asset.channel,
            "width": asset.width,
            "height": asset.height,
            "variant": asset.variant,
            "seed": asset.seed,
            "model": plan.get("model", ""),
            "preset": plan.get("preset", {}).get("name", ""),
            "preset_version": plan.get("preset", {}).get("version", ""),
            "brand_kit": plan.get("brand_kit", {}).get("name", ""),
            "brand_kit_version": plan.get("brand_kit", {}).get("version", ""),
            "cutout_revision": asset.recipe.get("cutout", {}).get("revision", ""),
            "sha256": asset.sha256,
            "lock_locked_pixels": cert.get("locked_pixels"),
            "lock_changed_pixels": cert.get("changed_pixels"),
            "lock_transform_scale": cert.get("transform", {}).get("scale"),
            "gates_passed": asset.gates_passed,
            "review_state": asset.review_state,
            "decided_by": decision.decided_by.email if decision and decision.decided_by else "",
            "decided_at": decision.decided_at.isoformat() if decision and decision.decided_at else "",
        })
    return rows


def assets_zip(assets: list[Asset]) -> tempfile.SpooledTemporaryFile:
    """The assets' PNGs (stored, not recompressed: PNG is compressed already), manifest.csv
    and manifest.json (the latter with each asset's full recipe, certificate and gates)."""
    rows = manifest_rows(assets)
    out = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for asset, row in zip(assets, rows):
            with asset.file.open("rb") as src, archive.open(row["file"], "w") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    dst.write(chunk)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        archive.writestr("manifest.csv", text.getvalue())
        full = [
            {**row, "recipe": asset.recipe, "lock_certificate": asset.lock_certificate, "gates": asset.gates}
            for asset, row in zip(assets, rows)
        ]
        archive.writestr("manifest.json", json.dumps({"assets": full}, indent=2, sort_keys=True, default=str))
    out.seek(0)
    return out


AUDIT_COLUMNS = ["time", "actor", "action", "photo", "cutout", "asset", "detail"]


def audit_csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The trail as CSV lines, one event a line (for a streaming response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow(AUDIT_COLUMNS)
    yield flush()
    for event in events.iterator(chunk_size=500) if hasattr(events, "iterator") else events:
        writer.writerow([
            event.created_at.isoformat(), event.actor_email, event.get_verb_display(), event.photo_id or "", event.cutout_id or "",
            event.asset_id or "", json.dumps(event.detail, sort_keys=True, ensure_ascii=False),
        ])
        yield flush()

