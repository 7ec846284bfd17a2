"""Thin API views: validate, call one service or selector, serialize."""
import math

from django.contrib.auth import authenticate
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from catalog import lockout, selectors, services
from catalog.models import PhotoJob, Product, ProductPhoto
from generation.decoding import UploadRejected

from .permissions import WORKSPACE_HEADER
from .query import SEARCH_SCHEMA, JobListQuery, PhotoListQuery, ProductListQuery, validated_query
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


class SignInLocked(APIException):
    """Too many wrong passwords for this account from this address (catalog/lockout.py)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"


def refuse_if_locked_out(request) -> None:
    """After `authenticate(request, ...)`: raise SignInLocked (429, the lockout's words and
    Retry-After) when django-axes marked this attempt locked out, on this failure or an earlier one."""
    if getattr(request, "axes_locked_out", False):
        until = lockout.lockout_until(request, getattr(request, "axes_credentials", None))
        locked = SignInLocked(lockout.lockout_message(until))
        locked.wait = max(1, math.ceil((until - timezone.now()).total_seconds()))  # DRF sends it as Retry-After
        raise locked


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
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many attempts from this address (wait a minute), or too many wrong passwords for this "
                "account from this address (code `locked_out`): the message says when to try again, `Retry-After` "
                "gives the seconds. During a lockout even the right password is refused.",
            ),
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
        refuse_if_locked_out(request)
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
        query = validated_query(ProductListQuery, self.request)
        return selectors.product_list(workspace=self.request.workspace, search=query.get("search") or None)

    def get_object(self):
        return selectors.product_get(workspace=self.request.workspace, product_id=self.kwargs["pk"])

    @extend_schema(parameters=[OpenApiParameter(
        "search", SEARCH_SCHEMA, description="Only products whose title, SKU or handle contains this text (case-insensitive); printable text, at most 200 characters.",
    )])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = services.product_create(workspace=self.request.workspace, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.product_update(product=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.product_delete(product=instance)


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
        query = validated_query(PhotoListQuery, self.request)
        return selectors.photo_list(
            workspace=self.request.workspace,
            product_id=query.get("product"),
            unassigned=query["unassigned"],
            status=query.get("status"),
        )

    def get_object(self):
        return selectors.photo_get(workspace=self.request.workspace, photo_id=self.kwargs["pk"])

    @extend_schema(parameters=[PhotoListQuery])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={201: PhotoSerializer, 200: PhotoSerializer},
        description="Upload one photo (JPEG, PNG, WebP, HEIC or AVIF). Answers 201 for a new photo, 200 with the existing "
        "photo when the same bytes are already in the workspace, 400 with a reason otherwise. A photo of more than "
        "VITRINE_UPLOAD_INLINE_MAX_PIXELS (default 12.5 MP) is accepted on its header (format, size, dimensions, "
        "metadata) and answers 201 with `status: \"checking\"` while a worker decodes it; it then becomes ready, or "
        "failed with the reason in its decode job's `error` (its file is deleted). Poll `GET /photos/{id}/`.",
    )
    def create(self, request):
        if len(request.FILES.getlist("file")) > 1:
            # A second part used to replace the first silently; say which rule applies instead.
            raise UploadRejected("Send one file per request; this request has more than one `file` part.", "one_file_per_request")
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
            if variant == "thumbnail":
                raise Http404("This photo has no thumbnail yet.")
            checking = photo.status == "checking"
            raise Http404(f"This photo has no {variant} file" + (" yet: it is still being checked." if checking else "."))
        return stored_file_response(field, f"{photo.pk}-{variant}{field.name[field.name.rfind('.'):]}")


class JobViewSet(WorkspaceScoped, viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer
    queryset = PhotoJob.objects.none()

    def scoped_queryset(self):
        query = validated_query(JobListQuery, self.request)
        return selectors.job_list(workspace=self.request.workspace, photo_id=query.get("photo"), status=query.get("status"))

    def get_object(self):
        return selectors.job_get(workspace=self.request.workspace, job_id=self.kwargs["pk"])

    @extend_schema(parameters=[JobListQuery])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
