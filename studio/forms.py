from django import forms

from generation.backdrop.styles import STYLE_NAMES
from generation.compose import AS_PHOTO
from generation.pipelines.base import SCHEDULERS
from generation.preflight import CHANNELS
from generation.registry import MODELS

CHANNEL_CHOICES = [(AS_PHOTO.name, "Photo's own size")] + [(spec.name, spec.title) for spec in CHANNELS.values()]
HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"


class ComposeForm(forms.Form):
    """The compose page's fields; the generation service validates the rest."""

    preset = forms.IntegerField(widget=forms.RadioSelect)
    brand_kit = forms.IntegerField()
    prompt = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2, "aria-describedby": "prompt-hint"}))
    variants = forms.IntegerField(min_value=1, max_value=8, initial=4)
    channels = forms.MultipleChoiceField(choices=CHANNEL_CHOICES, widget=forms.CheckboxSelectMultiple)
    seed = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1, help_text="Leave empty for a new random seed.")


# Brand kits and presets (the brand services check every value; these only parse the page) ---


def _colour(label: str, *, required: bool = True) -> forms.RegexField:
    return forms.RegexField(
        regex=HEX_COLOUR, label=label, required=required, error_messages={"invalid": "Choose a colour (#rrggbb)."},
        widget=forms.TextInput(attrs={"type": "color", "class": "colour-input"}),
    )


class BrandKitForm(forms.Form):
    """A brand kit's fields as the kit page edits them: the palette as colour pickers, the
    banned terms one per line, the default channels as checkboxes."""

    name = forms.CharField(max_length=120)
    palette_0 = _colour("Backdrop")
    palette_1 = _colour("Surface")
    use_accent = forms.BooleanField(required=False, label="Use an accent colour")
    palette_2 = _colour("Accent", required=False)
    prompt_fragment = forms.CharField(
        required=False, max_length=500, label="Prompt fragment", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Added to every prompt made with this kit (models that read prompts only).",
    )
    default_negative_prompt = forms.CharField(
        required=False, max_length=500, label="Negative prompt", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What scenes should not show, e.g. text, watermark, people.",
    )
    banned_terms = forms.CharField(
        required=False, label="Banned terms", widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One word or phrase per line. A prompt that uses one (or its plural) is refused.",
    )
    default_channels = forms.MultipleChoiceField(
        required=False, label="Default channels", widget=forms.CheckboxSelectMultiple,
        choices=[(spec.name, spec.title) for spec in CHANNELS.values()],
    )
    palette_max_delta_e = forms.FloatField(
        label="Palette tolerance (ΔE)", widget=forms.NumberInput(attrs={"step": "0.5"}),
        help_text="How far a scene's main colours may be from the palette before the QA gate flags it: 1 is strict, 100 accepts anything; 20 suits most brands.",
    )
    is_default = forms.BooleanField(required=False, label="Default brand kit for new jobs")

    @classmethod
    def initial_for(cls, kit) -> dict:
        palette = list(kit.palette) + [""] * (3 - len(kit.palette))
        return {
            "name": kit.name, "palette_0": palette[0], "palette_1": palette[1], "use_accent": len(kit.palette) == 3,
            "palette_2": palette[2] or palette[1], "prompt_fragment": kit.prompt_fragment,
            "default_negative_prompt": kit.default_negative_prompt, "banned_terms": "\n".join(kit.banned_terms),
            "default_channels": kit.default_channels, "palette_max_delta_e": kit.palette_max_delta_e, "is_default": kit.is_default,
        }

    def clean(self):
        data = super().clean()
        if data.get("use_accent") and not data.get("palette_2"):
            self.add_error("palette_2", "Choose the accent colour, or untick “Use an accent colour”.")
        return data

    def service_fields(self) -> dict:
        """The cleaned values as brand_kit_create/update take them."""
        data = self.cleaned_data
        palette = [data["palette_0"], data["palette_1"]] + ([data["palette_2"]] if data.get("use_accent") else [])
        # Blank lines in a textarea are layout, not empty terms.
        terms = [line.strip() for line in data["banned_terms"].splitlines() if line.strip()]
        return {
            "name": data["name"], "palette": palette, "prompt_fragment": data["prompt_fragment"],
            "default_negative_prompt": data["default_negative_prompt"], "banned_terms": terms,
            "default_channels": data["default_channels"], "palette_max_delta_e": data["palette_max_delta_e"],
            "is_default": data["is_default"],
        }

    #: Where the service's field names show their errors on this form.
    SERVICE_FIELD_MAP = {"palette": "palette_0"}


class LogoForm(forms.Form):
    file = forms.FileField(label="Logo image", help_text="JPEG, PNG, WebP, HEIC or AVIF. Its main colours are proposed as the palette.")


class LoraForm(forms.Form):
    name = forms.SlugField(max_length=64, label="LoRA name", help_text="Letters, digits and hyphens, e.g. house-look.")
    weight = forms.FloatField(initial=1.0, label="Weight", widget=forms.NumberInput(attrs={"step": "0.05"}), help_text="-4 to 4; 1 applies it as trained.")
    file = forms.FileField(label="LoRA file (.safetensors)")


class PresetForm(forms.Form):
    """A scene preset's fields; which values suit which model is the brand services' call."""

    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=80, required=False, help_text="Leave empty to make one from the name.")
    model = forms.ChoiceField(label="Model")
    style = forms.ChoiceField(
        required=False, label="Style",
        choices=[("", "None (the prompt decides)")] + [(name, name) for name in STYLE_NAMES],
        help_text="The scene backdrop-mini draws. Models that read prompts ignore it.",
    )
    prompt = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
    negative_prompt = forms.CharField(required=False, max_length=1000, label="Negative prompt", widget=forms.Textarea(attrs={"rows": 2}))
    scheduler = forms.ChoiceField(choices=list(SCHEDULERS.items()))
    steps = forms.IntegerField()
    guidance = forms.FloatField(widget=forms.NumberInput(attrs={"step": "0.1"}))
    strength = forms.FloatField(widget=forms.NumberInput(attrs={"step": "0.05"}))
    is_default = forms.BooleanField(required=False, label="Default preset on the compose page")

    def __init__(self, *args, installed: list[str], current_model: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        names = list(installed)
        if current_model and current_model not in names:
            names.append(current_model)  # keep a preset's model even when this server lacks it
        self.fields["model"].choices = [
            (name, f"{name} — {MODELS[name].description}" + ("" if name in installed else " (not installed)"))
            for name in names if name in MODELS
        ]

    @classmethod
    def initial_for(cls, preset) -> dict:
        return {field: getattr(preset, field) for field in (
            "name", "slug", "model", "style", "prompt", "negative_prompt", "scheduler", "steps", "guidance", "strength", "is_default",
        )}

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        if not data["slug"]:
            data.pop("slug")
        return data
