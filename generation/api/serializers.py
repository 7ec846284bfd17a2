from django.urls import reverse
from rest_framework import serializers

from generation.models import Cutout


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
    mask = serializers.FileField(help_text="PNG of the photo's size: white = product (locked), black = background.")
    base = serializers.IntegerField(required=False, help_text="Cutout revision id to edit; default the photo's newest.")


class CutoutResetSerializer(serializers.Serializer):
    photo = serializers.IntegerField()


class SegmentRequestSerializer(serializers.Serializer):
    segmenter = serializers.CharField(required=False, help_text="'studio' or 'rembg:<model>'; default from settings.")
