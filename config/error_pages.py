"""What production answers when a request fails outside a view's own error handling (DEBUG
off): the API's one error format under /api/, a plain page in Vitrine's look elsewhere.
Neither ever carries a traceback, a path or an exception's text: those go to the log."""
from django.http import JsonResponse
from django.views import defaults

API_PREFIX = "/api/"

_MESSAGES = {
    400: ("bad_request", "The request could not be understood. Check its headers and body and send it again."),
    403: ("permission_denied", "You do not have permission to do this."),
    404: ("not_found", "There is nothing at this address. Check the path against the API docs at /api/docs/."),
    500: ("server_error", "Something went wrong on our side; it has been logged. Try again in a minute, and if it keeps happening, contact the people who run this Vitrine."),
}


def _api_error(status: int) -> JsonResponse:
    code, message = _MESSAGES[status]
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception):
    return _api_error(400) if _is_api(request) else defaults.bad_request(request, exception)


def permission_denied(request, exception):
    return _api_error(403) if _is_api(request) else defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    return _api_error(404) if _is_api(request) else defaults.page_not_found(request, exception)


def server_error(request):
    return _api_error(500) if _is_api(request) else defaults.server_error(request)
