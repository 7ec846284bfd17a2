"""One error format for the whole API:

    {"error": {"code": "file_too_large", "message": "…", "fields": {"file": ["…"]}}}
"""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from generation.decoding import UploadRejected


class Conflict(exceptions.APIException):
    """409: the request clashes with the state of things (work under way, a rule of the team,
    a review already decided); the message says what to do instead."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def flat_fields(detail: dict) -> dict[str, list[str]]:
    """Field errors as the format promises, `{"field": ["message", ...]}`: an item of a list
    (DRF: `{"ids": {"3": [...]}}`) keeps its field and says which item; a nested field is
    `parent.child`."""
    fields: dict[str, list[str]] = {}

    def walk(value, key: str, item: str = "") -> None:
        if isinstance(value, dict):
            for name, inner in value.items():
                if isinstance(name, int) or str(name).isdigit():
                    walk(inner, key, f"Item {int(name) + 1}: ")
                else:
                    walk(inner, f"{key}.{name}" if key else str(name), item)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, key, item)
        else:
            fields.setdefault(key or "non_field_errors", []).append(f"{item}{value}")

    walk(detail, "")
    return fields


def error_response(*, code: str, message: str, http_status: int, fields: dict | None = None) -> Response:
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return Response(body, status=http_status)


def exception_handler(exc, context):
    if isinstance(exc, UploadRejected):
        return error_response(code=exc.code, message=exc.message, http_status=status.HTTP_400_BAD_REQUEST, fields={"file": [exc.message]})
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, DjangoPermissionDenied):
        # A service's refusal (e.g. "Only an owner … can invite people.") keeps its words.
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        return error_response(code="not_found", message=str(exc) or "Not found.", http_status=status.HTTP_404_NOT_FOUND)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = flat_fields(exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail})
        response.data = {"error": {"code": "invalid", "message": _first_message(exc.detail), "fields": fields}}
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = {"error": {"code": codes if isinstance(codes, str) else "error", "message": _first_message(response.data)}}
    return response


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="What went wrong, for programs (e.g. `last_owner`).")
    message = serializers.CharField(help_text="What went wrong and what to do, for people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False, help_text="Per-field messages, on 400."
    )


class ErrorSerializer(serializers.Serializer):
    """The one error format above, for the OpenAPI schema."""

    error = ErrorDetailSerializer()
