"""Brand kits and scene presets over the API. Anyone in the workspace reads them; owners and
brand managers change them (each change bumps the row's version)."""
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from brand import selectors, services
from brand.models import BrandKit, ScenePreset
from catalog.api.permissions import IsWorkspaceMember
from catalog.api.views import WorkspaceScoped
from catalog.models import Role


MAX_LORA_BYTES = 1024 * 1024 * 1024


class BrandManagersWrite(BasePermission):
    message = "Only owners and brand managers can change brand kits and presets."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or request.membership.role in (Role.OWNER, Role.BRAND_MANAGER)


class BrandKitSerializer(serializers.ModelSerializer):
    loras = serializers.SerializerMethodField()

    class Meta:
        model = BrandKit
        fields = [
            "id", "name", "palette", "prompt_fragment", "default_negative_prompt", "banned_terms", "default_channels",
            "is_default", "version", "loras", "updated_at",
        ]
        read_only_fields = ["id", "version", "loras", "updated_at"]

    def get_loras(self, kit) -> list[dict]:
        return [{"name": a.name, "weight": a.weight, "sha256": a.sha256} for a in kit.loras.all()]


class ScenePresetSerializer(serializers.ModelSerializer):
    thumbnail = serializers.SerializerMethodField()

    class Meta:
        model = ScenePreset
        fields = [
            "id", "name", "slug", "model", "style", "prompt", "negative_prompt", "scheduler", "steps", "guidance",
            "strength", "is_default", "version", "thumbnail", "updated_at",
        ]
        read_only_fields = ["id", "version", "thumbnail", "updated_at"]
        extra_kwargs = {"slug": {"required": False}}

    def get_thumbnail(self, preset) -> str | None:
        if not preset.thumbnail:
            return None
        return reverse("preset-thumbnail", kwargs={"preset_id": preset.pk})


class _Versioned(
    WorkspaceScoped,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [IsWorkspaceMember, BrandManagersWrite]


class LoraUploadSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    weight = serializers.FloatField(default=1.0, min_value=-4.0, max_value=4.0)
    file = serializers.FileField(help_text="LoRA adapter weights (.safetensors, diffusers or kohya layout)")


class BrandKitViewSet(_Versioned):
    serializer_class = BrandKitSerializer
    queryset = BrandKit.objects.none()
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": LoraUploadSerializer}, responses={201: BrandKitSerializer})
    @action(detail=True, methods=["post"])
    def loras(self, request, pk=None):
        """Attach a LoRA adapter to the brand kit (bumps its version)."""
        kit = self.get_object()
        data = LoraUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > MAX_LORA_BYTES:
            raise serializers.ValidationError({"file": "LoRA files larger than 1 GB are not accepted."})
        services.lora_add(kit=kit, name=data.validated_data["name"], data=upload.read(), weight=data.validated_data["weight"])
        return Response(self.get_serializer(selectors.brand_kit_get(workspace=request.workspace, kit_id=kit.pk)).data, status=201)

    def scoped_queryset(self):
        return selectors.brand_kit_list(workspace=self.request.workspace)

    def get_object(self):
        return selectors.brand_kit_get(workspace=self.request.workspace, kit_id=self.kwargs["pk"])

    def perform_create(self, serializer):
        serializer.instance = services.brand_kit_create(workspace=self.request.workspace, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.brand_kit_update(kit=serializer.instance, **serializer.validated_data)


class ScenePresetViewSet(_Versioned):
    serializer_class = ScenePresetSerializer
    queryset = ScenePreset.objects.none()

    def scoped_queryset(self):
        return selectors.preset_list(workspace=self.request.workspace)

    def get_object(self):
        return selectors.preset_get(workspace=self.request.workspace, preset_id=self.kwargs["pk"])

    def perform_create(self, serializer):
        serializer.instance = services.preset_create(workspace=self.request.workspace, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.preset_update(preset=serializer.instance, **serializer.validated_data)
