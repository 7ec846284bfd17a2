from django.urls import reverse
from rest_framework import serializers

from studio.models import Asset, Cutout, GenerationJob


class CutoutSerializer(serializers.ModelSerializer):
    files = serializers.SerializerMethodField()

    class Meta:
        model = Cutout
        fields = [
            "id", "photo", "revision", "source", "parent", "backend", "backend_version", "bbox", "locked_pixels",
            "coverage", "edge_confidence", "confident", "notes", "mask_sha256", "created_at", "files",
        ]
        read_only_fields = fields

    def get_files(self, cutout) -> dict[str, str]:
        request = self.context.get("request")

        def url(variant: str) -> str:
            path = reverse("api:cutout-file", kwargs={"pk": cutout.pk, "variant": variant})
            return request.build_absolute_uri(path) if request else path

        return {"cutout": url("cutout"), "mask": url("mask")}


class CutoutRevisionSerializer(serializers.Serializer):
    photo = serializers.IntegerField()
    mask = serializers.FileField(help_text="PNG of the photo's size, at most 20 MB: white = product (locked), black = background.")
    base = serializers.IntegerField(required=False, help_text="Cutout revision id to edit; default the photo's newest.")


class ApiErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The API's one error format (catalog.api.errors), for the schema."""

    error = ApiErrorDetailSerializer()


class CutoutResetSerializer(serializers.Serializer):
    photo = serializers.IntegerField()


class SegmentRequestSerializer(serializers.Serializer):
    segmenter = serializers.CharField(required=False, help_text="'graphcut' or 'rembg:<model>' ('studio': deprecated name of 'graphcut'); default from settings.")


class GenerationJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = GenerationJob
        fields = [
            "id", "photo", "cutout", "brand_kit", "preset", "prompt", "variants", "seed", "channels", "status",
            "progress", "message", "error", "attempts", "cancel_requested", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields


class GenerationJobCreateSerializer(serializers.Serializer):
    photo = serializers.IntegerField()
    variants = serializers.IntegerField(default=4, min_value=1, max_value=8)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**31 - 1)
    preset = serializers.IntegerField(required=False, allow_null=True, help_text="default: the workspace's default preset")
    brand_kit = serializers.IntegerField(required=False, allow_null=True, help_text="default: the workspace's default brand kit")
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")
    channels = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)


class AssetSerializer(serializers.ModelSerializer):
    download = serializers.SerializerMethodField()
    lock_verified_pixels = serializers.SerializerMethodField()

    class Meta:
        model = Asset
        fields = [
            "id", "job", "photo", "cutout", "variant", "seed", "channel", "width", "height", "sha256", "download",
            "lock_verified_pixels", "lock_certificate", "preflight", "preflight_passed", "recipe", "created_at",
        ]
        read_only_fields = fields

    def get_download(self, asset) -> str:
        request = self.context.get("request")
        path = reverse("api:asset-file", kwargs={"pk": asset.pk})
        return request.build_absolute_uri(path) if request else path

    def get_lock_verified_pixels(self, asset) -> int:
        return asset.lock_certificate["locked_pixels"] if asset.lock_certificate.get("passed") else 0
