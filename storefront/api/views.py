from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from catalog.api.views import WorkspaceScoped
from storefront import selectors, services
from storefront.sync import sync_request
from storefront.models import StorefrontConnection

from .serializers import StorefrontConnectionSerializer, SyncRequestSerializer, SyncRunSerializer


class StorefrontConnectionViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The workspace's storefronts. Create connects a shop with a custom app's token; delete
    disconnects it and erases its credentials (the row stays, disconnected)."""

    serializer_class = StorefrontConnectionSerializer
    queryset = StorefrontConnection.objects.none()

    def scoped_queryset(self):
        return selectors.connection_list_with_sync(workspace=self.request.workspace)

    def get_object(self):
        return selectors.connection_get(workspace=self.request.workspace, connection_id=self.kwargs["pk"])

    def perform_create(self, serializer):
        # A Django ValidationError from the service becomes the API's 400 (catalog.api.errors).
        serializer.instance = services.connection_create(workspace=self.request.workspace, created_by=self.request.user, **serializer.validated_data)

    def destroy(self, request, *args, **kwargs):
        services.connection_disable(connection=self.get_object(), reason="Disconnected in Vitrine.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Import or sync the shop's products",
        request=SyncRequestSerializer,
        responses={
            202: SyncRunSerializer,
            400: OpenApiResponse(description="The storefront is disconnected."),
            404: OpenApiResponse(description="No such storefront in this workspace."),
        },
        description="Queues an import (`full: true`) or an incremental sync of the shop's products and their images; "
        "answers 202 with the run, whose `done` of `total` moves as pages are read. A run already queued or running "
        "for this shop is answered instead of a second one.",
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        data = SyncRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = sync_request(connection=self.get_object(), user=request.user, full=data.validated_data["full"])
        return Response(SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
