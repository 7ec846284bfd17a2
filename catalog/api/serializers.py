from django.urls import reverse
from rest_framework import serializers

from catalog.models import PhotoJob, Product, ProductPhoto


class ProductSerializer(serializers.ModelSerializer):
    handle = serializers.SlugField(required=False, allow_blank=True, max_length=255)

    class Meta:
        model = Product
        fields = ["id", "title", "handle", "sku", "storefront_product_id", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = PhotoJob
        fields = ["id", "kind", "status", "progress", "error", "attempts", "photo", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class PhotoSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    jobs = JobSerializer(many=True, read_only=True)
    files = serializers.SerializerMethodField()

    class Meta:
        model = ProductPhoto
        fields = [
            "id", "product", "status", "original_name", "original_format", "original_bytes", "original_sha256",
            "original_width", "original_height", "width", "height", "has_alpha", "created_at", "files", "jobs",
        ]
        read_only_fields = fields

    def get_files(self, photo) -> dict[str, str | None]:
        request = self.context.get("request")

        def url(variant: str) -> str:
            path = reverse("api:photo-file", kwargs={"pk": photo.pk, "variant": variant})
            return request.build_absolute_uri(path) if request else path

        return {
            "original": url("original"),
            "working": url("working"),
            "thumbnail": url("thumbnail") if photo.thumbnail else None,
        }


class PhotoUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    product = serializers.IntegerField(required=False, allow_null=True)


class PhotoUpdateSerializer(serializers.Serializer):
    product = serializers.IntegerField(allow_null=True)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
