"""Tables of the generation app: cutouts (per photo, in revisions).

The imaging library next to this file never imports it; tasks and services adapt between
these rows and the library's plain values."""
from __future__ import annotations

from django.conf import settings
from django.db import models

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
