"""Reads of brand kits and presets, scoped to the caller's workspace (a kit's or preset's
history and logo are read through the row, which was fetched scoped)."""
from __future__ import annotations

from django.db.models import QuerySet

from catalog.models import Workspace
from catalog.selectors import get_or_404
from generation.registry import MODELS

from .models import BrandKit, BrandKitVersion, PresetVersion, ScenePreset


def brand_kit_list(*, workspace: Workspace) -> QuerySet[BrandKit]:
    return BrandKit.objects.filter(workspace=workspace).prefetch_related("loras")


def brand_kit_get(*, workspace: Workspace, kit_id) -> BrandKit:
    return get_or_404(brand_kit_list(workspace=workspace), kit_id)


def preset_list(*, workspace: Workspace) -> QuerySet[ScenePreset]:
    return ScenePreset.objects.filter(workspace=workspace)


def preset_get(*, workspace: Workspace, preset_id) -> ScenePreset:
    return get_or_404(preset_list(workspace=workspace), preset_id)


def installed_models() -> list[str]:
    """Registered scene models whose folder is present under the models root (what
    `manage.py models list` calls installed), in registry order."""
    return [name for name, spec in MODELS.items() if spec.path.is_dir()]


def scene_models() -> list[dict]:
    """The installed models as a preset editor needs them: name, description, whether it
    reads the prompt, and its sampling rules (schedulers, defaults, ranges)."""
    from generation.registry import get_backend

    rows = []
    for name in installed_models():
        spec = MODELS[name]
        rules = get_backend(spec.backend).rules
        rows.append({
            "name": name, "description": spec.description, "reads_prompt": spec.reads_prompt, "title": rules.title,
            "schedulers": list(rules.schedulers), "steps": rules.steps, "guidance": rules.guidance, "strength": rules.strength,
            "steps_range": list(rules.steps_range), "guidance_range": list(rules.guidance_range), "strength_range": list(rules.strength_range),
        })
    return rows


# History -----------------------------------------------------------------------------------

KIT_FIELD_LABELS = {
    "name": "Name", "palette": "Palette", "palette_max_delta_e": "Palette tolerance", "prompt_fragment": "Prompt fragment",
    "default_negative_prompt": "Negative prompt", "banned_terms": "Banned terms", "default_channels": "Default channels",
    "logo": "Logo", "loras": "LoRAs",
}
PRESET_FIELD_LABELS = {
    "name": "Name", "slug": "Slug", "model": "Model", "style": "Style", "prompt": "Prompt", "negative_prompt": "Negative prompt",
    "scheduler": "Scheduler", "steps": "Steps", "guidance": "Guidance", "strength": "Strength",
}


def _shown(value) -> str:
    if value in ("", None, []):
        return "(empty)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:g}"
    text = str(value)
    return f"“{text[:60]}…”" if len(text) > 60 else f"“{text}”"


def _list_change(before: list, after: list) -> str:
    added = [v for v in after if v not in before]
    removed = [v for v in before if v not in after]
    parts = [f"added {', '.join(map(str, added))}" if added else "", f"removed {', '.join(map(str, removed))}" if removed else ""]
    return "; ".join(p for p in parts if p) or "reordered"


def snapshot_changes(before: dict | None, after: dict, labels: dict[str, str]) -> list[dict]:
    """What changed from one snapshot to the next, field by field, in words:
    ``[{"field", "label", "text", "before", "after"}, ...]``; empty when `before` is None."""
    if before is None:
        return []
    changes = []
    for field, label in labels.items():
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        if field in ("banned_terms", "default_channels"):
            text = _list_change(old or [], new or [])
        elif field == "loras":
            old_names = [f"{lora['name']}" for lora in old or []]
            new_names = [f"{lora['name']}" for lora in new or []]
            text = _list_change(old_names, new_names) if old_names != new_names else "weights or files replaced"
        elif field == "logo":
            text = "new logo" if new else "logo removed"
        else:
            text = f"{_shown(old)} → {_shown(new)}"
        changes.append({"field": field, "label": label, "text": text, "before": old, "after": new})
    return changes


def _with_changes(rows: list, labels: dict[str, str], limit: int) -> list:
    # rows: newest first, one more than shown, so the oldest shown row has its predecessor.
    for index, row in enumerate(rows[:limit]):
        previous = rows[index + 1] if index + 1 < len(rows) else None
        if previous is not None and previous.version != row.version - 1:
            previous = None
        row.changes = snapshot_changes(previous.snapshot if previous else None, row.snapshot, labels)
        row.is_first = previous is None
    return rows[:limit]


def brand_kit_versions(*, kit: BrandKit, limit: int = 50) -> list[BrandKitVersion]:
    """The kit's recorded versions, newest first (at most `limit`), each with `.changes`
    (see :func:`snapshot_changes`) against the version before it."""
    rows = list(BrandKitVersion.objects.filter(kit=kit).select_related("created_by").order_by("-version")[: limit + 1])
    return _with_changes(rows, KIT_FIELD_LABELS, limit)


def preset_versions(*, preset: ScenePreset, limit: int = 50) -> list[PresetVersion]:
    """The preset's recorded versions, newest first, each with `.changes`."""
    rows = list(PresetVersion.objects.filter(preset=preset).select_related("created_by").order_by("-version")[: limit + 1])
    return _with_changes(rows, PRESET_FIELD_LABELS, limit)


# Logo --------------------------------------------------------------------------------------


def brand_kit_logo_palette(*, kit: BrandKit, k: int = 3) -> list[tuple[str, float]]:
    """Up to `k` colours proposed from the kit's logo: its dominant colours as
    ``[("#rrggbb", share), ...]``, largest share first (backdrop, surface, accent). Transparent
    pixels are left out. Empty when the kit has no logo."""
    if not kit.logo:
        return []
    import numpy as np
    from PIL import Image

    from generation.colour import dominant_colours, rgb_to_hex

    with kit.logo.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    mask = None
    if image.mode == "RGBA":
        mask = np.asarray(image.getchannel("A")) >= 128
    rgb = np.asarray(image.convert("RGB"))
    return [(rgb_to_hex(colour), share) for colour, share in dominant_colours(rgb, mask=mask, k=k)]
