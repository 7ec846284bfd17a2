"""Workspaces, the people in them, products, photos, and the job rows of work on photos."""
from __future__ import annotations

import hashlib

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .jobs import ACTIVE, ACTIVE_JOB_STATUSES, JobRow, JobStatus


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person; signs in with an email address."""

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    def __str__(self) -> str:
        return self.email


class Workspace(models.Model):
    """One merchant business: the tenant every other row belongs to."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The approval rule: off, a brand manager or owner who submitted an asset for review needs
    # someone else to approve it (four eyes); owners switch it on in Settings.
    allow_self_approval = models.BooleanField(default=False, help_text="A member may approve their own submission.")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    BRAND_MANAGER = "brand_manager", "Brand manager"
    MERCHANT = "merchant", "Merchant"


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


def secret_hash(secret: str) -> str:
    """sha256 of an invitation token or API key: what the database keeps instead of it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class Invitation(models.Model):
    """An owner's invitation of an email address into a workspace with a role. The link's
    token is stored only as its sha256: a database leak does not hand out working links."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # At most one open invitation per address: two owners inviting the same person at
            # once cannot send two live links (an expired one is retired before a new one).
            models.UniqueConstraint(
                fields=["workspace", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.workspace} ({self.role})"

    @property
    def status(self) -> str:
        """accepted, revoked, expired or open: what the link does now."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "open"


class ApiToken(models.Model):
    """A named API key of one member in one workspace. Only the key's sha256 and its first
    characters (to tell keys apart in lists) are stored; the key is shown once, at creation."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=8)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # null: never expires
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workspace", "user"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def status(self) -> str:
        """revoked, expired or active."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class Product(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="products")
    title = models.CharField(max_length=255)
    handle = models.SlugField(max_length=255)
    sku = models.CharField(max_length=100, blank=True)
    storefront_product_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "handle"], name="product_unique_handle"),
            models.UniqueConstraint(
                fields=["workspace", "storefront_product_id"],
                condition=~Q(storefront_product_id=""),
                name="product_unique_storefront_id",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ImageFormat(models.TextChoices):
    JPEG = "JPEG", "JPEG"
    PNG = "PNG", "PNG"
    WEBP = "WEBP", "WebP"
    HEIF = "HEIF", "HEIC/HEIF"
    AVIF = "AVIF", "AVIF"


class ProductPhoto(models.Model):
    """An uploaded photo. `original` is the merchant's bytes, untouched, named by sha256;
    `working` is the decoded, upright, size-capped copy every worker reads.

    A photo larger than VITRINE_UPLOAD_INLINE_MAX_PIXELS is accepted on its header alone and
    is *checking* until its decode job (JobKind.DECODE, cpu queue) has made the working copy:
    until then `working` is empty and `width`/`height` are null. If the decode fails, the
    original file is deleted (`original` empty) and the photo stays failed with the reason."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="photos")
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="photos")
    uploaded_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    original = models.FileField(max_length=255, blank=True)  # empty: deleted after a failed decode
    original_sha256 = models.CharField(max_length=64)
    original_name = models.CharField(max_length=255)
    original_format = models.CharField(max_length=8, choices=ImageFormat.choices)
    original_bytes = models.PositiveBigIntegerField()
    original_width = models.PositiveIntegerField()
    original_height = models.PositiveIntegerField()
    working = models.FileField(max_length=255, blank=True)  # empty while checking
    working_sha256 = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)  # the working copy's; null while checking
    height = models.PositiveIntegerField(null=True, blank=True)
    has_alpha = models.BooleanField(default=False)
    thumbnail = models.FileField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "original_sha256"], name="photo_unique_content"),
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return self.original_name

    @property
    def is_decoded(self) -> bool:
        """Whether the working copy exists (every upload's, except a large one still checking
        or one whose decode failed)."""
        return bool(self.working)

    @property
    def status(self) -> str:
        """checking while a large photo's decode runs (no working copy yet); processing while
        any other job runs; failed if the newest job of a kind failed (or the photo could not be
        decoded); else ready. Reads `jobs` (prefetched newest first by the selectors: no query
        per photo)."""
        jobs = list(self.jobs.all())
        if any(job.status in ACTIVE_JOB_STATUSES for job in jobs):
            return "processing" if self.is_decoded else "checking"
        newest_by_kind: dict[str, PhotoJob] = {}
        for job in jobs:
            if job.kind in STATUS_KINDS:
                newest_by_kind.setdefault(job.kind, job)
        if any(job.status == JobStatus.FAILED for job in newest_by_kind.values()) or not self.is_decoded:
            return "failed"
        return "ready"

    @property
    def decode_error(self) -> str:
        """Why a large photo could not be decoded (its decode job's reason), or ""."""
        if self.is_decoded:
            return ""
        job = next((job for job in self.jobs.all() if job.kind == JobKind.DECODE), None)
        return job.error if job is not None and job.status == JobStatus.FAILED else ""


class JobKind(models.TextChoices):
    """The kinds of background work on one photo. The app that does the work passes its task
    to `catalog.services.job_enqueue`; catalog only keeps the rows."""

    DECODE = "decode", "Decode"
    THUMBNAIL = "thumbnail", "Thumbnail"
    CUTOUT = "cutout", "Cutout"
    TOUCH_UP = "touch_up", "Touch-up"


#: The kinds whose newest failure makes a photo "needs attention" (a failed touch-up leaves
#: the photo's current cutout in place, so the photo is still usable).
STATUS_KINDS = (JobKind.DECODE, JobKind.THUMBNAIL, JobKind.CUTOUT)


class PhotoJob(JobRow):
    """One piece of background work on a photo (decode, thumbnail, cutout, touch-up)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="photo_jobs")
    photo = models.ForeignKey(ProductPhoto, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    params = models.JSONField(default=dict, blank=True)  # what the task needs beyond the photo

    class Meta(JobRow.Meta):
        constraints = [
            # At most one live job of a kind per photo: a double click or a retried request
            # cannot start the same work twice.
            models.UniqueConstraint(fields=["photo", "kind"], condition=ACTIVE, name="photojob_one_active_per_kind"),
            models.CheckConstraint(condition=Q(progress__lte=100), name="photojob_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"


class WorkerHeartbeat(models.Model):
    """Written by each Celery worker every few seconds; /healthz reads it (works with every
    broker, including the filesystem one, which cannot answer a broadcast ping)."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    seen_at = models.DateTimeField()
