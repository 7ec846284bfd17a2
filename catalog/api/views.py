"""Thin API views: validate, call one service or selector, serialize."""
from django.contrib.auth import authenticate
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.models import PhotoJob, Product, ProductPhoto
from generation.decoding import UploadRejected

from .permissions import WORKSPACE_HEADER
from .errors import ErrorSerializer
from .serializers import (
    JobSerializer,
    PhotoAssignResultSerializer,
    PhotoAssignSerializer,
    PhotoSerializer,
    PhotoUpdateSerializer,
    PhotoUploadSerializer,
    ProductSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)


def stored_file_response(field, filename: str):
    """Stream a stored file to a caller who may see it (the caller checked the workspace)."""
    if not isinstance(default_storage, FileSystemStorage):
        # Object storage: hand the client a short-lived signed URL instead of proxying bytes.
        return HttpResponseRedirect(field.url)
    response = FileResponse(field.open("rb"), filename=filename)
    response["Cache-Control"] = "private, max-age=3600"
    return response


class TokenThrottle(AnonRateThrottle):
    rate = "20/min"


class AuthTokenView(APIView):
    """Exchange email + password for a new API token named "API login"."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenThrottle]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(ErrorSerializer, description="The email and password do not match an account."),
            403: OpenApiResponse(ErrorSerializer, description="The account belongs to no workspace, or not to the one named in `X-Vitrine-Workspace` (code `no_workspace`)."),
            429: OpenApiResponse(ErrorSerializer, description="Too many attempts from this address; wait a minute."),
        },
        summary="Sign in for an API token",
        description="Creates a new API token named “API login” for the account, acting in the workspace named by the "
        "`X-Vitrine-Workspace` header (default: the account's first workspace). It expires after the server's default "
        "(90 days unless configured); the key is in `token` and is shown only in this response. Send it as "
        "`Authorization: Token <key>`. Tokens are listed and revoked at `/api/v1/tokens/` and on the Settings page.",
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, email=data.validated_data["email"].lower(), password=data.validated_data["password"])
        if user is None or not user.is_active:
            raise ValidationError("That email and password do not match an account.", code="invalid_credentials")
        membership = selectors.membership_for(user=user, workspace_slug=request.META.get(WORKSPACE_HEADER))
        if membership is None:
            raise PermissionDenied(
                "That account does not belong to this workspace yet. Ask an owner of the workspace to invite you.", code="no_workspace"
            )
        token, key = services.api_token_create(membership=membership, name="API login")
        return Response({"token": key, "name": token.name, "workspace": membership.workspace.slug, "expires_at": token.expires_at})


class WorkspaceScoped:
    """Lists come from selectors scoped to request.workspace (set by IsWorkspaceMember); the
    empty queryset only tells the schema generator the model."""

    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return self.scoped_queryset()


class ProductViewSet(WorkspaceScoped, viewsets.ModelViewSet):
    serializer_class = ProductSerializer
    queryset = Product.objects.none()

    def scoped_queryset(self):
        return selectors.product_list(workspace=self.request.workspace, search=self.request.query_params.get("search"))

    def get_object(self):
        return selectors.product_get(workspace=self.request.workspace, product_id=self.kwargs["pk"])

    @extend_schema(parameters=[OpenApiParameter("search", str, description="Title, SKU or handle contains")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = services.product_create(workspace=self.request.workspace, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.product_update(product=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.product_delete(product=instance)


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() in {"1", "true", "yes"}


class PhotoViewSet(
    WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = PhotoSerializer
    queryset = ProductPhoto.objects.none()
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    #: The upload service; an app above catalog that starts work on new photos (studio's
    #: cutout) registers a subclass with its own.
    photo_upload = staticmethod(services.photo_upload)

    def scoped_queryset(self):
        params = self.request.query_params
        status = params.get("status") or None
        if status is not None and status not in selectors.PHOTO_STATUSES:
            raise ValidationError({"status": f"Use one of: {', '.join(selectors.PHOTO_STATUSES)}."})
        return selectors.photo_list(
            workspace=self.request.workspace,
            product_id=params.get("product") or None,
            unassigned=_flag(params.get("unassigned")) is True,
            status=status,
        )

    def get_object(self):
        return selectors.photo_get(workspace=self.request.workspace, photo_id=self.kwargs["pk"])

    @extend_schema(
        parameters=[
            OpenApiParameter("product", int, description="Only this product's photos"),
            OpenApiParameter("unassigned", bool, description="Only photos not yet attached to a product"),
            OpenApiParameter("status", str, enum=["processing", "failed", "ready"], description="Only photos in this state"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={201: PhotoSerializer, 200: PhotoSerializer},
        description="Upload one photo (JPEG, PNG or WebP). Answers 201 for a new photo, 200 with the existing "
        "photo when the same bytes are already in the workspace, 400 with a reason otherwise.",
    )
    def create(self, request):
        data = PhotoUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = None
        if data.validated_data.get("product") is not None:
            try:
                product = selectors.product_get(workspace=request.workspace, product_id=data.validated_data["product"])
            except Http404:
                raise UploadRejected("That product does not exist in this workspace.", "unknown_product") from None
        result = self.photo_upload(
            workspace=request.workspace, file=data.validated_data["file"], uploaded_by=request.user, product=product
        )
        photo = selectors.photo_get(workspace=request.workspace, photo_id=result.photo.pk)
        return Response(
            self.get_serializer(photo).data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )

    @extend_schema(
        summary="Attach a photo to a product",
        request=PhotoUpdateSerializer,
        responses={200: PhotoSerializer, 404: OpenApiResponse(description="The photo or the product is not in this workspace.")},
        description="Move one photo to another product, or detach it with `\"product\": null`. "
        "`POST /api/v1/photos/assign/` moves many at once.",
    )
    def partial_update(self, request, pk=None):
        photo = self.get_object()
        data = PhotoUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product_id = data.validated_data["product"]
        product = None if product_id is None else selectors.product_get(workspace=request.workspace, product_id=product_id)
        services.photo_assign(photo=photo, product=product)
        return Response(self.get_serializer(selectors.photo_get(workspace=request.workspace, photo_id=photo.pk)).data)

    @extend_schema(
        summary="Move many photos to a product",
        request=PhotoAssignSerializer,
        responses={
            200: PhotoAssignResultSerializer,
            400: OpenApiResponse(description="No ids, too many, or not whole numbers (`fields.photos` says which)."),
            404: OpenApiResponse(description="A photo or the product is not in this workspace; the message names it. No photo was moved."),
        },
        description="Attach photos to one product, or detach them from any product with `\"product\": null`, in one "
        "step: either every photo moves or none does. Photos already attached elsewhere are moved. To move one "
        "photo, `PATCH /api/v1/photos/{id}/` with `{\"product\": id}` does the same.",
    )
    @action(detail=False, methods=["post"], url_path="assign", url_name="assign")
    def assign(self, request):
        data = PhotoAssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product_id = data.validated_data["product"]
        product = None if product_id is None else selectors.product_get(workspace=request.workspace, product_id=product_id)
        moved = services.photos_assign(workspace=request.workspace, photo_ids=data.validated_data["photos"], product=product)
        return Response(PhotoAssignResultSerializer({"product": product_id, "photos": moved}).data)

    def perform_destroy(self, instance):
        services.photo_delete(photo=instance)

    @extend_schema(responses={(200, "image/*"): bytes}, description="The photo's bytes: original, working or thumbnail.")
    @action(detail=True, methods=["get"], url_path=r"file/(?P<variant>original|working|thumbnail)", url_name="file")
    def file(self, request, pk=None, variant=None):
        photo = self.get_object()
        field = getattr(photo, variant)
        if not field:
            raise Http404("This photo has no thumbnail yet.")
        return stored_file_response(field, f"{photo.pk}-{variant}{field.name[field.name.rfind('.'):]}")


class JobViewSet(WorkspaceScoped, viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer
    queryset = PhotoJob.objects.none()

    def scoped_queryset(self):
        params = self.request.query_params
        return selectors.job_list(workspace=self.request.workspace, photo_id=params.get("photo") or None, status=params.get("status"))

    def get_object(self):
        return selectors.job_get(workspace=self.request.workspace, job_id=self.kwargs["pk"])
