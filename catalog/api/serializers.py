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
    status = serializers.CharField(
        read_only=True,
        help_text="checking (a large photo, accepted on its header, is being decoded by a worker: no working copy, "
        "width and height yet), processing (a job runs), failed (see the jobs' `error`), ready.",
    )
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
            "original": url("original") if photo.original else None,
            "working": url("working") if photo.working else None,
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
    token = serializers.CharField(help_text="The API key: send it as `Authorization: Token <key>`. Shown only once.")
    name = serializers.CharField(help_text="The token's name in lists (“API login”).")
    workspace = serializers.SlugField(help_text="The workspace the token acts in.")
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the token stops working.")


# Moving many photos at once (POST /api/v1/photos/assign/) --------------------------------

#: More ids than one page of the photo grid shows, few enough for one locked update.
PHOTOS_ASSIGN_MAX = 500


class PhotoAssignSerializer(serializers.Serializer):
    photos = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=PHOTOS_ASSIGN_MAX,
        help_text=f"Ids of the photos to move (1 to {PHOTOS_ASSIGN_MAX}); every one must be a photo of this workspace.",
        error_messages={
            "min_length": "Choose at least one photo to move.",
            "max_length": f"Move at most {PHOTOS_ASSIGN_MAX} photos at a time.",
            "empty": "Choose at least one photo to move.",
        },
    )
    product = serializers.IntegerField(allow_null=True, help_text="The product to attach them to; null detaches them from any product.")


class PhotoAssignResultSerializer(serializers.Serializer):
    product = serializers.IntegerField(allow_null=True, help_text="Where the photos are now attached (null: no product).")
    photos = serializers.ListField(child=serializers.IntegerField(), help_text="The ids moved, ascending.")
