from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import AuthTokenView, JobViewSet, PhotoViewSet, ProductViewSet

router = DefaultRouter()
router.register("products", ProductViewSet, basename="product")
router.register("photos", PhotoViewSet, basename="photo")
router.register("jobs", JobViewSet, basename="job")

urlpatterns = [path("auth/token/", AuthTokenView.as_view(), name="auth-token"), *router.urls]
