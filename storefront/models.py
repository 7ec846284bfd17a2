"""Tables of the storefront connector: one connection per shop, the webhooks it received."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from catalog.models import Product, Workspace
from storefront import crypto


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active", "Connected"
    #: The shop uninstalled the app or a person disconnected it: credentials are erased.
    DISABLED = "disabled", "Disconnected"


class ConnectionMethod(models.TextChoices):
    TOKEN = "token", "Access token (custom app)"
    OAUTH = "oauth", "OAuth"


class StorefrontConnection(models.Model):
    """A workspace's link to one shop. The access token and webhook secrets are stored only
    encrypted (`storefront.crypto`); nothing reads them back out except the client."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="storefront_connections")
    #: `some-shop.myshopify.com`; one shop maps to exactly one connection (webhooks name the shop).
    shop_domain = models.CharField(max_length=255, unique=True)
    #: `https://{shop}/admin/api/{version}`; tests and the demo point it at the loopback fake.
    api_base_url = models.URLField(max_length=500)
    method = models.CharField(max_length=8, choices=ConnectionMethod.choices)
    status = models.CharField(max_length=10, choices=ConnectionStatus.choices, default=ConnectionStatus.ACTIVE)
    scopes = models.CharField(max_length=500, blank=True)
    access_token_encrypted = models.TextField(blank=True)
    #: A custom app signs webhooks with its own secret; empty: the OAuth app's client secret.
    webhook_secret_encrypted = models.TextField(blank=True)
    #: Still accepted on webhooks while a rotation settles.
    previous_webhook_secret_encrypted = models.TextField(blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shop_domain"]

    def __str__(self) -> str:  # never the token: this lands in logs and the admin
        return self.shop_domain

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_token_encrypted)

    @property
    def usable(self) -> bool:
        """Connected and holding a token: the shop can be called."""
        return self.status == ConnectionStatus.ACTIVE and self.has_credentials

    def access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted)

    def webhook_secrets(self) -> list[str]:
        """Secrets a webhook for this shop may be signed with, newest first."""
        own = [crypto.decrypt(self.webhook_secret_encrypted), crypto.decrypt(self.previous_webhook_secret_encrypted)]
        app = [settings.VITRINE_STOREFRONT_CLIENT_SECRET, settings.VITRINE_STOREFRONT_PREVIOUS_CLIENT_SECRET]
        return [secret for secret in (own if own[0] else app) if secret]


class StorefrontProduct(models.Model):
    """A shop's product as Vitrine last saw it, and the catalog Product it became. The remote
    `updated_at` orders changes: an older update never overwrites a newer one."""

    connection = models.ForeignKey(StorefrontConnection, on_delete=models.CASCADE, related_name="products")
    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="storefront_link")
    remote_id = models.CharField(max_length=100)  # the REST id, e.g. "632910392"
    remote_updated_at = models.DateTimeField()
    variants = models.JSONField(default=list, blank=True)  # [{id, title, sku, image_id}]

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "remote_id"], name="storefront_product_unique_remote")]

    def __str__(self) -> str:
        return f"{self.connection} product {self.remote_id}"


class WebhookDelivery(models.Model):
    """One webhook as received. The unique webhook id makes a repeated delivery a no-op."""

    connection = models.ForeignKey(StorefrontConnection, on_delete=models.CASCADE, related_name="webhook_deliveries")
    webhook_id = models.CharField(max_length=100, unique=True)
    topic = models.CharField(max_length=64)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.topic} {self.webhook_id}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"


class SyncRun(models.Model):
    """One import (`full`) or incremental sync of a connection's catalog; the page's progress
    bar reads `done` of `total` products."""

    connection = models.ForeignKey(StorefrontConnection, on_delete=models.CASCADE, related_name="sync_runs")
    full = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    total = models.PositiveIntegerField(null=True, blank=True)  # unknown until the shop says
    done = models.PositiveIntegerField(default=0)
    photos_added = models.PositiveIntegerField(default=0)
    #: The `updated_at` high-water mark this run reached; the next incremental sync asks from here.
    updated_since = models.DateTimeField(null=True, blank=True)
    cursor = models.CharField(max_length=500, blank=True)  # where a resumed run picks up
    error = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    #: Touched by every page a worker stores: a queued or running run that stops moving for
    #: long is a lost message or a dead worker, and the worker loop sends it again.
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One import or sync at a time per shop: a second request joins the live one.
            models.UniqueConstraint(
                fields=["connection"], condition=models.Q(status__in=["queued", "running"]), name="storefront_sync_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection} sync {self.pk} ({self.status})"


class StorefrontImage(models.Model):
    """A shop image Vitrine has seen, and the ProductPhoto it became: an image is imported
    once, whatever the next sync or webhook says. A refused image (not a photo Vitrine takes,
    or an address the fetch guard refuses) keeps its reason and is not fetched again."""

    connection = models.ForeignKey(StorefrontConnection, on_delete=models.CASCADE, related_name="images")
    remote_id = models.CharField(max_length=100)  # the REST image id
    remote_product_id = models.CharField(max_length=100)
    #: SET_NULL: a photo the merchant deleted in Vitrine stays deleted on the next sync.
    photo = models.ForeignKey("catalog.ProductPhoto", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    src = models.URLField(max_length=1000)
    error = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "remote_id"], name="storefront_image_unique_remote")]

    def __str__(self) -> str:
        return f"{self.connection} image {self.remote_id}"


class StorefrontDeletion(models.Model):
    """A tombstone: the shop deleted this product. Shop ids are never reused, so a late
    create or update (webhooks arrive out of order) or a sync page read before the delete
    never brings the product back."""

    connection = models.ForeignKey(StorefrontConnection, on_delete=models.CASCADE, related_name="deletions")
    remote_id = models.CharField(max_length=100)
    deleted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "remote_id"], name="storefront_deletion_unique_remote")]

    def __str__(self) -> str:
        return f"{self.connection} deleted product {self.remote_id}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    UPLOADING = "uploading", "Uploading"
    PROCESSING = "processing", "Processing in the shop"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"


class Export(models.Model):
    """One approved asset's bytes sent to one shop, at most once: (connection, asset, content
    sha256) is unique, and the remote media id is recorded once the shop holds the image."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(StorefrontConnection, on_delete=models.CASCADE, related_name="exports")
    asset = models.ForeignKey("studio.Asset", on_delete=models.CASCADE, related_name="exports")
    content_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    remote_product_id = models.CharField(max_length=100, blank=True)
    remote_media_id = models.CharField(max_length=200, blank=True)
    remote_url = models.URLField(max_length=1000, blank=True)
    #: "graphql" (staged upload + attach) or "rest" (product images), whichever placed it.
    adapter = models.CharField(max_length=10, blank=True)
    replace_earlier = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    #: A later export with "replace earlier Vitrine images" took this image out of the shop.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "asset", "content_sha256"], name="storefront_export_once"),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of asset {self.asset_id} to {self.connection}"
