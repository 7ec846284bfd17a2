"""Exports over the API: publish approved images to a storefront, follow and retry them.

    GET  /api/v1/exports/                 ?connection=&status=
    GET  /api/v1/exports/{id}/
    POST /api/v1/exports/{id}/retry/
    POST /api/v1/assets/{id}/publish/     {"connection": id, "replace_earlier": false}
    POST /api/v1/assets/publish/          {"ids": [...], "connection": id, "replace_earlier": false}

Only brand managers and owners publish (403 for others); an image that cannot go as things
stand answers 409 with what to do (code `not_approved`, `product_not_linked`, …)."""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from catalog.api.errors import Conflict, ErrorSerializer
from catalog.api.query import IdParameter, validated_query
from catalog.api.views import WorkspaceScoped
from storefront import publish, selectors
from storefront.models import Export, ExportStatus
from studio import selectors as studio_selectors


class ExportSerializer(serializers.ModelSerializer):
    """One image sent to one shop: its status, the shop's id and address for it once placed,
    and, when it failed, why in words."""

    shop_domain = serializers.CharField(source="connection.shop_domain", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Export
        fields = [
            "id", "connection", "shop_domain", "asset", "content_sha256", "status", "status_label", "remote_product_id", "remote_media_id",
            "remote_url", "adapter", "replace_earlier", "attempts", "error", "created_at", "updated_at", "published_at", "removed_at",
        ]
        read_only_fields = fields


class ExportListQuery(serializers.Serializer):
    connection = IdParameter(help_text="Only exports to this storefront connection.")
    status = serializers.ChoiceField(choices=ExportStatus.choices, required=False, help_text="Only exports in this state.")


class PublishRequestSerializer(serializers.Serializer):
    connection = serializers.IntegerField(min_value=1, help_text="The storefront connection to publish to.")
    replace_earlier = serializers.BooleanField(
        required=False, default=False,
        help_text="Remove the images Vitrine published to this product before (never the merchant's own images) once the new one is ready.",
    )


class BulkPublishRequestSerializer(PublishRequestSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=500, help_text="Asset ids to publish.")


class PublishSkippedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()


class BulkPublishResultSerializer(serializers.Serializer):
    exports = ExportSerializer(many=True, help_text="One export per image queued (or the existing one for bytes already sent)")
    skipped = PublishSkippedSerializer(many=True, help_text="Images that cannot be published as things stand, each with why")


_NOT_ALLOWED = OpenApiResponse(ErrorSerializer, description="Only brand managers and owners publish.")
_CONFLICT = OpenApiResponse(ErrorSerializer, description="The image or export cannot go as things stand; the message says what to do.")


def _conflict(exc: publish.PublishConflict) -> Conflict:
    return Conflict(exc.message, code=exc.code)


class ExportViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The workspace's exports, newest first."""

    serializer_class = ExportSerializer
    queryset = Export.objects.none()

    def scoped_queryset(self):
        query = validated_query(ExportListQuery, self.request)
        return selectors.export_list(workspace=self.request.workspace, connection=query.get("connection"), status=query.get("status") or None)

    def get_object(self):
        return selectors.export_get(workspace=self.request.workspace, export_id=self.kwargs["pk"])

    @extend_schema(parameters=[ExportListQuery])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={202: ExportSerializer, 403: _NOT_ALLOWED, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue a failed export again (brand managers and owners). What the shop already
        holds of it is finished, not uploaded a second time."""
        export = self.get_object()
        publish.require_publisher(workspace_id=request.workspace.pk, user=request.user)
        try:
            export = publish.export_retry(export=export)
        except publish.PublishConflict as exc:
            raise _conflict(exc) from None
        return Response(ExportSerializer(selectors.export_get(workspace=request.workspace, export_id=export.pk)).data, status=status.HTTP_202_ACCEPTED)


class AssetPublishView(viewsets.ViewSet):
    """POST /api/v1/assets/{id}/publish/: send one approved image to a storefront."""

    @extend_schema(operation_id="v1_assets_publish_create", request=PublishRequestSerializer, responses={202: ExportSerializer, 403: _NOT_ALLOWED, 409: _CONFLICT})
    def create(self, request, pk=None):
        """Queue the image for the shop (brand managers and owners; approved images only). The
        same bytes published again return the export that exists: nothing is sent twice."""
        asset = studio_selectors.asset_get(workspace=request.workspace, asset_id=pk)
        data = PublishRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        connection = selectors.connection_get(workspace=request.workspace, connection_id=data.validated_data["connection"])
        try:
            export = publish.publish_request(asset=asset, connection=connection, user=request.user, replace_earlier=data.validated_data["replace_earlier"])
        except publish.PublishConflict as exc:
            raise _conflict(exc) from None
        return Response(ExportSerializer(selectors.export_get(workspace=request.workspace, export_id=export.pk)).data, status=status.HTTP_202_ACCEPTED)


class AssetsPublishView(viewsets.ViewSet):
    """POST /api/v1/assets/publish/: send several approved images to a storefront."""

    @extend_schema(operation_id="v1_assets_publish_bulk_create", request=BulkPublishRequestSerializer, responses={202: BulkPublishResultSerializer, 403: _NOT_ALLOWED})
    def create(self, request):
        """Queue each image for the shop; one that cannot go (not approved, its product not in
        that shop, …) is listed in `skipped` with why. An id outside the workspace answers 404
        and nothing is queued."""
        data = BulkPublishRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        connection = selectors.connection_get(workspace=request.workspace, connection_id=values["connection"])
        assets = studio_selectors.assets_get(workspace=request.workspace, asset_ids=values["ids"])
        result = publish.publish_bulk(assets=assets, connection=connection, user=request.user, replace_earlier=values["replace_earlier"])
        exports = selectors.export_list(workspace=request.workspace).filter(pk__in=[e.pk for e in result.exports]).order_by("asset_id")
        return Response(
            {"exports": ExportSerializer(exports, many=True).data, "skipped": [{"id": a.pk, "reason": why} for a, why in result.skipped]},
            status=status.HTTP_202_ACCEPTED,
        )
