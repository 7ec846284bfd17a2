"""Every write of brand kits and scene presets, and the snapshots recipes keep of them.

Each change through these services bumps the row's `version` and records what the row became
(its snapshot) as a BrandKitVersion / PresetVersion row, in the same transaction."""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import struct
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from PIL import Image

from catalog.models import User, Workspace
from generation.backdrop.styles import DEFAULT_PALETTE as BACKDROP_DEFAULT_PALETTE
from generation.backdrop.styles import STYLE_NAMES
from generation.decoding import UploadRejected, validate_image
from generation.pipelines.base import SamplingRules
from generation.prompts import normalise_text
from generation.registry import MODELS, get_backend

from .models import BrandKit, BrandKitVersion, LoraAdapter, PresetVersion, ScenePreset
from .selectors import installed_models

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")

_KIT_FIELDS = (
    "name", "palette", "prompt_fragment", "default_negative_prompt", "banned_terms", "default_channels",
    "palette_max_delta_e", "is_default",
)
_PRESET_FIELDS = ("name", "slug", "model", "style", "prompt", "negative_prompt", "scheduler", "steps", "guidance", "strength", "is_default")
#: What a preset's model samples with; each backend's rules say what it accepts.
_SAMPLING_FIELDS = ("scheduler", "steps", "guidance", "strength")

#: Limits on a kit's banned terms: enough for any brand book, small enough to check on every job.
MAX_BANNED_TERMS = 200
MAX_BANNED_TERM_CHARS = 100
#: Palette adherence tolerance (CIEDE2000): 1 is barely visible, 100 accepts anything.
DELTA_E_RANGE = (1.0, 100.0)
#: Largest LoRA adapter accepted (SDXL LoRAs are tens to hundreds of MB).
LORA_MAX_BYTES = 1024 * 1024 * 1024
#: A safetensors header larger than this is not a LoRA (the format's own reader caps it too).
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
#: Logos: the file size cap, and the long side of the copy that is stored. The pixel cap is
#: the photos' (validate_image sets it as Pillow's process-wide bomb limit, so one number).
LOGO_MAX_BYTES = 10 * 1024 * 1024
LOGO_SIDE = 1024
_CHUNK = 1024 * 1024


# Checks ------------------------------------------------------------------------------------


def _check_name(name, *, field: str = "name", max_length: int = 120) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({field: "Give it a name."})
    if len(name.strip()) > max_length:
        raise ValidationError({field: f"Keep the name to {max_length} characters; this one has {len(name.strip())}."})
    return name.strip()


def _check_palette(palette) -> list[str]:
    if not isinstance(palette, list) or not 2 <= len(palette) <= 3 or not all(isinstance(c, str) and HEX.match(c) for c in palette):
        raise ValidationError({"palette": 'Give 2 or 3 colours as "#rrggbb" (backdrop, surface, accent).'})
    return [c.lower() for c in palette]


def _check_channels(channels) -> list[str]:
    from generation.preflight import CHANNELS

    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ValidationError({"default_channels": f"Give the default channels as a list of names, e.g. [\"square-2048\"]. Known: {', '.join(CHANNELS)}."})
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ValidationError({"default_channels": f"Unknown channel(s): {', '.join(unknown)}. Known: {', '.join(CHANNELS)}."})
    return list(dict.fromkeys(channels))


def _check_banned_terms(terms) -> list[str]:
    """A list of words or phrases; duplicates (as banned_term_in compares them) dropped."""
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ValidationError({"banned_terms": 'Give the banned terms as a list of words or phrases, e.g. ["cheap", "knife"].'})
    terms = [t.strip() for t in terms]
    if any(not t for t in terms):
        raise ValidationError({"banned_terms": "A banned term cannot be empty; remove the blank entry."})
    if long := next((t for t in terms if len(t) > MAX_BANNED_TERM_CHARS), None):
        raise ValidationError({"banned_terms": (
            f"Each banned term is at most {MAX_BANNED_TERM_CHARS} characters; '{long[:40]}…' has {len(long)}."
        )})
    if len(terms) > MAX_BANNED_TERMS:
        raise ValidationError({"banned_terms": f"A brand kit can ban at most {MAX_BANNED_TERMS} terms; this list has {len(terms)}."})
    unique: dict[str, str] = {}
    for term in terms:
        unique.setdefault(normalise_text(term), term)
    return list(unique.values())


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_delta_e(value) -> float:
    low, high = DELTA_E_RANGE
    if not _is_number(value) or not low <= value <= high:
        shown = f"{value:g}" if _is_number(value) else repr(value)
        raise ValidationError({"palette_max_delta_e": (
            f"The palette tolerance is a colour difference (CIEDE2000) from {low:g} (strict) to {high:g} (anything goes);"
            f" {shown} is not in that range. 20 suits most brands."
        )})
    return float(value)


def _check_kit_fields(fields: dict) -> dict:
    checks = {
        "name": _check_name, "palette": _check_palette, "default_channels": _check_channels,
        "banned_terms": _check_banned_terms, "palette_max_delta_e": _check_delta_e,
    }
    errors: dict[str, list[str]] = {}
    for name, check in checks.items():
        if name in fields:
            try:
                fields[name] = check(fields[name])
            except ValidationError as exc:
                errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return fields


# Versioned saves ---------------------------------------------------------------------------


def _save_versioned(instance, fields: dict, allowed: tuple[str, ...], *, unique_error: dict, by: User | None):
    for name, value in fields.items():
        if name not in allowed:
            raise TypeError(f"unexpected field {name!r}")
        setattr(instance, name, value)
    # Lengths, choices and slugs as the model declares them (constraints are the database's:
    # the default flag is moved below, inside the transaction).
    instance.full_clean(validate_unique=False, validate_constraints=False)
    is_kit = isinstance(instance, BrandKit)
    try:
        with transaction.atomic():
            if instance.pk:
                # The stored version, under a row lock: two saves at once make two versions,
                # not one version number twice.
                current = type(instance).objects.select_for_update().values_list("version", flat=True).get(pk=instance.pk)
                instance.version = current + 1
            if instance.is_default:
                type(instance).objects.filter(workspace=instance.workspace, is_default=True).exclude(pk=instance.pk).update(is_default=False)
            instance.save()
            if is_kit:
                BrandKitVersion.objects.create(kit=instance, version=instance.version, snapshot=brand_kit_snapshot(instance), created_by=by)
            else:
                PresetVersion.objects.create(preset=instance, version=instance.version, snapshot=preset_snapshot(instance), created_by=by)
    except IntegrityError:
        raise ValidationError(unique_error) from None
    return instance


def brand_kit_create(*, workspace: Workspace, name: str, palette: list[str], by: User | None = None, **fields) -> BrandKit:
    """A new brand kit (version 1, recorded in its history). Raises ValidationError naming
    each field that is wrong: palette of 2–3 "#rrggbb" colours, known channels, banned terms
    as a list of non-empty strings, a palette tolerance within 1..100, a unique name."""
    fields = _check_kit_fields({**fields, "name": name, "palette": palette})
    return _save_versioned(
        BrandKit(workspace=workspace), fields, _KIT_FIELDS, by=by,
        unique_error={"name": f"A brand kit called '{fields['name']}' already exists."},
    )


def brand_kit_update(*, kit: BrandKit, by: User | None = None, **fields) -> BrandKit:
    """Change a brand kit: the same checks as :func:`brand_kit_create` on the fields given;
    bumps its version and records the new snapshot."""
    fields = _check_kit_fields(dict(fields))
    return _save_versioned(
        kit, fields, _KIT_FIELDS, by=by,
        unique_error={"name": f"A brand kit called '{fields.get('name', kit.name)}' already exists."},
    )


def _kit_version_bump(*, kit: BrandKit, by: User | None, **changes) -> BrandKit:
    """Inside a transaction: lock the kit, apply `changes`, bump and record its version."""
    locked = BrandKit.objects.select_for_update().get(pk=kit.pk)
    for name, value in changes.items():
        setattr(locked, name, value)
    locked.version += 1
    locked.save(update_fields=[*changes, "version", "updated_at"])
    BrandKitVersion.objects.create(kit=locked, version=locked.version, snapshot=brand_kit_snapshot(locked), created_by=by)
    for name in (*changes, "version", "updated_at"):
        setattr(kit, name, getattr(locked, name))
    return kit


def brand_kit_logo_set(*, kit: BrandKit, file: BinaryIO, by: User | None = None) -> BrandKit:
    """Store a logo for the kit (JPEG, PNG, WebP, HEIC or AVIF; checked and fully decoded like a photo;
    kept as an upright PNG of at most LOGO_SIDE px); bumps the kit's version. The palette is
    not changed: `brand.selectors.brand_kit_logo_palette` proposes colours from it."""
    size = getattr(file, "size", None)
    if size is None:
        size = file.seek(0, io.SEEK_END)
    try:
        accepted = validate_image(file, size_bytes=size, max_bytes=LOGO_MAX_BYTES, max_pixels=settings.VITRINE_UPLOAD_MAX_PIXELS, working_max_side=LOGO_SIDE)
    except UploadRejected as exc:
        raise ValidationError({"file": exc.message}) from None
    old = kit.logo.name
    stored = default_storage.save(f"brand/{kit.workspace_id}/{kit.pk}/logo-{accepted.working_sha256[:12]}.png", ContentFile(accepted.working_png))
    try:
        with transaction.atomic():
            _kit_version_bump(kit=kit, by=by, logo=stored)
    except Exception:
        default_storage.delete(stored)
        raise
    if old and old != stored:
        # The old file goes once the new name is committed; a rollback keeps both rows right.
        transaction.on_commit(lambda: default_storage.delete(old))
    return kit


def lora_add(*, kit: BrandKit, name: str, data: bytes | BinaryIO, weight: float = 1.0, by: User | None = None) -> LoraAdapter:
    """Attach a LoRA adapter (a .safetensors file) to a brand kit; bumps the kit's version.

    `data` is the file's bytes or a binary file object (an upload Django spooled to disk):
    the size cap is checked from its size before anything is read, only the header is parsed,
    and the weights are hashed and stored in chunks, never held in memory whole."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    size = len(data) if isinstance(data, (bytes, bytearray)) else getattr(stream, "size", None)
    if size is None:
        size = stream.seek(0, io.SEEK_END)
    if size > LORA_MAX_BYTES:
        raise ValidationError({"file": (
            # Bytes, not rounded megabytes: "1,024 MB; up to 1,024 MB" for a byte over tells nobody anything.
            f"This file is {size:,} bytes; the limit for a LoRA adapter is {LORA_MAX_BYTES:,} bytes ({LORA_MAX_BYTES / 1024**2:,.0f} MB)."
        )})
    slug = slugify(name)
    if not slug or len(slug) > 64:
        raise ValidationError({"name": "Name the LoRA with letters, digits and hyphens (at most 64)."})
    if not _is_number(weight) or not -4.0 <= weight <= 4.0:
        raise ValidationError({"weight": "A LoRA's weight is between -4 and 4 (1 applies it as trained)."})
    _check_safetensors(stream, size)
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(chunk)
    sha = digest.hexdigest()
    stream.seek(0)
    stored = default_storage.save(f"brand/{kit.workspace_id}/{kit.pk}/loras/{slug}-{sha[:12]}.safetensors", File(stream, name=f"{slug}.safetensors"))
    try:
        with transaction.atomic():
            adapter = LoraAdapter.objects.create(brand_kit=kit, name=slug, file=stored, sha256=sha, weight=weight)
            _kit_version_bump(kit=kit, by=by)
    except IntegrityError:
        default_storage.delete(stored)
        raise ValidationError({"name": f"This brand kit already has a LoRA called '{slug}'."}) from None
    return adapter


def _check_safetensors(stream: BinaryIO, size: int) -> None:
    # The format: an 8-byte little-endian header length, that many bytes of JSON naming each
    # tensor's dtype, shape and [start, end) offsets, then the tensors' bytes, packed end to
    # end with no gap or overlap and all of them covered. Only the header is read (the weights
    # are not loaded); the rules are the safetensors reader's own, so a file passed here loads
    # on a GPU worker, and a truncated or damaged upload is refused now, not there.
    not_lora = ValidationError({"file": "This is not a LoRA adapter file (.safetensors)."})
    stream.seek(0)
    head = stream.read(8)
    if len(head) < 8:
        raise not_lora
    header_len = struct.unpack("<Q", head)[0]
    if not 2 <= header_len <= min(size - 8, _SAFETENSORS_MAX_HEADER):
        raise not_lora
    try:
        header = json.loads(stream.read(header_len))
    except ValueError:
        raise not_lora from None
    if not isinstance(header, dict):
        raise not_lora
    metadata = header.get("__metadata__")
    if not (metadata is None or isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise not_lora
    spans = []
    for key, tensor in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(tensor, dict):
            raise not_lora
        offsets, shape, itemsize = tensor.get("data_offsets"), tensor.get("shape"), _SAFETENSORS_DTYPES.get(tensor.get("dtype"))
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets) and offsets[0] <= offsets[1]
            and isinstance(shape, list) and all(_is_count(d) for d in shape) and itemsize is not None
        ):
            raise not_lora
        if offsets[1] - offsets[0] != math.prod(shape) * itemsize:
            raise ValidationError({"file": (
                f"This .safetensors file is damaged: its header gives the tensor '{key[:80]}' {offsets[1] - offsets[0]:,} bytes"
                f" where its shape needs {math.prod(shape) * itemsize:,}. Export the LoRA again."
            )})
        spans.append(offsets)
    if not spans:
        raise ValidationError({"file": "This .safetensors file holds no weights."})
    held = size - 8 - header_len
    spans.sort()
    end = 0
    for start, stop in spans:
        if start != end:
            raise ValidationError({"file": "This .safetensors file is damaged: its tensors overlap or leave gaps. Export the LoRA again."})
        end = stop
    if end != held:
        raise ValidationError({"file": (
            f"This .safetensors file is incomplete or damaged: its header describes {end:,} bytes of weights"
            f" and the file holds {held:,}. Upload it again."
        )})


#: Bytes per element of each safetensors dtype a LoRA can hold (the format's whole-byte types).
_SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def preset_create(*, workspace: Workspace, name: str, by: User | None = None, **fields) -> ScenePreset:
    """A new scene preset. Sampling settings it does not give are its model's defaults (the
    bundled model's, when it names no model); the model must be installed and able to do what
    it asks. Bundled-model presets get a thumbnail of their style."""
    fields.setdefault("model", ScenePreset._meta.get_field("model").default)
    _check_installed(fields["model"])
    return _preset_create(workspace=workspace, name=name, by=by, **fields)


def _preset_create(*, workspace: Workspace, name: str, by: User | None, **fields) -> ScenePreset:
    name = _check_name(name)
    fields["name"] = name
    fields.setdefault("slug", slugify(name))
    fields.setdefault("model", ScenePreset._meta.get_field("model").default)
    rules = _model_rules(fields["model"])
    for field in _SAMPLING_FIELDS:
        fields.setdefault(field, getattr(rules, field))
    _check_sampling(rules, fields)
    _check_style(fields["model"], fields.get("style", ""))
    preset = _save_versioned(
        ScenePreset(workspace=workspace), fields, _PRESET_FIELDS, by=by,
        unique_error={"slug": f"A preset '{fields['slug']}' already exists; give this one another name or slug."},
    )
    _thumbnail_refresh(preset)
    return preset


def preset_update(*, preset: ScenePreset, by: User | None = None, **fields) -> ScenePreset:
    """Change a preset; what it will sample with (the stored values with these changes) must
    suit its model, so a new model is checked against the stored scheduler and guidance. A
    model it changes to must be installed."""
    if "name" in fields:
        fields["name"] = _check_name(fields["name"])
    if "model" in fields and fields["model"] != preset.model:
        _check_installed(fields["model"])
    merged = {field: getattr(preset, field) for field in ("model", *_SAMPLING_FIELDS)} | fields
    _check_sampling(_model_rules(merged["model"]), merged)
    _check_style(merged["model"], fields.get("style", preset.style))
    old_style = preset.style
    preset = _save_versioned(preset, fields, _PRESET_FIELDS, by=by, unique_error={"slug": "Another preset already uses that slug."})
    if preset.style != old_style or not preset.thumbnail:
        _thumbnail_refresh(preset)
    return preset


def _model_rules(model) -> SamplingRules:
    if not isinstance(model, str) or model not in MODELS:
        raise ValidationError({"model": f"Unknown model '{model}'. Known: {', '.join(MODELS)}."})
    return get_backend(MODELS[model].backend).rules


def _check_installed(model) -> None:
    _model_rules(model)
    installed = installed_models()
    if model not in installed:
        # No server path in the message: it is shown to brand managers, not to the operator.
        raise ValidationError({"model": (
            f"The model '{model}' is not installed on this server. Ask whoever runs Vitrine to run"
            f" `python manage.py models pull {model}`, or choose an installed model: {', '.join(installed) or 'none'}."
        )})


def _check_style(model: str, style) -> None:
    # Only the bundled model draws named styles; the diffusion models read the prompt and
    # ignore the style, but a style that does not exist is refused for every model.
    if not isinstance(style, str):
        raise ValidationError({"style": f"Give a style name, one of: {', '.join(STYLE_NAMES)}."})
    if style and style not in STYLE_NAMES:
        if MODELS[model].backend == "backdrop":
            raise ValidationError({"style": f"backdrop-mini has no style '{style}'. Choose one of: {', '.join(STYLE_NAMES)}."})
        raise ValidationError({"style": (
            f"There is no style '{style}'. Leave it empty ({MODELS[model].name} follows the prompt) or choose one of: {', '.join(STYLE_NAMES)}."
        )})


def _check_sampling(rules: SamplingRules, values: dict) -> None:
    wrong_type = {}
    if not isinstance(values["steps"], int) or isinstance(values["steps"], bool):
        wrong_type["steps"] = f"Give the number of steps as a whole number ({rules.steps} is typical)."
    for field in ("guidance", "strength"):
        if not _is_number(values[field]):
            wrong_type[field] = f"Give {field} as a number ({getattr(rules, field):g} is typical)."
    if not isinstance(values["scheduler"], str):
        wrong_type["scheduler"] = f"Give a scheduler name, one of: {', '.join(rules.schedulers)}."
    if wrong_type:
        raise ValidationError(wrong_type)
    if problems := rules.problems(**{field: values[field] for field in _SAMPLING_FIELDS}):
        raise ValidationError(problems)


def _thumbnail_refresh(preset: ScenePreset) -> None:
    # The bundled model's presets show the procedural scene of their style; the diffusion
    # models' presets have no picture until someone makes one.
    if MODELS[preset.model].backend == "backdrop" and preset.style:
        old = preset.thumbnail.name
        preset_thumbnail_set(preset=preset, image=_preset_thumbnail(preset.style))
        if old and old != preset.thumbnail.name:
            transaction.on_commit(lambda: default_storage.delete(old))


def preset_thumbnail_set(*, preset: ScenePreset, image: Image.Image) -> None:
    """Store `image` as the preset's thumbnail (WebP), named after its slug and version."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="WEBP", quality=85)
    name = default_storage.save(f"brand/{preset.workspace_id}/presets/{preset.slug}-v{preset.version}.webp", ContentFile(buffer.getvalue()))
    ScenePreset.objects.filter(pk=preset.pk).update(thumbnail=name)
    preset.thumbnail.name = name


def brand_kit_snapshot(kit: BrandKit) -> dict:
    """What a recipe keeps of a brand kit: enough to make the same image again, and what the
    QA gate checks it against (`palette_max_delta_e`)."""
    return {
        "id": kit.pk,
        "version": kit.version,
        "name": kit.name,
        "palette": kit.palette,
        "palette_max_delta_e": kit.palette_max_delta_e,
        "prompt_fragment": kit.prompt_fragment,
        "default_negative_prompt": kit.default_negative_prompt,
        "banned_terms": kit.banned_terms,
        "default_channels": kit.default_channels,
        "logo": kit.logo.name or "",
        "loras": [{"name": a.name, "file": a.file.name, "sha256": a.sha256, "weight": a.weight} for a in kit.loras.order_by("name")],
    }


def preset_snapshot(preset: ScenePreset) -> dict:
    """What a recipe keeps of a scene preset (everything it samples with)."""
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
    """A default brand kit and the bundled model's presets, once per workspace (idempotent).
    The bundled model's presets are made even where its folder is missing (a broken install
    that `manage.py models list` and the job's error name), so every workspace has them."""
    with transaction.atomic():
        if not BrandKit.objects.filter(workspace=workspace).exists():
            brand_kit_create(
                workspace=workspace, name="House style", palette=DEFAULT_PALETTE, is_default=True,
                default_channels=["square-2048"], default_negative_prompt="text, watermark, logo, people",
            )
        for index, (name, style, prompt) in enumerate(DEFAULT_PRESETS):
            if ScenePreset.objects.filter(workspace=workspace, slug=style).exists():
                continue
            _preset_create(
                workspace=workspace, name=name, by=None, slug=style, model="backdrop-mini", style=style, prompt=prompt,
                is_default=index == 0,
            )


def _preset_thumbnail(style: str) -> Image.Image:
    # The procedural reference scene the bundled model was trained to make, in the default
    # palette: what the preset looks like, without loading the model in a web request.
    import numpy as np

    from generation.backdrop.scenes import render_scene

    palette = np.array(BACKDROP_DEFAULT_PALETTE, np.float32) / 255.0
    scene = render_scene(seed=7, size=(192, 192), style=style, palette=palette)
    return Image.fromarray(np.clip(np.rint(scene.image * 255), 0, 255).astype("uint8"))
