from django.urls import path

from . import views

urlpatterns = [
    path("webhooks/storefront/", views.webhook, name="storefront-webhook"),
]
