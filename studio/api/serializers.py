from django.urls import reverse
from rest_framework import serializers

from catalog.api.query import FlagParameter, IdParameter

from studio.models import Asset, AssetComment, AuditEvent, Cutout, GenerationJob, Notification, Review


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
    snap_edges = serializers.BooleanField(default=False, help_text="Trim the brushed pixels to the product's edges (a graph cut seeded by the pixels left alone).")
    holes = serializers.ChoiceField(choices=["fill", "open"], required=False, allow_null=True, default=None,
        error_messages={"invalid_choice": "Choose 'fill' or 'open' for holes, or leave it out."},
        help_text="Then 'fill' the holes enclosed by the product, or 'open' the enclosed regions that look like the backdrop.")


class CutoutResetSerializer(serializers.Serializer):
    photo = serializers.IntegerField()


class SegmentRequestSerializer(serializers.Serializer):
    segmenter = serializers.CharField(required=False, help_text="'auto' (the best rembg model installed, else 'graphcut'), 'graphcut' or 'rembg:<model>' ('studio': deprecated name of 'graphcut'); default from settings.")


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


class GateSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="lock, cutout, edge-halo, preflight, resolution, palette or banned-terms")
    title = serializers.CharField(help_text="The gate's name in words")
    status = serializers.ChoiceField(choices=["pass", "warn", "fail"], help_text="`fail` blocks approval unless overridden with a reason")
    reason = serializers.CharField(help_text="What the gate found, in words")
    value = serializers.FloatField(allow_null=True)
    limit = serializers.FloatField(allow_null=True)


class AssetSerializer(serializers.ModelSerializer):
    download = serializers.SerializerMethodField()
    gates = GateSerializer(many=True, read_only=True)
    lock_verified_pixels = serializers.SerializerMethodField()
    lock_kind = serializers.SerializerMethodField(help_text='"pixel-identical" or "resampled" ("" for assets made before lock kinds)')
    lock_badge = serializers.SerializerMethodField()

    class Meta:
        model = Asset
        fields = [
            "id", "job", "photo", "cutout", "variant", "seed", "channel", "width", "height", "sha256", "download",
            "lock_verified_pixels", "lock_kind", "lock_badge", "lock_certificate", "preflight", "preflight_passed", "gates", "gates_passed",
            "review_state", "regenerated_from", "recipe", "created_at",
        ]
        read_only_fields = fields

    def get_download(self, asset) -> str:
        request = self.context.get("request")
        path = reverse("api:asset-file", kwargs={"pk": asset.pk})
        return request.build_absolute_uri(path) if request else path

    def get_lock_verified_pixels(self, asset) -> int:
        return asset.lock_certificate["locked_pixels"] if asset.lock_certificate.get("passed") else 0

    def get_lock_kind(self, asset) -> str:
        return asset.lock_certificate.get("kind", "")

    def get_lock_badge(self, asset) -> str:
        return asset.lock_certificate.get("badge", "")


class ReviewSerializer(serializers.ModelSerializer):
    submitted_by = serializers.EmailField(source="submitted_by.email", read_only=True, allow_null=True)
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, allow_null=True)

    class Meta:
        model = Review
        fields = [
            "id", "asset", "submitted_by", "submitted_at", "decision", "decided_by", "decided_at", "comment",
            "override_reason", "overridden", "asset_sha256", "cutout_revision",
        ]
        read_only_fields = fields


class AssetCommentSerializer(serializers.ModelSerializer):
    author = serializers.EmailField(source="author.email", read_only=True, allow_null=True)

    class Meta:
        model = AssetComment
        fields = ["id", "asset", "author", "body", "created_at"]
        read_only_fields = ["id", "asset", "author", "created_at"]


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_email", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "verb", "actor", "photo", "cutout", "asset", "detail"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "message", "asset", "count", "created_at", "read_at"]
        read_only_fields = fields


class CommentRequestSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class DecisionRequestSerializer(CommentRequestSerializer):
    override_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=4000, default="",
        help_text="Required to approve an image with a failing QA gate; kept in its history.",
    )


class RequiredCommentSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=4000, help_text="What is wrong, for the person who submitted it.")


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=4000)


class BulkActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["submit", "approve", "request_changes", "reject"])
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=500)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class BulkSkippedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()


class BulkResultSerializer(serializers.Serializer):
    done = serializers.ListField(child=serializers.IntegerField(), help_text="ids of the assets the action moved")
    skipped = BulkSkippedSerializer(many=True, help_text="assets left as they were, each with the reason")


class AssetIdsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=500)


class NotificationReadSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, help_text="default: all unread")


# Query parameters (catalog.api.query.validated_query reads them; a bad one answers 400) -------


class CutoutListQuery(serializers.Serializer):
    photo = IdParameter(help_text="Only this photo's revisions (newest first).")


class NotificationListQuery(serializers.Serializer):
    unread = FlagParameter(help_text="Only notifications not read yet.")


class PhotoDeleteQuery(serializers.Serializer):
    delete_assets = FlagParameter(help_text="Also delete the images generated from this photo.")
    delete_approved = FlagParameter(
        help_text="Also delete generated images that a brand manager approved and that are not published yet."
    )
