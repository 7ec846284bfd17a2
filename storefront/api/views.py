from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from catalog.api.views import WorkspaceScoped
from storefront import selectors, services
from storefront.models import StorefrontConnection

from .serializers import StorefrontConnectionSerializer


class StorefrontConnectionViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The workspace's storefronts. Create connects a shop with a custom app's token; delete
    disconnects it and erases its credentials (the row stays, disconnected)."""

    serializer_class = StorefrontConnectionSerializer
    queryset = StorefrontConnection.objects.none()

    def scoped_queryset(self):
        return selectors.connection_list(workspace=self.request.workspace)

    def get_object(self):
        return selectors.connection_get(workspace=self.request.workspace, connection_id=self.kwargs["pk"])

    def perform_create(self, serializer):
        # A Django ValidationError from the service becomes the API's 400 (catalog.api.errors).
        serializer.instance = services.connection_create(workspace=self.request.workspace, created_by=self.request.user, **serializer.validated_data)

    def destroy(self, request, *args, **kwargs):
        services.connection_disable(connection=self.get_object(), reason="Disconnected in Vitrine.")
        return Response(status=status.HTTP_204_NO_CONTENT)
