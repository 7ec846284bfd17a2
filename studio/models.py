"""Tables of the work on photos: cutouts (per photo, in revisions), generation jobs and the
assets they deliver.

The engine (`generation`) never sees these rows; tasks and services adapt between them and
the engine's plain values."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from catalog.jobs import JobRow
from catalog.models import ProductPhoto, Workspace


class CutoutSource(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic"
    TOUCH_UP = "touch_up", "Touch-up"
    RESET = "reset", "Reset to automatic"


class Cutout(models.Model):
    """One revision of a photo's cutout. The newest revision is the one generation uses.

    Files: `cutout` is RGBA (decontaminated colours + 8-bit soft matte); `mask` is L, 255 =
    locked product. The mask file is the truth of the lock region (it is not re-derived from
    the 8-bit matte)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="cutouts")
    photo = models.ForeignKey(ProductPhoto, on_delete=models.CASCADE, related_name="cutouts")
    revision = models.PositiveIntegerField()
    source = models.CharField(max_length=12, choices=CutoutSource.choices)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    backend = models.CharField(max_length=64)
    backend_version = models.CharField(max_length=64)
    cutout = models.FileField(max_length=255)
    mask = models.FileField(max_length=255)
    mask_sha256 = models.CharField(max_length=64)
    bbox = models.JSONField(null=True, blank=True)  # [x0, y0, x1, y1], exclusive ends
    locked_pixels = models.PositiveBigIntegerField()
    coverage = models.FloatField()
    edge_confidence = models.FloatField()
    confident = models.BooleanField()
    notes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-revision"]
        constraints = [models.UniqueConstraint(fields=["photo", "revision"], name="cutout_unique_revision")]

    def __str__(self) -> str:
        return f"cutout r{self.revision} of photo {self.photo_id}"


class GenerationJob(JobRow):
    """One request for scenes: variants × channels of one photo, from a fixed plan.

    `plan` is resolved when the job is created (prompts, model, preset and brand-kit
    snapshots, seeds, channels), so the task needs nothing else and a recipe can recreate it.
    The cutout revision is fixed when the task starts (the photo's cutout may still be
    running when the job is created)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="generation_jobs")
    photo = models.ForeignKey(ProductPhoto, on_delete=models.CASCADE, related_name="generation_jobs")
    cutout = models.ForeignKey(Cutout, on_delete=models.PROTECT, null=True, blank=True, related_name="generation_jobs")
    brand_kit = models.ForeignKey("brand.BrandKit", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    preset = models.ForeignKey("brand.ScenePreset", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    prompt = models.CharField(max_length=1000, blank=True)
    variants = models.PositiveSmallIntegerField()
    seed = models.BigIntegerField()
    channels = models.JSONField(default=list)
    plan = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    #: When the dispatcher sent this job's task to the gpu queue; null while it waits its
    #: workspace's turn (see `studio.dispatch`).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta(JobRow.Meta):
        indexes = [
            models.Index(fields=["status", "dispatched_at"], name="genjob_status_dispatched"),
            models.Index(fields=["workspace", "dispatched_at"], name="genjob_workspace_dispatched"),
            models.Index(fields=["workspace", "created_at"], name="genjob_workspace_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(variants__gte=1) & models.Q(variants__lte=8), name="genjob_variants_range"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="genjob_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"generation job {self.pk} ({self.status})"


class Asset(models.Model):
    """One delivered image: a variant on a channel canvas, locked, checked, with its recipe."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="assets")
    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="assets")
    photo = models.ForeignKey(ProductPhoto, on_delete=models.CASCADE, related_name="assets")
    cutout = models.ForeignKey(Cutout, on_delete=models.PROTECT, related_name="assets")
    variant = models.PositiveSmallIntegerField()
    seed = models.BigIntegerField()
    channel = models.CharField(max_length=40)
    file = models.FileField(max_length=255)
    preview = models.FileField(max_length=255, blank=True, help_text="WebP for the gallery, long side 768 px")
    sha256 = models.CharField(max_length=64, help_text="of the delivered file's bytes")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    lock_certificate = models.JSONField()
    preflight = models.JSONField(default=list)
    preflight_passed = models.BooleanField()
    recipe = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "channel", "variant"]
        constraints = [
            # A retried task cannot store the same image twice.
            models.UniqueConstraint(fields=["job", "channel", "variant"], name="asset_unique_per_job"),
        ]

    def __str__(self) -> str:
        return f"asset {self.pk} ({self.channel} #{self.variant})"
