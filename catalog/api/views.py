"""Thin API views: validate, call one service or selector, serialize."""
from django.contrib.auth import authenticate
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.models import PhotoJob, Product, ProductPhoto
from generation.decoding import UploadRejected

from .serializers import (
    JobSerializer,
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
    """Exchange email + password for the caller's API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenThrottle]

    @extend_schema(request=TokenRequestSerializer, responses=TokenSerializer)
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, email=data.validated_data["email"].lower(), password=data.validated_data["password"])
        if user is None or not user.is_active:
            raise ValidationError("That email and password do not match an account.", code="invalid_credentials")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


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

    @extend_schema(request=PhotoUpdateSerializer, responses=PhotoSerializer)
    def partial_update(self, request, pk=None):
        photo = self.get_object()
        data = PhotoUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product_id = data.validated_data["product"]
        product = None if product_id is None else selectors.product_get(workspace=request.workspace, product_id=product_id)
        services.photo_assign(photo=photo, product=product)
        return Response(self.get_serializer(selectors.photo_get(workspace=request.workspace, photo_id=photo.pk)).data)

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
