from django.urls import path

from . import views

urlpatterns = [
    path("webhooks/storefront/", views.webhook, name="storefront-webhook"),
    # The Storefronts page (storefront/views.py)
    path("storefronts/", views.storefronts, name="storefronts"),
    path("storefronts/connect/", views.connect_token, name="storefront-connect"),
    path("storefronts/oauth/", views.oauth_start, name="storefront-oauth"),
    path("storefronts/oauth/callback/", views.oauth_callback, name="storefront-oauth-callback"),
    path("storefronts/<int:connection_id>/", views.connection_card, name="storefront-card"),
    path("storefronts/<int:connection_id>/sync/", views.sync, name="storefront-sync"),
    path("storefronts/<int:connection_id>/publish/", views.publish, name="storefront-publish"),
    path("storefronts/<int:connection_id>/disconnect/", views.disconnect, name="storefront-disconnect"),
    path("storefronts/exports/<int:export_id>/retry/", views.export_retry, name="storefront-export-retry"),
]
