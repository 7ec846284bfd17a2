"""Cutouts over the API: list revisions, download files, upload a touched-up mask, reset."""
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from catalog.api.serializers import JobSerializer
from catalog.api.views import WorkspaceScoped, stored_file_response
from catalog.uploads import UploadRejected
from generation import selectors, services
from generation.models import Cutout

from .serializers import CutoutResetSerializer, CutoutRevisionSerializer, CutoutSerializer, SegmentRequestSerializer

MAX_MASK_BYTES = 20 * 1024 * 1024


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
        responses={201: CutoutSerializer},
        description="Save a touched-up mask as the photo's next cutout revision.",
    )
    def create(self, request):
        data = CutoutRevisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photo = catalog_selectors.photo_get(workspace=request.workspace, photo_id=data.validated_data["photo"])
        if "base" in data.validated_data:
            base = selectors.cutout_get(workspace=request.workspace, cutout_id=data.validated_data["base"])
            if base.photo_id != photo.pk:
                raise UploadRejected("That cutout revision belongs to another photo.", "invalid_base")
        else:
            base = selectors.cutout_current(photo=photo)
            if base is None:
                raise UploadRejected("This photo has no cutout yet; wait for it to finish.", "no_cutout")
        upload = data.validated_data["mask"]
        if upload.size > MAX_MASK_BYTES:
            raise UploadRejected("The mask file is larger than 20 MB.", "invalid_mask")
        mask = services.mask_from_png(data=upload.read(), size=(photo.width, photo.height))
        cutout = services.cutout_revise(base=base, mask=mask, user=request.user)
        return Response(self.get_serializer(cutout).data, status=status.HTTP_201_CREATED)

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
