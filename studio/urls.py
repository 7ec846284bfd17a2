from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from .views import catalog, gallery, photos, review, team
from .views import brand

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="products", permanent=False)),
    path("login/", auth_views.LoginView.as_view(template_name="studio/login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Products and photo grid (studio/views/catalog.py)
    path("products/", catalog.products, name="products"),
    path("products/photos/", catalog.photo_grid, name="photo-grid"),
    path("products/new/", catalog.product_new, name="product-new"),
    path("products/<int:product_id>/", catalog.product_detail, name="product-detail"),
    path("products/<int:product_id>/delete/", catalog.product_delete, name="product-delete"),
    path("products/photos/move/", catalog.photos_move, name="photos-move"),
    path("photos/<int:photo_id>/product/", catalog.photo_move, name="photo-move"),
    path("photos/<int:photo_id>/delete/", catalog.photo_delete, name="photo-delete"),
    # One photo, its cutout, compose and jobs (studio/views/photos.py)
    path("photos/<int:photo_id>/", photos.photo_detail, name="photo-detail"),
    path("photos/<int:photo_id>/jobs/", photos.photo_jobs, name="photo-jobs"),
    path("photos/<int:photo_id>/cutout/", photos.photo_cutout_panel, name="photo-cutout"),
    path("photos/<int:photo_id>/touch-up/", photos.photo_touch_up_status, name="photo-touch-up"),
    path("photos/<int:photo_id>/compose/", photos.compose, name="compose"),
    path("jobs/<int:job_id>/", photos.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/panel/", photos.job_panel, name="job-panel"),
    path("jobs/<int:job_id>/cancel/", photos.job_cancel, name="job-cancel"),
    path("presets/<int:preset_id>/thumbnail/", photos.preset_thumbnail, name="preset-thumbnail"),
    # Review queue, submitting, notifications (studio/views/review.py)
    path("review/", review.review_queue, name="review-queue"),
    path("review/bulk/", review.review_bulk, name="review-bulk"),
    path("review/<int:asset_id>/", review.review_panel, name="review-panel"),
    path("review/<int:asset_id>/decide/", review.review_decide, name="review-decide"),
    path("jobs/<int:job_id>/submit/", review.job_submit, name="job-submit"),
    path("notifications/", review.notifications, name="notifications"),
    path("notifications/read/", review.notifications_read, name="notifications-read"),
    # Gallery, asset page and history, ZIP and audit downloads (studio/views/gallery.py)
    path("gallery/", gallery.gallery, name="gallery"),
    path("gallery/download/", gallery.gallery_download, name="gallery-download"),
    path("gallery/submit/", gallery.gallery_submit, name="gallery-submit"),
    path("assets/<int:asset_id>/", gallery.asset_detail, name="asset-detail"),
    path("assets/<int:asset_id>/comments/", gallery.asset_comment, name="asset-comment"),
    path("assets/<int:asset_id>/submit/", gallery.asset_submit, name="asset-submit"),
    path("assets/<int:asset_id>/regenerate/", gallery.asset_regenerate, name="asset-regenerate"),
    path("audit.csv", gallery.audit_csv, name="audit-csv"),
    # Brand kits and presets (studio/views/brand.py)
    path("brand-kits/", brand.brand_kits, name="brand-kits"),
    path("brand-kits/new/", brand.brand_kit_new, name="brand-kit-new"),
    path("brand-kits/<int:kit_id>/", brand.brand_kit_detail, name="brand-kit-detail"),
    path("brand-kits/<int:kit_id>/logo/", brand.brand_kit_logo, name="brand-kit-logo"),
    path("brand-kits/<int:kit_id>/loras/", brand.brand_kit_lora, name="brand-kit-lora"),
    path("presets/new/", brand.preset_new, name="preset-new"),
    path("presets/<int:preset_id>/", brand.preset_detail, name="preset-detail"),
    # Settings: members, invitations, API tokens, approval rule (studio/views/team.py)
    path("settings/", team.settings_page, name="settings"),
    path("settings/tokens/", team.token_create, name="settings-token-create"),
    path("settings/tokens/<int:token_id>/revoke/", team.token_revoke, name="settings-token-revoke"),
    path("settings/members/<int:membership_id>/role/", team.member_role, name="settings-member-role"),
    path("settings/members/<int:membership_id>/remove/", team.member_remove, name="settings-member-remove"),
    path("settings/invitations/", team.invitation_create, name="settings-invitation-create"),
    path("settings/invitations/<int:invitation_id>/revoke/", team.invitation_revoke, name="settings-invitation-revoke"),
    path("settings/approval/", team.approval_rule, name="settings-approval"),
    path("invite/<str:token>/", team.invite, name="invite"),
]
