"""The brand pages: brand kits (palette, logo, prompt rules, channels, LoRAs, history) and
scene presets. Brand managers and owners only: merchants get 403 here and read kits over the
API. Pages read through brand.selectors and write through one brand.services call each."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from brand import selectors, services

from ..forms import BrandKitForm, LogoForm, LoraForm, PresetForm
from .base import DECIDERS, role_page


def _add_service_errors(form, exc: ValidationError, field_map: dict | None = None) -> None:
    """Show a service's ValidationError next to the form field it names (else on top)."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for field, messages_ in errors.items():
        target = (field_map or {}).get(field, field)
        form.add_error(target if target in form.fields else None, messages_)


@role_page(*DECIDERS)
def brand_kits(request):
    return render(request, "studio/brand/list.html", {
        "kits": list(selectors.brand_kit_list(workspace=request.workspace)),
        "presets": list(selectors.preset_list(workspace=request.workspace)),
        "nav": "brand",
    })


def _kit_context(request, kit, form, *, logo_form=None, lora_form=None, proposal=None) -> dict:
    return {
        "kit": kit,
        "form": form,
        "logo_form": logo_form or LogoForm(),
        "lora_form": lora_form or LoraForm(),
        "versions": selectors.brand_kit_versions(kit=kit) if kit else [],
        "proposal": proposal,
        "lora_max_mb": services.LORA_MAX_BYTES // (1024 * 1024),
        "logo_max_mb": services.LOGO_MAX_BYTES // (1024 * 1024),
        "nav": "brand",
    }


@role_page(*DECIDERS)
def brand_kit_new(request):
    form = BrandKitForm(request.POST or None, initial={
        "palette_0": services.DEFAULT_PALETTE[0], "palette_1": services.DEFAULT_PALETTE[1],
        "use_accent": len(services.DEFAULT_PALETTE) == 3, "palette_2": services.DEFAULT_PALETTE[-1],
        "palette_max_delta_e": 20.0, "default_channels": ["square-2048"],
    })
    if request.method == "POST":
        if form.is_valid():
            try:
                kit = services.brand_kit_create(workspace=request.workspace, by=request.user, **form.service_fields())
            except ValidationError as exc:
                _add_service_errors(form, exc, BrandKitForm.SERVICE_FIELD_MAP)
            else:
                messages.success(request, f"Brand kit “{kit.name}” created.")
                return redirect("brand-kit-detail", kit_id=kit.pk)
        return render(request, "studio/brand/kit.html", _kit_context(request, None, form), status=400)
    return render(request, "studio/brand/kit.html", _kit_context(request, None, form))


@role_page(*DECIDERS)
def brand_kit_detail(request, kit_id: int):
    """The kit's form; ``?palette=logo`` fills the colour pickers with colours from its logo
    (proposed, not saved, until the person saves)."""
    kit = selectors.brand_kit_get(workspace=request.workspace, kit_id=kit_id)
    if request.method == "POST":
        form = BrandKitForm(request.POST)
        if form.is_valid():
            try:
                services.brand_kit_update(kit=kit, by=request.user, **form.service_fields())
            except ValidationError as exc:
                _add_service_errors(form, exc, BrandKitForm.SERVICE_FIELD_MAP)
            else:
                messages.success(request, f"Saved as version {kit.version}.")
                return redirect("brand-kit-detail", kit_id=kit.pk)
        # The failed save set values on the row object; show the stored kit beside the form.
        kit = selectors.brand_kit_get(workspace=request.workspace, kit_id=kit_id)
        return render(request, "studio/brand/kit.html", _kit_context(request, kit, form), status=400)
    initial = BrandKitForm.initial_for(kit)
    proposal = None
    if request.GET.get("palette") == "logo":
        colours = selectors.brand_kit_logo_palette(kit=kit)
        proposal = [{"colour": colour, "percent": round(share * 100)} for colour, share in colours]
        for index, (colour, _share) in enumerate(colours):
            initial[f"palette_{index}"] = colour
        initial["use_accent"] = len(colours) == 3 or initial["use_accent"]
    return render(request, "studio/brand/kit.html", _kit_context(request, kit, BrandKitForm(initial=initial), proposal=proposal))


@role_page(*DECIDERS)
@require_POST
def brand_kit_logo(request, kit_id: int):
    kit = selectors.brand_kit_get(workspace=request.workspace, kit_id=kit_id)
    logo_form = LogoForm(request.POST, request.FILES)
    if logo_form.is_valid():
        try:
            services.brand_kit_logo_set(kit=kit, file=logo_form.cleaned_data["file"], by=request.user)
        except ValidationError as exc:
            _add_service_errors(logo_form, exc)
        else:
            return redirect(reverse("brand-kit-detail", kwargs={"kit_id": kit.pk}) + "?palette=logo")
    form = BrandKitForm(initial=BrandKitForm.initial_for(kit))
    return render(request, "studio/brand/kit.html", _kit_context(request, kit, form, logo_form=logo_form), status=400)


@role_page(*DECIDERS)
@require_POST
def brand_kit_lora(request, kit_id: int):
    kit = selectors.brand_kit_get(workspace=request.workspace, kit_id=kit_id)
    lora_form = LoraForm(request.POST, request.FILES)
    if lora_form.is_valid():
        data = lora_form.cleaned_data
        try:
            # The upload is passed as a file (Django spooled a large one to disk): the service
            # checks its size first and streams it.
            adapter = services.lora_add(kit=kit, name=data["name"], data=data["file"], weight=data["weight"], by=request.user)
        except ValidationError as exc:
            _add_service_errors(lora_form, exc)
        else:
            messages.success(request, f"LoRA “{adapter.name}” added; the kit is now version {kit.version}.")
            return redirect("brand-kit-detail", kit_id=kit.pk)
    form = BrandKitForm(initial=BrandKitForm.initial_for(kit))
    return render(request, "studio/brand/kit.html", _kit_context(request, kit, form, lora_form=lora_form), status=400)


def _preset_context(preset, form) -> dict:
    return {
        "preset": preset,
        "form": form,
        "versions": selectors.preset_versions(preset=preset) if preset else [],
        "models": selectors.scene_models(),
        "nav": "brand",
    }


@role_page(*DECIDERS)
def preset_new(request):
    installed = selectors.installed_models()
    rules = selectors.scene_models()[0] if installed else None
    initial = {"model": installed[0] if installed else "", "scheduler": rules["schedulers"][0] if rules else "",
               "steps": rules["steps"] if rules else 20, "guidance": rules["guidance"] if rules else 1.0,
               "strength": rules["strength"] if rules else 1.0}
    form = PresetForm(request.POST or None, installed=installed, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                preset = services.preset_create(workspace=request.workspace, by=request.user, **form.service_fields())
            except ValidationError as exc:
                _add_service_errors(form, exc)
            else:
                messages.success(request, f"Preset “{preset.name}” created.")
                return redirect("preset-detail", preset_id=preset.pk)
        return render(request, "studio/brand/preset.html", _preset_context(None, form), status=400)
    return render(request, "studio/brand/preset.html", _preset_context(None, form))


@role_page(*DECIDERS)
def preset_detail(request, preset_id: int):
    preset = selectors.preset_get(workspace=request.workspace, preset_id=preset_id)
    installed = selectors.installed_models()
    if request.method == "POST":
        form = PresetForm(request.POST, installed=installed, current_model=preset.model)
        if form.is_valid():
            try:
                services.preset_update(preset=preset, by=request.user, **form.service_fields())
            except ValidationError as exc:
                _add_service_errors(form, exc)
            else:
                messages.success(request, f"Saved as version {preset.version}.")
                return redirect("preset-detail", preset_id=preset.pk)
        preset = selectors.preset_get(workspace=request.workspace, preset_id=preset_id)
        return render(request, "studio/brand/preset.html", _preset_context(preset, form), status=400)
    form = PresetForm(installed=installed, current_model=preset.model, initial=PresetForm.initial_for(preset))
    return render(request, "studio/brand/preset.html", _preset_context(preset, form))
