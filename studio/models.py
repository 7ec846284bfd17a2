"""Tables of the work on photos: cutouts (per photo, in revisions), generation jobs, the
assets they deliver, and what people decide about them (reviews, comments, the audit trail,
notifications).

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


class ReviewState(models.TextChoices):
    """Where an asset stands with the people who decide what ships. The transitions are the
    services in `studio.reviews`; nothing else writes this field."""

    GENERATED = "generated", "Not submitted"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"
    PUBLISHED = "published", "Published"


class Asset(models.Model):
    """One delivered image: a variant on a channel canvas, locked, checked, with its recipe.

    Its file never changes once stored: anything that would change pixels (regenerate, a new
    cutout revision, a re-render) makes a new asset, which needs its own review."""

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
    #: QA gates computed when the asset was made: [{name, status pass|warn|fail, reason,
    #: value, limit}] in `generation.gates.GATE_NAMES` order.
    gates = models.JSONField(default=list)
    gates_passed = models.BooleanField(default=True)
    review_state = models.CharField(max_length=20, choices=ReviewState.choices, default=ReviewState.GENERATED)
    #: The asset this one was regenerated from (its review history stays with the original).
    regenerated_from = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "channel", "variant"]
        constraints = [
            # A retried task cannot store the same image twice.
            models.UniqueConstraint(fields=["job", "channel", "variant"], name="asset_unique_per_job"),
        ]
        indexes = [models.Index(fields=["workspace", "review_state"], name="asset_workspace_state")]

    @property
    def failing_gates(self) -> list[dict]:
        return [gate for gate in self.gates if gate["status"] == "fail"]

    def __str__(self) -> str:
        return f"asset {self.pk} ({self.channel} #{self.variant})"


class ReviewDecision(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"


class Review(models.Model):
    """One round of review of one asset: opened when it is submitted, closed by a decision.

    An approval pins the exact pixels: the sha256 of the asset's file (re-read from storage at
    the moment of approval) and the cutout revision it was made from."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="reviews")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="reviews")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    submitted_at = models.DateTimeField(auto_now_add=True)
    decision = models.CharField(max_length=20, choices=ReviewDecision.choices, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    #: Why a brand manager approved over failing gates (the gates' names are in `overridden`).
    override_reason = models.TextField(blank=True)
    overridden = models.JSONField(default=list, blank=True)
    asset_sha256 = models.CharField(max_length=64, blank=True)
    cutout_revision = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        constraints = [
            # One open review per asset: a double submit cannot open two.
            models.UniqueConstraint(fields=["asset"], condition=models.Q(decision=""), name="review_one_open_per_asset"),
            models.CheckConstraint(
                condition=~models.Q(decision="approved") | (~models.Q(asset_sha256="") & models.Q(cutout_revision__isnull=False)),
                name="review_approval_pinned",
            ),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} of asset {self.asset_id} ({self.decision or 'open'})"


class AssetComment(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="asset_comments")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    body = models.TextField(max_length=4000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]


class AuditVerb(models.TextChoices):
    PHOTO_UPLOADED = "photo.uploaded", "Photo uploaded"
    CUTOUT_MADE = "cutout.made", "Cutout made"
    CUTOUT_TOUCHED_UP = "cutout.touched_up", "Cutout touched up"
    CUTOUT_RESET = "cutout.reset", "Cutout reset"
    ASSET_GENERATED = "asset.generated", "Image generated"
    REVIEW_SUBMITTED = "review.submitted", "Submitted for review"
    REVIEW_APPROVED = "review.approved", "Approved"
    REVIEW_CHANGES_REQUESTED = "review.changes_requested", "Changes requested"
    REVIEW_REJECTED = "review.rejected", "Rejected"
    REVIEW_COMMENTED = "review.commented", "Commented"
    ASSET_EXPORTED = "asset.exported", "Exported"


class AuditEvent(models.Model):
    """One thing that happened, who did it, and what it was about. Append-only; the rows it
    points to may go, so `detail` keeps what a reader of the trail needs (names, hashes)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_email = models.CharField(max_length=254, blank=True)
    verb = models.CharField(max_length=40, choices=AuditVerb.choices)
    photo = models.ForeignKey(ProductPhoto, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    cutout = models.ForeignKey(Cutout, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="audit_workspace_created"),
            models.Index(fields=["asset", "created_at"], name="audit_asset_created"),
        ]


class NotificationKind(models.TextChoices):
    AWAITING_REVIEW = "awaiting_review", "Awaiting review"
    DECIDED = "decided", "Decision made"


class Notification(models.Model):
    """A message to one member, shown in the app (and sent by email when it is made)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    message = models.CharField(max_length=500)
    asset = models.ForeignKey(Asset, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    count = models.PositiveIntegerField(default=1, help_text="how many assets the message is about")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["recipient", "workspace", "read_at"], name="notification_unread")]
