from rest_framework import serializers

from storefront.models import StorefrontConnection


class StorefrontConnectionSerializer(serializers.ModelSerializer):
    """A connection as the API shows it: never the token or webhook secrets."""

    access_token = serializers.CharField(write_only=True, max_length=500, trim_whitespace=True, help_text="Admin API access token of the shop's custom app; stored encrypted, never shown again.")
    webhook_secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500, help_text="The custom app's API secret, which signs its webhooks; stored encrypted.")
    api_base_url = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Default https://{shop}/admin/api/{version}.")
    has_credentials = serializers.BooleanField(read_only=True)

    class Meta:
        model = StorefrontConnection
        fields = [
            "id", "shop_domain", "api_base_url", "method", "status", "scopes", "has_credentials", "last_sync_at", "last_sync_error",
            "created_at", "access_token", "webhook_secret",
        ]
        read_only_fields = ["id", "method", "status", "has_credentials", "last_sync_at", "last_sync_error", "created_at"]
        extra_kwargs = {"shop_domain": {"validators": []}}  # the service says who owns a shop, in words
