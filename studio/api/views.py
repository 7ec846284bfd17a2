"""Cutouts over the API: list revisions, download files, upload a touched-up mask, reset."""
from django.http import FileResponse, Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from catalog.api.serializers import JobSerializer
from catalog.api.views import PhotoViewSet as CatalogPhotoViewSet
from catalog.api.errors import Conflict, ErrorSerializer
from catalog.api.query import JobListQuery, validated_query
from catalog.api.views import WorkspaceScoped, stored_file_response
from brand import selectors as brand_selectors
from studio import reviews, selectors, services
from studio.downloads import assets_zip, audit_csv_lines
from studio.models import Asset, AuditEvent, Cutout, GenerationJob, Notification, ReviewState

from .serializers import (
    AssetCommentSerializer,
    AssetIdsSerializer,
    AssetSerializer,
    AuditEventSerializer,
    BulkActionSerializer,
    BulkResultSerializer,
    CommentCreateSerializer,
    CommentRequestSerializer,
    DecisionRequestSerializer,
    NotificationListQuery,
    NotificationReadSerializer,
    NotificationSerializer,
    PhotoDeleteQuery,
    RequiredCommentSerializer,
    ReviewSerializer,
    CutoutResetSerializer,
    CutoutRevisionSerializer,
    CutoutListQuery,
    CutoutSerializer,
    GenerationJobCreateSerializer,
    GenerationJobSerializer,
    SegmentRequestSerializer,
)


class LimitReached(APIException):
    """429: the workspace reached one of its generation limits (the message says which)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "limit_reached"


class PhotoViewSet(CatalogPhotoViewSet):
    """The catalog's photos; an upload also queues the photo's cutout, and a delete takes the
    photo's cutouts (and, when asked, its generated images) along."""

    photo_upload = staticmethod(services.photo_add)

    @extend_schema(
        summary="Delete a photo",
        parameters=[PhotoDeleteQuery],
        responses={
            204: None,
            404: OpenApiResponse(ErrorSerializer, description="No photo with that id in this workspace."),
            409: OpenApiResponse(
                ErrorSerializer,
                description="Nothing was deleted. Code `photo_has_assets`: the photo has generated images and "
                "`delete_assets` was not set. Code `photo_has_approved_assets`: some of them are approved and not "
                "published yet (the message says how many) and `delete_approved` was not set.",
            ),
        },
        description="Delete a photo with its files, cutout revisions (their files too), touch-up uploads and "
        "generation jobs. A photo with generated images is deleted only with `?delete_assets=true`, which deletes "
        "those images too; if any of them is approved and not yet published, `&delete_approved=true` is needed as "
        "well, so that a brand manager's approval is never lost by accident.",
    )
    def destroy(self, request, *args, **kwargs):
        photo = self.get_object()
        asked = validated_query(PhotoDeleteQuery, request)
        try:
            services.photo_remove(photo=photo, **asked)
        except services.PhotoHasAssets as exc:
            raise Conflict(exc.message, code="photo_has_assets") from None
        except services.PhotoHasApprovedAssets as exc:
            them = "it" if exc.count == 1 else "them"
            raise Conflict(f"{exc.message} To delete {them}, repeat with delete_approved=true.", code="photo_has_approved_assets") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class CutoutViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = CutoutSerializer
    queryset = Cutout.objects.none()
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def scoped_queryset(self):
        query = validated_query(CutoutListQuery, self.request)
        return selectors.cutout_list(workspace=self.request.workspace, photo_id=query.get("photo"))

    def get_object(self):
        return selectors.cutout_get(workspace=self.request.workspace, cutout_id=self.kwargs["pk"])

    @extend_schema(parameters=[CutoutListQuery])
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
            job = services.cutout_touch_up_request(
                photo=photo, base=base, mask=data.validated_data["mask"], user=request.user,
                snap_edges=data.validated_data["snap_edges"], holes=data.validated_data["holes"],
            )
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
        query = validated_query(JobListQuery, self.request)
        return selectors.generation_job_list(workspace=self.request.workspace, photo_id=query.get("photo"), status=query.get("status"))

    def get_object(self):
        return selectors.generation_job_get(workspace=self.request.workspace, job_id=self.kwargs["pk"])

    @extend_schema(parameters=[JobListQuery])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

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


def _asset_filters(params) -> selectors.AssetFilters:
    return selectors.AssetFilters.from_query(params)


ASSET_FILTER_PARAMS = [
    OpenApiParameter("job", int, description="Only this generation job's images"),
    OpenApiParameter("photo", int, description="Only images made from this photo"),
    OpenApiParameter("product", int, description="Only images of this product's photos"),
    OpenApiParameter("preset", int, description="Only images made with this scene preset"),
    OpenApiParameter("channel", str, description="Only this channel, e.g. square-2048"),
    OpenApiParameter("review_state", str, enum=list(ReviewState.values), description="Only images in this review state"),
    OpenApiParameter("gates", str, enum=["pass", "fail"], description="`pass`: every QA gate passes; `fail`: at least one fails"),
]
_NOT_ALLOWED = OpenApiResponse(ErrorSerializer, description="Your role may not do this (only brand managers and owners decide; "
                               "approving your own submission needs the workspace's permission).")
_CONFLICT = OpenApiResponse(ErrorSerializer, description="The image is not in a state this action starts from (code `review_conflict`).")


class AssetViewSet(WorkspaceScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Generated images: list and filter, download, review (submit, approve, request changes,
    reject, comment), history, regenerate, and a ZIP of a selection."""

    serializer_class = AssetSerializer
    queryset = Asset.objects.none()

    def scoped_queryset(self):
        return selectors.asset_list(workspace=self.request.workspace, filters=_asset_filters(self.request.query_params))

    def get_object(self):
        return selectors.asset_get(workspace=self.request.workspace, asset_id=self.kwargs["pk"])

    @extend_schema(parameters=ASSET_FILTER_PARAMS)
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
        """Replay this asset's recipe as a new job (same cutout, model, prompts, settings, seed).
        The new image is a new asset: an approval never carries over to other pixels, so an
        image that was submitted or approved puts its regenerated one in review."""
        job = services.asset_regenerate(asset=self.get_object(), user=request.user)
        return Response(GenerationJobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    # Review ----------------------------------------------------------------------------

    def _transition(self, request, service, serializer_class, **extra):
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        asset = self.get_object()
        try:
            service(asset=asset, actor=request.user, **data.validated_data, **extra)
        except reviews.ReviewConflict as exc:
            raise Conflict(str(exc), code="review_conflict") from None
        return Response(self.get_serializer(selectors.asset_get(workspace=request.workspace, asset_id=asset.pk)).data)

    @extend_schema(request=CommentRequestSerializer, responses={200: AssetSerializer, 403: _NOT_ALLOWED, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """Submit the image for review (any member; from `generated` or `changes_requested`)."""
        return self._transition(request, reviews.review_submit, CommentRequestSerializer)

    @extend_schema(
        request=DecisionRequestSerializer,
        responses={
            200: AssetSerializer, 403: _NOT_ALLOWED, 409: _CONFLICT,
            400: OpenApiResponse(ErrorSerializer, description="A QA gate fails and no `override_reason` was given."),
        },
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve an image in review (brand managers and owners). The approval pins the file's
        sha256 and the cutout revision. An image with a failing QA gate needs `override_reason`."""
        return self._transition(request, reviews.review_approve, DecisionRequestSerializer)

    @extend_schema(request=RequiredCommentSerializer, responses={200: AssetSerializer, 403: _NOT_ALLOWED, 409: _CONFLICT})
    @action(detail=True, methods=["post"], url_path="request-changes", url_name="request-changes")
    def request_changes(self, request, pk=None):
        """Send the image back to its submitter with a comment saying what to change."""
        return self._transition(request, reviews.review_request_changes, RequiredCommentSerializer)

    @extend_schema(request=RequiredCommentSerializer, responses={200: AssetSerializer, 403: _NOT_ALLOWED, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject the image for good, with a comment saying why."""
        return self._transition(request, reviews.review_reject, RequiredCommentSerializer)

    @extend_schema(methods=["get"], responses={200: AssetCommentSerializer(many=True)})
    @extend_schema(methods=["post"], request=CommentCreateSerializer, responses={201: AssetCommentSerializer})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, pk=None):
        """The image's comment thread (oldest first); any member may add to it."""
        asset = self.get_object()
        if request.method == "POST":
            data = CommentCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            comment = reviews.asset_comment_add(asset=asset, actor=request.user, body=data.validated_data["body"])
            return Response(AssetCommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        return Response(AssetCommentSerializer(selectors.asset_comments(asset=asset), many=True).data)

    @extend_schema(responses={200: ReviewSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def reviews(self, request, pk=None):
        """Every review round of the image, newest first: who submitted, who decided what, the
        pinned sha256 and cutout revision of an approval, and any override reason."""
        return Response(ReviewSerializer(selectors.asset_reviews(asset=self.get_object()), many=True).data)

    @extend_schema(responses={200: AuditEventSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """The image's audit trail, oldest first: who uploaded the photo, the cutout revisions
        and who touched them up, the model and recipe it was made with, every review action
        with its actor and comment, and every export."""
        return Response(AuditEventSerializer(selectors.asset_history(asset=self.get_object()), many=True).data)

    @extend_schema(request=BulkActionSerializer, responses={200: BulkResultSerializer, 403: _NOT_ALLOWED})
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """One action on many images. `approve` takes only images whose every QA gate passes
        (an override needs its own reason, one image at a time); `request_changes` and
        `reject` need a comment. Images that cannot move are listed in `skipped` with why;
        an id outside the workspace answers 404 and nothing moves."""
        data = BulkActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        assets = selectors.assets_get(workspace=request.workspace, asset_ids=values["ids"])
        if values["action"] == "submit":
            result = reviews.reviews_submit(assets=assets, actor=request.user, comment=values["comment"])
        else:
            decision = {"approve": "approved", "request_changes": "changes_requested", "reject": "rejected"}[values["action"]]
            result = reviews.reviews_decide(assets=assets, actor=request.user, decision=decision, comment=values["comment"])
        return Response({"done": [a.pk for a in result.done], "skipped": [{"id": a.pk, "reason": why} for a, why in result.skipped]})

    @extend_schema(request=AssetIdsSerializer, responses={(200, "application/zip"): bytes})
    @action(detail=False, methods=["post"])
    def download(self, request):
        """A ZIP of the chosen images: the PNGs, `manifest.csv` and `manifest.json` (product
        handle and SKU, channel, seed, recipe, lock certificate, QA gates, review state and who
        decided)."""
        data = AssetIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assets = selectors.assets_get(workspace=request.workspace, asset_ids=data.validated_data["ids"])
        return FileResponse(assets_zip(assets), as_attachment=True, filename=f"vitrine-{request.workspace.slug}-{len(assets)}-images.zip", content_type="application/zip")


class JobSubmitView(viewsets.ViewSet):
    """POST /api/v1/jobs/{id}/submit/: submit every image of a finished job for review."""

    @extend_schema(request=CommentRequestSerializer, responses={200: BulkResultSerializer})
    def create(self, request, pk=None):
        job = selectors.generation_job_get(workspace=request.workspace, job_id=pk)
        data = CommentRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assets = list(selectors.asset_list(workspace=request.workspace, job_id=job.pk))
        result = reviews.reviews_submit(assets=assets, actor=request.user, comment=data.validated_data["comment"])
        return Response({"done": [a.pk for a in result.done], "skipped": [{"id": a.pk, "reason": why} for a, why in result.skipped]})


class NotificationViewSet(WorkspaceScoped, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Your notifications in this workspace, newest first (`?unread=true` for the unread ones)."""

    serializer_class = NotificationSerializer
    queryset = Notification.objects.none()

    def scoped_queryset(self):
        unread = validated_query(NotificationListQuery, self.request)["unread"]
        return selectors.notification_list(user=self.request.user, workspace=self.request.workspace, unread=unread)

    @extend_schema(parameters=[NotificationListQuery])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=NotificationReadSerializer, responses={200: inline_serializer("NotificationsRead", {"marked": serializers.IntegerField()})})
    @action(detail=False, methods=["post"])
    def read(self, request):
        """Mark notifications read: the given `ids`, or every unread one."""
        data = NotificationReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        marked = reviews.notifications_mark_read(user=request.user, workspace=request.workspace, ids=data.validated_data.get("ids"))
        return Response({"marked": marked})


class AuditTrailView(WorkspaceScoped, viewsets.GenericViewSet):
    """GET /api/v1/audit/: the workspace's whole audit trail as CSV (brand managers and owners)."""

    queryset = AuditEvent.objects.none()

    @extend_schema(responses={(200, "text/csv"): bytes, 403: _NOT_ALLOWED})
    def list(self, request):
        if not reviews.can_decide(workspace=request.workspace, user=request.user):
            raise PermissionDenied("Only a brand manager or an owner can download the audit trail.")
        lines = audit_csv_lines(selectors.audit_list(workspace=request.workspace))
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="vitrine-{request.workspace.slug}-audit.csv"'
        return response
