from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from storefront import selectors
from storefront.models import StorefrontConnection, SyncRun


class SyncRunSerializer(serializers.ModelSerializer):
    """One import (`full`) or incremental sync: `done` of `total` products (total is null
    until the shop has counted), photos imported, the error in words when it failed."""

    class Meta:
        model = SyncRun
        fields = ["id", "full", "status", "total", "done", "photos_added", "updated_since", "error", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class SyncRequestSerializer(serializers.Serializer):
    full = serializers.BooleanField(
        required=False, default=False,
        help_text="true: read every product again (an import); false: only those updated since the last finished sync.",
    )


class StorefrontConnectionSerializer(serializers.ModelSerializer):
    """A connection as the API shows it: never the token or webhook secrets."""

    access_token = serializers.CharField(write_only=True, max_length=500, trim_whitespace=True, help_text="Admin API access token of the shop's custom app; stored encrypted, never shown again.")
    webhook_secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500, help_text="The custom app's API secret, which signs its webhooks; stored encrypted.")
    api_base_url = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Default https://{shop}/admin/api/{version}.")
    has_credentials = serializers.BooleanField(read_only=True)
    latest_sync = serializers.SerializerMethodField(help_text="The newest import or sync and its progress; null before the first.")

    class Meta:
        model = StorefrontConnection
        fields = [
            "id", "shop_domain", "api_base_url", "method", "status", "scopes", "has_credentials", "last_sync_at", "last_sync_error",
            "latest_sync", "created_at", "access_token", "webhook_secret",
        ]
        read_only_fields = ["id", "method", "status", "has_credentials", "last_sync_at", "last_sync_error", "created_at"]
        extra_kwargs = {"shop_domain": {"validators": []}}  # the service says who owns a shop, in words

    @extend_schema_field(SyncRunSerializer(allow_null=True))
    def get_latest_sync(self, connection: StorefrontConnection):
        run = selectors.sync_latest(connection=connection)
        return SyncRunSerializer(run).data if run is not None else None
