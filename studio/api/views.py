"""Cutouts over the API: list revisions, download files, upload a touched-up mask, reset."""
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from catalog.api.serializers import JobSerializer
from catalog.api.views import PhotoViewSet as CatalogPhotoViewSet
from catalog.api.views import WorkspaceScoped, stored_file_response
from studio import selectors, services
from brand import selectors as brand_selectors
from studio.models import Asset, Cutout, GenerationJob

from .serializers import (
    AssetSerializer,
    CutoutResetSerializer,
    CutoutRevisionSerializer,
    CutoutSerializer,
    ErrorSerializer,
    GenerationJobCreateSerializer,
    GenerationJobSerializer,
    SegmentRequestSerializer,
)


class Conflict(APIException):
    """409: the request clashes with work already under way (the message says what to do)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class LimitReached(APIException):
    """429: the workspace reached one of its generation limits (the message says which)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "limit_reached"


class PhotoViewSet(CatalogPhotoViewSet):
    """The catalog's photos; an upload also queues the photo's cutout, and a delete takes the
    photo's cutouts (and, when asked, its generated images) along."""

    photo_upload = staticmethod(services.photo_add)

    @extend_schema(
        parameters=[OpenApiParameter("delete_assets", bool, description="Also delete the images generated from this photo")],
        responses={
            204: None,
            409: OpenApiResponse(ErrorSerializer, description="The photo has generated images and `delete_assets` was not set (code `photo_has_assets`)."),
        },
        description="Delete a photo with its cutout revisions and generation jobs. A photo with generated images "
        "is deleted only with `?delete_assets=true`, which deletes those images too.",
    )
    def destroy(self, request, *args, **kwargs):
        photo = self.get_object()
        delete_assets = request.query_params.get("delete_assets", "").lower() in {"1", "true", "yes"}
        try:
            services.photo_remove(photo=photo, delete_assets=delete_assets)
        except services.PhotoHasAssets as exc:
            raise Conflict(exc.message, code="photo_has_assets") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class CutoutViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = CutoutSerializer
    queryset = Cutout.objects.none()
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def scoped_queryset(self):
        return selectors.cutout_list(workspace=self.request.workspace, photo_id=self.request.query_params.get("photo") or None)

    def get_object(self):
        return selectors.cutout_get(workspace=self.request.workspace, cutout_id=self.kwargs["pk"])

    @extend_schema(parameters=[OpenApiParameter("photo", int, description="Only this photo's revisions (newest first)")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": CutoutRevisionSerializer},
        responses={
            202: JobSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not a PNG, not the photo's size, over 20 MB, or a base of another photo."),
            409: OpenApiResponse(ErrorSerializer, description="A touch-up of this photo is still queued or running (code `touch_up_running`)."),
        },
        description="Queue a touch-up: the mask (PNG of the photo's size, white = product) becomes the lock region of "
        "the photo's next cutout revision. Answers 202 with the photo job (kind `touch_up`); follow it at "
        "`/api/v1/photo-jobs/{id}/` until it has succeeded (the new revision is then in `/api/v1/cutouts/?photo=`) or "
        "failed (`error` says why). One touch-up per photo at a time: while one is queued or running, another is "
        "refused with 409 and its mask is not kept.",
    )
    def create(self, request):
        data = CutoutRevisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photo = catalog_selectors.photo_get(workspace=request.workspace, photo_id=data.validated_data["photo"])
        base = selectors.cutout_get(workspace=request.workspace, cutout_id=data.validated_data["base"]) if "base" in data.validated_data else None
        try:
            job = services.cutout_touch_up_request(photo=photo, base=base, mask=data.validated_data["mask"], user=request.user)
        except services.TouchUpInProgress as exc:
            raise Conflict(exc.message, code="touch_up_running") from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=CutoutResetSerializer, responses={201: CutoutSerializer})
    @action(detail=False, methods=["post"])
    def reset(self, request):
        """Make the newest automatic cutout the current one again, as a new revision."""
        data = CutoutResetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photo = catalog_selectors.photo_get(workspace=request.workspace, photo_id=data.validated_data["photo"])
        cutout = services.cutout_reset(photo=photo, user=request.user)
        return Response(self.get_serializer(cutout).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "image/png"): bytes}, description="cutout: RGBA PNG; mask: L PNG, 255 = locked.")
    @action(detail=True, methods=["get"], url_path=r"file/(?P<variant>cutout|mask)", url_name="file")
    def file(self, request, pk=None, variant=None):
        cutout = self.get_object()
        return stored_file_response(getattr(cutout, variant), f"cutout-{cutout.pk}-{variant}.png")


class PhotoSegmentView(viewsets.ViewSet):
    """POST /api/v1/photos/{id}/segment/: run the automatic cutout again."""

    @extend_schema(request=SegmentRequestSerializer, responses={202: JobSerializer})
    def create(self, request, pk=None):
        photo = catalog_selectors.photo_get(workspace=request.workspace, photo_id=pk)
        data = SegmentRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.cutout_request(photo=photo, segmenter=data.validated_data.get("segmenter"))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class GenerationJobViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Scene generation jobs: create (202), follow progress, cancel."""

    serializer_class = GenerationJobSerializer
    queryset = GenerationJob.objects.none()

    def scoped_queryset(self):
        return selectors.generation_job_list(
            workspace=self.request.workspace,
            photo_id=self.request.query_params.get("photo") or None,
            status=self.request.query_params.get("status") or None,
        )

    def get_object(self):
        return selectors.generation_job_get(workspace=self.request.workspace, job_id=self.kwargs["pk"])

    @extend_schema(
        request=GenerationJobCreateSerializer,
        responses={
            202: GenerationJobSerializer,
            429: OpenApiResponse(
                ErrorSerializer,
                description="The workspace has too many jobs waiting (code `too_many_queued_jobs`) or asked for "
                "too many images in the last 24 hours (code `daily_image_limit`).",
            ),
        },
        description="Queue scenes for a photo. The smallest request is {\"photo\": id}; everything else comes "
        "from the workspace's default brand kit and preset. The job waits for the photo's cutout if needed, "
        "and for its workspace's turn on the GPUs.",
    )
    def create(self, request):
        data = GenerationJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        workspace = request.workspace
        photo = catalog_selectors.photo_get(workspace=workspace, photo_id=values["photo"])
        preset = brand_selectors.preset_get(workspace=workspace, preset_id=values["preset"]) if values.get("preset") else None
        kit = brand_selectors.brand_kit_get(workspace=workspace, kit_id=values["brand_kit"]) if values.get("brand_kit") else None
        try:
            job = services.generation_job_create(
                photo=photo, user=request.user, variants=values["variants"], seed=values.get("seed"), preset=preset,
                brand_kit=kit, prompt=values["prompt"], channels=values.get("channels"),
            )
        except services.WorkspaceLimitReached as exc:
            raise LimitReached(exc.message, code=exc.code) from None
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=GenerationJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: a queued job stops at once, a running one after its current step."""
        return Response(self.get_serializer(services.generation_job_cancel(job=self.get_object())).data)


class AssetViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AssetSerializer
    queryset = Asset.objects.none()

    def scoped_queryset(self):
        params = self.request.query_params
        return selectors.asset_list(workspace=self.request.workspace, job_id=params.get("job") or None, photo_id=params.get("photo") or None)

    def get_object(self):
        return selectors.asset_get(workspace=self.request.workspace, asset_id=self.kwargs["pk"])

    @extend_schema(parameters=[OpenApiParameter("job", int), OpenApiParameter("photo", int)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={(200, "image/png"): bytes}, description="The delivered PNG (with its XMP provenance mark).")
    @action(detail=True, methods=["get"], url_path="file", url_name="file")
    def file(self, request, pk=None):
        asset = self.get_object()
        return stored_file_response(asset.file, f"vitrine-{asset.photo_id}-{asset.channel}-{asset.variant}.png")

    @extend_schema(responses={(200, "image/webp"): bytes}, description="A small WebP preview for galleries.")
    @action(detail=True, methods=["get"], url_path="preview", url_name="preview")
    def preview(self, request, pk=None):
        asset = self.get_object()
        if not asset.preview:
            raise Http404("This asset has no preview.")
        return stored_file_response(asset.preview, f"asset-{asset.pk}-preview.webp")

    @extend_schema(request=None, responses={202: GenerationJobSerializer})
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        """Replay this asset's recipe as a new job (same cutout, model, prompts, settings, seed)."""
        job = services.asset_regenerate(asset=self.get_object(), user=request.user)
        return Response(GenerationJobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
