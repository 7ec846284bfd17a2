"""Brand kits and scene presets over the API. Anyone in the workspace reads them; owners and
brand managers change them (each change bumps the row's version and records it in its
history)."""
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from brand import selectors, services
from brand.models import BrandKit, ScenePreset
from catalog.api.permissions import IsWorkspaceMember
from catalog.api.views import WorkspaceScoped, stored_file_response
from catalog.models import Role


class BrandManagersWrite(BasePermission):
    message = "Only owners and brand managers can change brand kits and presets."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or request.membership.role in (Role.OWNER, Role.BRAND_MANAGER)


# The services check these values (one set of rules for the API and the pages); the fields
# only say in the schema what they take.
@extend_schema_field({"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": services.MAX_BANNED_TERM_CHARS}, "maxItems": services.MAX_BANNED_TERMS})
class _TermList(serializers.JSONField):
    pass


@extend_schema_field({"type": "array", "items": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}, "minItems": 2, "maxItems": 3})
class _Palette(serializers.JSONField):
    pass


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class _ChannelList(serializers.JSONField):
    pass


class BrandKitSerializer(serializers.ModelSerializer):
    palette = _Palette(help_text='2 or 3 colours as "#rrggbb": backdrop, surface, accent. Required when creating a kit.')
    banned_terms = _TermList(
        required=False,
        help_text=(
            f"Words or phrases a prompt may not use (at most {services.MAX_BANNED_TERMS}, each 1 to"
            f" {services.MAX_BANNED_TERM_CHARS} characters). Matched case- and Unicode-insensitively, with simple"
            ' plurals and possessives: "knife" also refuses "knives" and "knife\'s".'
        ),
    )
    default_channels = _ChannelList(required=False, help_text="Channel names jobs use when they name none, e.g. [\"square-2048\"].")
    palette_max_delta_e = serializers.FloatField(
        required=False,
        help_text="Palette adherence tolerance for the QA gate: the largest CIEDE2000 difference allowed between a scene's main colours and the palette (1 strict … 100 anything; default 20).",
    )
    loras = serializers.SerializerMethodField()
    logo = serializers.SerializerMethodField()

    class Meta:
        model = BrandKit
        fields = [
            "id", "name", "palette", "prompt_fragment", "default_negative_prompt", "banned_terms", "default_channels",
            "palette_max_delta_e", "is_default", "version", "logo", "loras", "updated_at",
        ]
        read_only_fields = ["id", "version", "logo", "loras", "updated_at"]

    def get_loras(self, kit) -> list[dict]:
        return [{"name": a.name, "weight": a.weight, "sha256": a.sha256} for a in kit.loras.all()]

    def get_logo(self, kit) -> str | None:
        """Where the kit's logo can be downloaded, or null."""
        return reverse("api:brand-kit-logo-file", kwargs={"pk": kit.pk}) if kit.logo else None


class ScenePresetSerializer(serializers.ModelSerializer):
    thumbnail = serializers.SerializerMethodField()
    reads_prompt = serializers.BooleanField(
        read_only=True,
        help_text="Whether the preset's model reads free text. backdrop-mini does not: it follows the preset's style and the brand palette.",
    )

    class Meta:
        model = ScenePreset
        fields = [
            "id", "name", "slug", "model", "style", "prompt", "negative_prompt", "scheduler", "steps", "guidance",
            "strength", "is_default", "version", "thumbnail", "reads_prompt", "updated_at",
        ]
        read_only_fields = ["id", "version", "thumbnail", "updated_at"]
        extra_kwargs = {
            "slug": {"required": False},
            "model": {"help_text": "An installed model of the registry (GET /api/v1/presets/models/ lists them)."},
        }

    def get_thumbnail(self, preset) -> str | None:
        if not preset.thumbnail:
            return None
        return reverse("preset-thumbnail", kwargs={"preset_id": preset.pk})


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    created_by = serializers.SerializerMethodField()
    changes = serializers.ListField(
        child=serializers.DictField(), help_text='What changed from the version before: [{"field", "label", "text", "before", "after"}]; empty for the first.',
    )
    snapshot = serializers.JSONField(help_text="The row as it was at this version (what a recipe records).")

    def get_created_by(self, row) -> str | None:
        return row.created_by.email if row.created_by else None


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
    file = serializers.FileField(help_text=f"LoRA adapter weights (.safetensors, diffusers or kohya layout), at most {services.LORA_MAX_BYTES // 1024**2} MB")


class LogoUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=f"The logo: JPEG, PNG (transparency kept) or WebP, at most {services.LOGO_MAX_BYTES // 1024**2} MB")


ProposedPalette = inline_serializer(
    "LogoUploaded",
    fields={
        "kit": BrandKitSerializer(),
        "proposed_palette": serializers.ListField(
            child=inline_serializer("ProposedColour", fields={"colour": serializers.CharField(), "share": serializers.FloatField()}),
            help_text="Up to 3 dominant colours of the logo, largest share first. The kit's palette is not changed: PATCH it to use them.",
        ),
    },
)


@extend_schema_view(
    list=extend_schema(summary="List brand kits", description="The workspace's brand kits, the default first by name."),
    retrieve=extend_schema(summary="A brand kit"),
    create=extend_schema(summary="Create a brand kit", description="Owners and brand managers. `name` and `palette` are required."),
    update=extend_schema(summary="Replace a brand kit", description="Owners and brand managers; bumps the version."),
    partial_update=extend_schema(summary="Change a brand kit", description="Owners and brand managers; bumps the version and records it in the history."),
)
class BrandKitViewSet(_Versioned):
    serializer_class = BrandKitSerializer
    queryset = BrandKit.objects.none()
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Attach a LoRA adapter",
        description=f"Upload a .safetensors LoRA (multipart; at most {services.LORA_MAX_BYTES // 1024**2} MB). The upload is streamed to disk; its header is checked (each tensor's dtype, shape and offsets, packed end to end, as the safetensors reader requires) without loading the weights, and a refused file leaves nothing stored. Bumps the kit's version. LoRAs apply to the diffusion models only (backdrop-mini skips them).",
        request={"multipart/form-data": LoraUploadSerializer}, responses={201: BrandKitSerializer},
    )
    @action(detail=True, methods=["post"])
    def loras(self, request, pk=None):
        kit = self.get_object()
        data = LoraUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.lora_add(kit=kit, name=data.validated_data["name"], data=data.validated_data["file"], weight=data.validated_data["weight"], by=request.user)
        return Response(self.get_serializer(selectors.brand_kit_get(workspace=request.workspace, kit_id=kit.pk)).data, status=201)

    @extend_schema(
        summary="Upload a logo and get a palette from it",
        description="Stores the kit's logo (bumps its version) and proposes up to 3 dominant colours of it (transparent pixels left out). The palette itself is not changed.",
        request={"multipart/form-data": LogoUploadSerializer}, responses={201: ProposedPalette},
    )
    @action(detail=True, methods=["post"])
    def logo(self, request, pk=None):
        kit = self.get_object()
        data = LogoUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.brand_kit_logo_set(kit=kit, file=data.validated_data["file"], by=request.user)
        kit = selectors.brand_kit_get(workspace=request.workspace, kit_id=kit.pk)
        proposal = [{"colour": colour, "share": round(share, 4)} for colour, share in selectors.brand_kit_logo_palette(kit=kit)]
        return Response({"kit": self.get_serializer(kit).data, "proposed_palette": proposal}, status=201)

    @extend_schema(summary="Download the kit's logo", responses={(200, "image/png"): OpenApiResponse(description="the stored logo (PNG)")})
    @action(detail=True, methods=["get"], url_path="logo/file", url_name="logo-file")
    def logo_file(self, request, pk=None):
        kit = self.get_object()
        if not kit.logo:
            raise Http404("This brand kit has no logo.")
        return stored_file_response(kit.logo, f"logo-{kit.pk}.png")

    @extend_schema(summary="The kit's version history", description="Newest first (the last 50), each with what changed.", responses={200: VersionSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None)
    def versions(self, request, pk=None):
        return Response(VersionSerializer(selectors.brand_kit_versions(kit=self.get_object()), many=True).data)

    def scoped_queryset(self):
        return selectors.brand_kit_list(workspace=self.request.workspace)

    def get_object(self):
        return selectors.brand_kit_get(workspace=self.request.workspace, kit_id=self.kwargs["pk"])

    def perform_create(self, serializer):
        serializer.instance = services.brand_kit_create(workspace=self.request.workspace, by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.brand_kit_update(kit=serializer.instance, by=self.request.user, **serializer.validated_data)


@extend_schema_view(
    list=extend_schema(summary="List scene presets"),
    retrieve=extend_schema(summary="A scene preset"),
    create=extend_schema(
        summary="Create a scene preset",
        description="Owners and brand managers. The model must be installed; sampling settings it does not give are the model's defaults, and those it gives must suit the model (field errors say why not).",
    ),
    update=extend_schema(summary="Replace a scene preset", description="Owners and brand managers; bumps the version."),
    partial_update=extend_schema(summary="Change a scene preset", description="Owners and brand managers; the stored settings with these changes are checked against the model."),
)
class ScenePresetViewSet(_Versioned):
    serializer_class = ScenePresetSerializer
    queryset = ScenePreset.objects.none()

    @extend_schema(summary="The preset's version history", description="Newest first (the last 50), each with what changed.", responses={200: VersionSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None)
    def versions(self, request, pk=None):
        return Response(VersionSerializer(selectors.preset_versions(preset=self.get_object()), many=True).data)

    @extend_schema(
        summary="Installed scene models",
        description="The models a preset may name on this server, whether each reads the prompt, and its sampling defaults.",
        responses={200: inline_serializer("SceneModel", many=True, fields={
            "name": serializers.CharField(), "description": serializers.CharField(), "reads_prompt": serializers.BooleanField(),
            "schedulers": serializers.ListField(child=serializers.CharField()), "steps": serializers.IntegerField(),
            "guidance": serializers.FloatField(), "strength": serializers.FloatField(), "title": serializers.CharField(),
            "steps_range": serializers.ListField(child=serializers.IntegerField()),
            "guidance_range": serializers.ListField(child=serializers.FloatField()),
            "strength_range": serializers.ListField(child=serializers.FloatField()),
        })},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def models(self, request):
        return Response(selectors.scene_models())

    def scoped_queryset(self):
        return selectors.preset_list(workspace=self.request.workspace)

    def get_object(self):
        return selectors.preset_get(workspace=self.request.workspace, preset_id=self.kwargs["pk"])

    def perform_create(self, serializer):
        serializer.instance = services.preset_create(workspace=self.request.workspace, by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.preset_update(preset=serializer.instance, by=self.request.user, **serializer.validated_data)
