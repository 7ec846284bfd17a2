"""With DEBUG off (as under config.settings.production) a failure answers the API's one error
format under /api/ and a plain page in Vitrine's look elsewhere, never a traceback, a server
path or the exception's own words."""
import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import include, path
from rest_framework.views import APIView

import config.urls
from config.urls import handler400, handler403, handler404, handler500  # noqa: F401  (this module is the root URLconf)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

SECRET = "boom at /work/main/var/media/photos/secret.png"


def page_boom(request):
    raise RuntimeError(SECRET)


def page_forbidden(request):
    raise PermissionDenied(SECRET)


def page_suspicious(request):
    raise SuspiciousOperation(SECRET)


def page_fine(request):
    return HttpResponse("fine")


class ApiBoom(APIView):
    """A DRF view whose bug DRF's exception handler does not know (it answers None)."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise ZeroDivisionError(SECRET)


urlpatterns = [
    path("boom/", page_boom),
    path("forbidden/", page_forbidden),
    path("suspicious/", page_suspicious),
    path("fine/", page_fine),
    path("api/v1/boom/", ApiBoom.as_view()),
    path("api/v1/plain-boom/", page_boom),
    path("api/v1/plain-forbidden/", page_forbidden),
    path("api/v1/plain-suspicious/", page_suspicious),
    path("", include(config.urls.urlpatterns)),
]

SERVER_ERROR = {
    "error": {
        "code": "server_error",
        "message": "Something went wrong on our side; it has been logged. Try again in a minute, and if it keeps happening, "
        "contact the people who run this Vitrine.",
    }
}


@pytest.fixture
def client():
    with override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        yield Client(raise_request_exception=False)


def assert_no_details(response):
    body = response.content.decode()
    for leak in ("Traceback", "/work/", "secret.png", "RuntimeError", "ZeroDivisionError", "boom at"):
        assert leak not in body, leak


def test_the_root_urlconf_names_the_error_views():
    assert (config.urls.handler400, config.urls.handler403, config.urls.handler404, config.urls.handler500) == (
        "config.error_pages.bad_request",
        "config.error_pages.permission_denied",
        "config.error_pages.page_not_found",
        "config.error_pages.server_error",
    )


@pytest.mark.parametrize("url", ["/api/v1/boom/", "/api/v1/plain-boom/"])
def test_an_unhandled_api_error_answers_500_in_the_error_format(client, url):
    response = client.get(url)

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == SERVER_ERROR
    assert_no_details(response)


def test_an_unhandled_page_error_answers_the_plain_500_page(client):
    response = client.get("/boom/")

    assert response.status_code == 500
    assert response["Content-Type"] == "text/html; charset=utf-8"
    body = response.content.decode()
    assert "<h1>Something went wrong on our side</h1>" in body
    assert 'href="/static/css/vitrine.css"' in body
    assert_no_details(response)


def test_an_unknown_page_answers_the_plain_404_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "<h1>This page does not exist</h1>" in response.content.decode()
    assert "no-such-page" not in response.content.decode()


def test_an_unknown_api_path_answers_404_in_the_error_format(client):
    # Outside /api/v1/ (whose own catch-all answers there, config/api.py): the 404 handler.
    response = client.get("/api/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "There is nothing at this address. Check the path against the API docs at /api/docs/."}
    }


def test_a_refusal_outside_the_api_answers_the_plain_403_page(client):
    response = client.get("/forbidden/")

    assert response.status_code == 403
    assert "<h1>You cannot open this page</h1>" in response.content.decode()
    assert_no_details(response)


def test_a_refusal_in_the_api_outside_drf_answers_403_in_the_error_format(client):
    response = client.get("/api/v1/plain-forbidden/")

    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    assert_no_details(response)


def test_a_suspicious_request_answers_the_plain_400_page(client):
    response = client.get("/suspicious/")

    assert response.status_code == 400
    assert "<h1>This request could not be understood</h1>" in response.content.decode()
    assert_no_details(response)


def test_a_suspicious_api_request_answers_400_in_the_error_format(client):
    response = client.get("/api/v1/plain-suspicious/")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_request")
    assert_no_details(response)


def test_a_disallowed_host_gets_the_plain_400_page(client):
    response = client.get("/fine/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert "<h1>This request could not be understood</h1>" in response.content.decode()


def test_the_error_pages_render_without_a_database_or_session():
    """500 must render when what failed was the database: no context processors run."""
    from django.template.loader import get_template

    for name in ("400.html", "403.html", "404.html", "500.html"):
        html = get_template(name).render()  # no request, so no context processors, no queries
        assert "Vitrine · error " + name[:3] in html
        assert 'href="/"' in html
