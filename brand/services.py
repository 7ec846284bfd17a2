"""Every write of brand kits and scene presets, and the snapshots recipes keep of them."""
from __future__ import annotations

import hashlib
import io
import json
import re
import struct

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from PIL import Image

from catalog.models import Workspace
from generation.backdrop.styles import DEFAULT_PALETTE as BACKDROP_DEFAULT_PALETTE
from generation.backdrop.styles import STYLE_NAMES
from generation.pipelines.base import SamplingRules
from generation.registry import MODELS, get_backend

from .models import BrandKit, LoraAdapter, ScenePreset

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")

_KIT_FIELDS = ("name", "palette", "prompt_fragment", "default_negative_prompt", "banned_terms", "default_channels", "is_default")
_PRESET_FIELDS = ("name", "slug", "model", "style", "prompt", "negative_prompt", "scheduler", "steps", "guidance", "strength", "is_default")
#: What a preset's model samples with; each backend's rules say what it accepts.
_SAMPLING_FIELDS = ("scheduler", "steps", "guidance", "strength")


def _check_palette(palette) -> list[str]:
    if not isinstance(palette, list) or not 2 <= len(palette) <= 3 or not all(isinstance(c, str) and HEX.match(c) for c in palette):
        raise ValidationError({"palette": 'Give 2 or 3 colours as "#rrggbb" (backdrop, surface, accent).'})
    return [c.lower() for c in palette]


def _check_channels(channels) -> list[str]:
    from generation.preflight import CHANNELS

    unknown = [c for c in channels or [] if c not in CHANNELS]
    if unknown:
        raise ValidationError({"default_channels": f"Unknown channel(s): {', '.join(unknown)}. Known: {', '.join(CHANNELS)}."})
    return list(channels or [])


def _save_versioned(instance, fields: dict, allowed: tuple[str, ...], *, unique_message: str):
    for name, value in fields.items():
        if name not in allowed:
            raise TypeError(f"unexpected field {name!r}")
        setattr(instance, name, value)
    try:
        with transaction.atomic():
            if instance.is_default:
                type(instance).objects.filter(workspace=instance.workspace, is_default=True).exclude(pk=instance.pk).update(is_default=False)
            if instance.pk:
                instance.version += 1
            instance.save()
    except IntegrityError:
        raise ValidationError(unique_message) from None
    return instance


def brand_kit_create(*, workspace: Workspace, name: str, palette: list[str], **fields) -> BrandKit:
    kit = BrandKit(workspace=workspace)
    fields.update(name=name, palette=_check_palette(palette))
    if "default_channels" in fields:
        fields["default_channels"] = _check_channels(fields["default_channels"])
    return _save_versioned(kit, fields, _KIT_FIELDS, unique_message=f"A brand kit called '{name}' already exists.")


def brand_kit_update(*, kit: BrandKit, **fields) -> BrandKit:
    if "palette" in fields:
        fields["palette"] = _check_palette(fields["palette"])
    if "default_channels" in fields:
        fields["default_channels"] = _check_channels(fields["default_channels"])
    return _save_versioned(kit, fields, _KIT_FIELDS, unique_message=f"A brand kit called '{fields.get('name', kit.name)}' already exists.")


def lora_add(*, kit: BrandKit, name: str, data: bytes, weight: float = 1.0) -> LoraAdapter:
    """Attach a LoRA adapter (a .safetensors file) to a brand kit; bumps the kit's version."""
    if not _is_safetensors(data):
        raise ValidationError({"file": "This is not a LoRA adapter file (.safetensors)."})
    sha = hashlib.sha256(data).hexdigest()
    stored = default_storage.save(f"brand/{kit.workspace_id}/{kit.pk}/loras/{slugify(name)}-{sha[:12]}.safetensors", ContentFile(data))
    try:
        with transaction.atomic():
            adapter = LoraAdapter.objects.create(brand_kit=kit, name=slugify(name), file=stored, sha256=sha, weight=weight)
            BrandKit.objects.filter(pk=kit.pk).update(version=kit.version + 1)
            kit.version += 1
    except IntegrityError:
        default_storage.delete(stored)
        raise ValidationError({"name": f"This brand kit already has a LoRA called '{name}'."}) from None
    return adapter


def _is_safetensors(data: bytes) -> bool:
    # The format: an 8-byte little-endian header length, then that many bytes of JSON.
    if len(data) < 10:
        return False
    header_len = struct.unpack("<Q", data[:8])[0]
    if header_len > len(data) - 8:
        return False
    try:
        return isinstance(json.loads(data[8 : 8 + header_len]), dict)
    except ValueError:
        return False


def preset_create(*, workspace: Workspace, name: str, **fields) -> ScenePreset:
    """A new scene preset. Sampling settings it does not give are its model's defaults (the
    bundled model's, when it names no model); the model must be able to do what it asks."""
    fields.setdefault("slug", slugify(name))
    fields["name"] = name
    fields.setdefault("model", ScenePreset._meta.get_field("model").default)
    rules = _model_rules(fields["model"])
    for field in _SAMPLING_FIELDS:
        fields.setdefault(field, getattr(rules, field))
    _check_sampling(rules, fields)
    _check_style(fields["model"], fields.get("style", ""))
    return _save_versioned(ScenePreset(workspace=workspace), fields, _PRESET_FIELDS, unique_message=f"A preset '{fields['slug']}' already exists.")


def preset_update(*, preset: ScenePreset, **fields) -> ScenePreset:
    """Change a preset; what it will sample with (the stored values with these changes) must
    suit its model, so a new model is checked against the stored scheduler and guidance."""
    merged = {field: getattr(preset, field) for field in ("model", *_SAMPLING_FIELDS)} | fields
    _check_sampling(_model_rules(merged["model"]), merged)
    _check_style(merged["model"], fields.get("style", preset.style))
    return _save_versioned(preset, fields, _PRESET_FIELDS, unique_message="Another preset already uses that slug.")


def _model_rules(model: str) -> SamplingRules:
    if model not in MODELS:
        raise ValidationError({"model": f"Unknown model '{model}'. Known: {', '.join(MODELS)}."})
    return get_backend(MODELS[model].backend).rules


def _check_style(model: str, style: str) -> None:
    # Only the bundled model draws named styles; the diffusion models read the prompt.
    if style and MODELS[model].backend == "backdrop" and style not in STYLE_NAMES:
        raise ValidationError({"style": f"backdrop-mini has no style '{style}'. Choose one of: {', '.join(STYLE_NAMES)}."})


def _check_sampling(rules: SamplingRules, values: dict) -> None:
    if problems := rules.problems(**{field: values[field] for field in _SAMPLING_FIELDS}):
        raise ValidationError(problems)


def preset_thumbnail_set(*, preset: ScenePreset, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="WEBP", quality=85)
    name = default_storage.save(f"brand/{preset.workspace_id}/presets/{preset.slug}-v{preset.version}.webp", ContentFile(buffer.getvalue()))
    ScenePreset.objects.filter(pk=preset.pk).update(thumbnail=name)
    preset.thumbnail.name = name


def brand_kit_snapshot(kit: BrandKit) -> dict:
    """What a recipe keeps of a brand kit: enough to make the same image again."""
    return {
        "id": kit.pk,
        "version": kit.version,
        "name": kit.name,
        "palette": kit.palette,
        "prompt_fragment": kit.prompt_fragment,
        "default_negative_prompt": kit.default_negative_prompt,
        "loras": [{"name": a.name, "file": a.file.name, "sha256": a.sha256, "weight": a.weight} for a in kit.loras.order_by("name")],
    }


def preset_snapshot(preset: ScenePreset) -> dict:
    return {"id": preset.pk, "version": preset.version, **{f: getattr(preset, f) for f in _PRESET_FIELDS if f != "is_default"}}


# Defaults every workspace starts with ------------------------------------------------------

DEFAULT_PRESETS = (
    ("Studio white", "studio-white", "clean white studio sweep, soft even light"),
    ("Studio colour", "studio-colour", "coloured studio wall and floor in the brand colours"),
    ("Marble table", "marble", "product on a marble table top, soft daylight"),
    ("Wood table", "wood", "product on a warm wooden table top"),
    ("Concrete", "concrete", "product on raw concrete, architectural light"),
    ("Linen", "linen", "product on natural linen fabric"),
    ("Pastel sweep", "pastel-sweep", "soft pastel paper sweep with a gentle glow"),
)
DEFAULT_PALETTE = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in BACKDROP_DEFAULT_PALETTE]


def palette_rgb(palette: list[str]) -> list[tuple[int, int, int]]:
    """A brand palette ("#rrggbb" strings) as RGB byte triples."""
    return [tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5)) for colour in palette]


def workspace_defaults_ensure(*, workspace: Workspace) -> None:
    """A default brand kit and the bundled model's presets, once per workspace (idempotent)."""
    with transaction.atomic():
        if not BrandKit.objects.filter(workspace=workspace).exists():
            brand_kit_create(
                workspace=workspace, name="House style", palette=DEFAULT_PALETTE, is_default=True,
                default_channels=["square-2048"], default_negative_prompt="text, watermark, logo, people",
            )
        for index, (name, style, prompt) in enumerate(DEFAULT_PRESETS):
            if ScenePreset.objects.filter(workspace=workspace, slug=style).exists():
                continue
            preset = preset_create(
                workspace=workspace, name=name, slug=style, model="backdrop-mini", style=style, prompt=prompt,
                is_default=index == 0,
            )
            preset_thumbnail_set(preset=preset, image=_preset_thumbnail(style))


def _preset_thumbnail(style: str) -> Image.Image:
    # The procedural reference scene the bundled model was trained to make, in the default
    # palette: what the preset looks like, without loading the model in a web request.
    import numpy as np

    from generation.backdrop.scenes import render_scene

    palette = np.array(BACKDROP_DEFAULT_PALETTE, np.float32) / 255.0
    scene = render_scene(seed=7, size=(192, 192), style=style, palette=palette)
    return Image.fromarray(np.clip(np.rint(scene.image * 255), 0, 255).astype("uint8"))
