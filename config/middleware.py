"""Request bodies are capped before anything reads them.

Django reads a body only when a view, a form or a parser asks for it, and by then the whole
upload has been received and spooled to a temporary file (and a form login page spools what
any anonymous client sends). This middleware sits first in MIDDLEWARE and answers 413 from
the declared Content-Length, before sessions, authentication, CSRF, parsers or views run. A
chunked body (no Content-Length) is read here, counted as it arrives and refused as soon as
it passes the cap; below the cap it is handed on as if it had been sent with a length.

Caps per route, from settings: the upload routes may carry one upload plus its multipart
envelope; everything else (the login form and the token endpoint included) a small body.
The same numbers are in docker/gunicorn.conf.py and docker/nginx.conf."""
from __future__ import annotations

import re
import tempfile
from html import escape

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpResponse, JsonResponse

#: (method, path pattern, kind): the routes that take an upload. "upload" is a photo, a logo or
#: a touch-up mask (each refused by its own, smaller, rule past the cap); "lora" is an adapter.
UPLOAD_ROUTES = (
    ("POST", re.compile(r"^/api/v1/photos/$"), "upload"),
    ("POST", re.compile(r"^/api/v1/cutouts/$"), "upload"),
    ("POST", re.compile(r"^/api/v1/brand-kits/\d+/logo/$"), "upload"),
    ("POST", re.compile(r"^/api/v1/brand-kits/\d+/loras/$"), "lora"),
    ("POST", re.compile(r"^/brand-kits/\d+/logo/$"), "upload"),
    ("POST", re.compile(r"^/brand-kits/\d+/loras/$"), "lora"),
)
_READ = 64 * 1024


class RequestTooLarge(Exception):
    pass


def body_cap(method: str, path: str) -> tuple[int, str]:
    """The most bytes a request body to `path` may have, and what kind of route it is
    ("upload", "lora" or "request")."""
    for route_method, pattern, kind in UPLOAD_ROUTES:
        if method == route_method and pattern.match(path):
            if kind == "lora":
                from brand.services import LORA_MAX_BYTES  # imported late: the apps load after settings

                return LORA_MAX_BYTES + settings.VITRINE_UPLOAD_OVERHEAD_BYTES, kind
            return settings.VITRINE_UPLOAD_MAX_BYTES + settings.VITRINE_UPLOAD_OVERHEAD_BYTES, kind
    return settings.VITRINE_REQUEST_MAX_BYTES, "request"


class RequestBodyCapMiddleware:
    """Answer 413 for a body over its route's cap (body_cap) before it is read; 411 for a
    chunked body the server cannot hand over whole."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        cap, kind = body_cap(request.method, request.path_info)
        declared = request.META.get("CONTENT_LENGTH") or ""
        try:
            length = int(declared) if declared else None
        except ValueError:
            length = None  # Django reads such a body as empty; nothing to cap
        if length is not None and length > cap:
            return too_large(request, cap=cap, kind=kind, length=length)
        if length is None and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            response = self._take_chunked(request, cap, kind)
            if response is not None:
                return response
        return self.get_response(request)

    def _take_chunked(self, request, cap: int, kind: str):
        environ = getattr(request, "environ", None)
        if environ is None or not environ.get("wsgi.input_terminated"):
            # Django's development server (and ASGI) hand a body without Content-Length over as
            # empty: the upload would vanish silently. Say so instead.
            return _error(
                request, status=411, code="length_required",
                message="Send the request body with a Content-Length header; this server does not accept chunked bodies.",
            )
        # gunicorn de-chunks the body and marks its end (wsgi.input_terminated): read it here,
        # counting, and keep it in memory up to the size Django itself keeps in memory.
        spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)
        received = 0
        source = environ["wsgi.input"]
        while True:
            piece = source.read(min(_READ, cap + 1 - received))
            if not piece:
                break
            received += len(piece)
            if received > cap:
                spool.close()
                return too_large(request, cap=cap, kind=kind, length=None)
            spool.write(piece)
        spool.seek(0)
        request.META["CONTENT_LENGTH"] = str(received)
        request._stream = LimitedStream(spool, received)
        request._body_spool = spool  # open while the request reads it, freed with it
        return None


_WHAT = {"upload": "an upload", "lora": "a LoRA upload", "request": "a request that is not an upload"}


def too_large(request, *, cap: int, kind: str, length: int | None) -> HttpResponse:
    sent = f"This request's body is {length:,} bytes" if length is not None else "This request's body is larger than the limit"
    return _error(
        request, status=413, code="request_too_large",
        message=f"{sent}; the limit for {_WHAT[kind]} here is {cap:,} bytes. Nothing was stored.",
    )


def _error(request, *, status: int, code: str, message: str) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        # The API's one error format (catalog/api/errors.py), without DRF: nothing below runs.
        return JsonResponse({"error": {"code": code, "message": message}}, status=status)
    title = "Too large" if status == 413 else "Length required"
    page = (
        f"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{title} · Vitrine</title>"
        f"<h1>{title}</h1><p>{escape(message)}</p><p><a href=\"/\">Back to Vitrine</a></p></html>"
    )
    return HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
