from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="products", permanent=False)),
    path("login/", auth_views.LoginView.as_view(template_name="studio/login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("products/", views.products, name="products"),
    path("products/photos/", views.photo_grid, name="photo-grid"),
    path("photos/<int:photo_id>/", views.photo_detail, name="photo-detail"),
    path("photos/<int:photo_id>/jobs/", views.photo_jobs, name="photo-jobs"),
    path("photos/<int:photo_id>/cutout/", views.photo_cutout_panel, name="photo-cutout"),
    path("photos/<int:photo_id>/touch-up/", views.photo_touch_up_status, name="photo-touch-up"),
    path("photos/<int:photo_id>/compose/", views.compose, name="compose"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/panel/", views.job_panel, name="job-panel"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("presets/<int:preset_id>/thumbnail/", views.preset_thumbnail, name="preset-thumbnail"),
]
