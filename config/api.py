"""/api/v1/: every app's endpoints on one router."""
from django.urls import path
from rest_framework.routers import DefaultRouter

from brand.api.views import BrandKitViewSet, ScenePresetViewSet
from catalog.api.views import AuthTokenView, JobViewSet, ProductViewSet
from studio.api.views import AssetViewSet, CutoutViewSet, GenerationJobViewSet, PhotoSegmentView, PhotoViewSet

router = DefaultRouter()
router.register("products", ProductViewSet, basename="product")
router.register("photos", PhotoViewSet, basename="photo")
router.register("photo-jobs", JobViewSet, basename="photo-job")
router.register("cutouts", CutoutViewSet, basename="cutout")
router.register("jobs", GenerationJobViewSet, basename="job")
router.register("assets", AssetViewSet, basename="asset")
router.register("brand-kits", BrandKitViewSet, basename="brand-kit")
router.register("presets", ScenePresetViewSet, basename="preset")

urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="auth-token"),
    path("photos/<int:pk>/segment/", PhotoSegmentView.as_view({"post": "create"}), name="photo-segment"),
    *router.urls,
]
