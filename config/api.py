"""/api/v1/: every app's endpoints on one router."""
from django.urls import path
from rest_framework.routers import DefaultRouter

from catalog.api.views import AuthTokenView, JobViewSet, PhotoViewSet, ProductViewSet
from generation.api.views import CutoutViewSet, PhotoSegmentView

router = DefaultRouter()
router.register("products", ProductViewSet, basename="product")
router.register("photos", PhotoViewSet, basename="photo")
router.register("jobs", JobViewSet, basename="job")
router.register("cutouts", CutoutViewSet, basename="cutout")

urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="auth-token"),
    path("photos/<int:pk>/segment/", PhotoSegmentView.as_view({"post": "create"}), name="photo-segment"),
    *router.urls,
]
