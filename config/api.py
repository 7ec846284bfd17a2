"""/api/v1/: every app's endpoints on one router."""
from django.http import JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.routers import DefaultRouter

from brand.api.views import BrandKitViewSet, ScenePresetViewSet
from catalog.api.team import ApiTokenViewSet, InvitationAcceptView, InvitationViewSet, MemberViewSet, WorkspaceView
from catalog.api.views import AuthTokenView, JobViewSet, ProductViewSet
from storefront.api.exports import AssetPublishView, AssetsPublishView, ExportViewSet
from storefront.api.views import StorefrontConnectionViewSet
from studio.api.views import (
    AssetViewSet, AuditTrailView, CutoutViewSet, GenerationJobViewSet, JobSubmitView, NotificationViewSet, PhotoSegmentView, PhotoViewSet,
)

router = DefaultRouter()
router.register("products", ProductViewSet, basename="product")
router.register("photos", PhotoViewSet, basename="photo")
router.register("photo-jobs", JobViewSet, basename="photo-job")
router.register("cutouts", CutoutViewSet, basename="cutout")
router.register("jobs", GenerationJobViewSet, basename="job")
router.register("assets", AssetViewSet, basename="asset")
router.register("brand-kits", BrandKitViewSet, basename="brand-kit")
router.register("presets", ScenePresetViewSet, basename="preset")
router.register("members", MemberViewSet, basename="member")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("audit", AuditTrailView, basename="audit")
router.register("storefronts", StorefrontConnectionViewSet, basename="storefront")
router.register("exports", ExportViewSet, basename="export")

@csrf_exempt  # it changes nothing, whatever the method; the API's own views are exempt too
def no_such_endpoint(request, rest=""):
    """Anything under /api/v1/ that no route takes (e.g. `/api/v1/photos/abc/`: ids are whole
    numbers) answers 404 in the API's error format, not the site's HTML page."""
    return JsonResponse(
        {"error": {"code": "not_found", "message": f"No API endpoint at {request.path}. The endpoints are listed at /api/docs/; ids in paths are whole numbers."}},
        status=404,
    )


urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="auth-token"),
    path("invitations/accept/", InvitationAcceptView.as_view(), name="invitation-accept"),
    path("workspace/", WorkspaceView.as_view(), name="workspace"),
    path("photos/<int:pk>/segment/", PhotoSegmentView.as_view({"post": "create"}), name="photo-segment"),
    path("jobs/<int:pk>/submit/", JobSubmitView.as_view({"post": "create"}), name="job-submit"),
    # Before the router: its asset detail route would take "assets/publish/" for an id.
    path("assets/<int:pk>/publish/", AssetPublishView.as_view({"post": "create"}), name="asset-publish"),
    path("assets/publish/", AssetsPublishView.as_view({"post": "create"}), name="assets-publish"),
    *router.urls,
    # Last: whatever the routes above did not take (paths without the slash are still
    # redirected to it first by APPEND_SLASH, as before).
    re_path(r"^(?P<rest>.*/)$", no_such_endpoint, name="no-such-endpoint"),
]
