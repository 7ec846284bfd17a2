"""Brand kits and scene presets. Both are versioned: every change through the services bumps
`version`, and each asset's recipe records the versions (and values) it was made with."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Workspace
from generation.pipelines.base import SCHEDULERS
from generation.registry import MODELS

#: The engine's scheduler names; which of them a preset may use depends on its model's backend.
SchedulerName = models.TextChoices("SchedulerName", [(name.upper(), (name, title)) for name, title in SCHEDULERS.items()])


class BrandKit(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="brand_kits")
    name = models.CharField(max_length=120)
    palette = models.JSONField(default=list, help_text='2–3 colours as "#rrggbb": backdrop, surface, accent')
    logo = models.FileField(max_length=255, blank=True)
    prompt_fragment = models.CharField(max_length=500, blank=True, help_text="added to every prompt")
    default_negative_prompt = models.CharField(max_length=500, blank=True)
    banned_terms = models.JSONField(default=list, blank=True)
    default_channels = models.JSONField(default=list, blank=True)
    palette_max_delta_e = models.FloatField(
        default=20.0,
        help_text="palette adherence: how far (CIEDE2000) a scene's main colours may be from the palette (1–100)",
    )
    is_default = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="brandkit_unique_name"),
            models.UniqueConstraint(fields=["workspace"], condition=Q(is_default=True), name="brandkit_one_default"),
            models.CheckConstraint(
                condition=Q(palette_max_delta_e__gte=1.0) & Q(palette_max_delta_e__lte=100.0), name="brandkit_delta_e_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class LoraAdapter(models.Model):
    """A LoRA adapter file (safetensors) a brand kit applies with a weight."""

    brand_kit = models.ForeignKey(BrandKit, on_delete=models.CASCADE, related_name="loras")
    name = models.SlugField(max_length=64)
    file = models.FileField(max_length=255)
    sha256 = models.CharField(max_length=64)
    weight = models.FloatField(default=1.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["brand_kit", "name"], name="lora_unique_name")]

    def __str__(self) -> str:
        return self.name


class ScenePreset(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="scene_presets")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80)
    thumbnail = models.FileField(max_length=255, blank=True)
    model = models.CharField(max_length=64, default="backdrop-mini", help_text="a name in the model registry")
    style = models.CharField(max_length=64, blank=True, help_text="the bundled model's scene class, e.g. marble")
    prompt = models.CharField(max_length=1000, blank=True)
    negative_prompt = models.CharField(max_length=1000, blank=True)
    scheduler = models.CharField(max_length=12, choices=SchedulerName.choices, default=SchedulerName.EULER)
    steps = models.PositiveSmallIntegerField(default=20)
    guidance = models.FloatField(default=7.0)
    strength = models.FloatField(default=1.0)
    is_default = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="preset_unique_slug"),
            models.UniqueConstraint(fields=["workspace"], condition=Q(is_default=True), name="preset_one_default"),
            models.CheckConstraint(condition=Q(steps__gte=1) & Q(steps__lte=150), name="preset_steps_range"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def reads_prompt(self) -> bool:
        """Whether this preset's model reads free text (an unknown model: assume it does)."""
        spec = MODELS.get(self.model)
        return spec is None or spec.reads_prompt


class BrandKitVersion(models.Model):
    """What a brand kit was at one version (the snapshot recipes keep), written by every
    change through the services; the kit page shows what changed between them."""

    kit = models.ForeignKey(BrandKit, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["kit", "version"], name="brandkitversion_unique")]

    def __str__(self) -> str:
        return f"{self.kit} v{self.version}"


class PresetVersion(models.Model):
    """What a scene preset was at one version, like :class:`BrandKitVersion`."""

    preset = models.ForeignKey(ScenePreset, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["preset", "version"], name="presetversion_unique")]

    def __str__(self) -> str:
        return f"{self.preset} v{self.version}"
