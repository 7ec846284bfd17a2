from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI that runs under the Content-Security-Policy: its start-up script is served
    from this same URL (`?script`), its one <style> carries the request's nonce."""

    template_name = "api_docs.html"


handler400 = "config.error_pages.bad_request"
handler403 = "config.error_pages.permission_denied"
handler404 = "config.error_pages.page_not_found"
handler500 = "config.error_pages.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("config.api", "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("", include("storefront.urls")),
    path("", include("studio.urls")),
]
