"""The OpenAPI document's error answers, declared in one place.

A drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]): for every
operation it adds the error statuses the operation can answer, each with the one error format
(catalog.api.errors), from what the view really does: its authenticators (401), its permissions
(403), its path ids (404), its query parameters and body (400), the body cap of
config.middleware (413, and 411 for a chunked body a server cannot hand over), the parsers (415) and its throttles (429). Descriptions an operation
gives itself (a 409 saying which rule, a 429 saying which limit) are kept; an error response
declared without a body gets the error format. It also declares the `X-Vitrine-Workspace`
header every workspace-scoped operation reads.
"""
from drf_spectacular.plumbing import build_mock_request
from rest_framework.permissions import AllowAny

from catalog.api.permissions import IsWorkspaceMember

ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}

#: The component ErrorSerializer stands for, in case no operation named it itself.
ERROR_COMPONENTS = {
    "Error": {
        "type": "object",
        "description": "The one error format of the API.",
        "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
        "required": ["error"],
    },
    "ErrorDetail": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "What went wrong, for programs (e.g. `last_owner`)."},
            "message": {"type": "string", "description": "What went wrong and what to do, for people."},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": "Per-field messages, on 400.",
            },
        },
        "required": ["code", "message"],
    },
}

WORKSPACE_PARAMETER = {
    "in": "header",
    "name": "X-Vitrine-Workspace",
    "required": False,
    "schema": {"type": "string"},
    "description": "The slug of the workspace to act in (default: the session's workspace, else the caller's first). "
    "An API token acts only in the workspace it was made in; naming another answers 403 (code `token_other_workspace`).",
}

BAD_REQUEST = "The request is not valid: a query parameter, a header or a field of the body is missing, of the wrong type or out of range. `fields` names each one with what to send instead."
UNAUTHENTICATED = "No credentials, or the API token is unknown, expired or revoked (codes `not_authenticated`, `invalid_token`, `token_expired`, `token_revoked`)."
FORBIDDEN = "The caller does not belong to the workspace the request acts in (or to the one `X-Vitrine-Workspace` names), or the caller's role may not do this; the message says which."
NOT_FOUND = "No row with that id in the caller's workspace (another workspace's rows answer the same), whether the id is in the path or the body, or a page past the last."
TOO_LARGE = "The body is larger than the server accepts for this route (uploads: `VITRINE_UPLOAD_MAX_BYTES`; LoRA adapters: 1 GiB; other requests: `VITRINE_REQUEST_MAX_BYTES`); nothing of it was kept (code `request_too_large`)."
LENGTH_REQUIRED = "The body was sent chunked (no `Content-Length`) to a server that cannot hand such a body over whole; send it with a `Content-Length` header (code `length_required`)."
UNSUPPORTED = "The body's Content-Type is not one this operation reads (see the request body's content types)."
THROTTLED = "Too many requests from this address or account; the message says when to try again."


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


def _view_for(generator, callback, method: str, path: str, request):
    view = generator.create_view(callback, method, request)
    view.request = build_mock_request(method, path, view, request)
    return view


def _error_statuses(view, operation: dict) -> dict[int, str]:
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    statuses = {}
    if has_body or any(p.get("in") == "query" for p in parameters):
        statuses[400] = BAD_REQUEST
    if view.get_authenticators():
        statuses[401] = UNAUTHENTICATED
    permissions = view.get_permissions()
    if any(not isinstance(p, AllowAny) for p in permissions):
        statuses[403] = FORBIDDEN
    workspace_scoped = any(isinstance(p, IsWorkspaceMember) for p in permissions)
    paged = any(p.get("name") == "page" for p in parameters)
    # A body names rows too (`{"photo": 7}`); one not in the workspace is a 404, as in a path.
    if any(p.get("in") == "path" for p in parameters) or paged or (has_body and workspace_scoped):
        statuses[404] = NOT_FOUND
    if has_body:
        statuses[411] = LENGTH_REQUIRED
        statuses[413] = TOO_LARGE
        statuses[415] = UNSUPPORTED
    if view.get_throttles():
        statuses[429] = THROTTLED
    return statuses


def declare_error_responses(result, generator, request, public):
    """Postprocessing hook: the error answers of every operation (see the module docstring)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in ERROR_COMPONENTS.items():
        components.setdefault(name, schema)
    for path, _regex, method, callback in generator.endpoints:
        view = _view_for(generator, callback, method, path, request)
        # The endpoints name path ids as routed (`{pk}`); the document as coerced (`{id}`).
        operation = result.get("paths", {}).get(generator.coerce_path(path, method, view), {}).get(method.lower())
        if operation is None:
            continue
        if any(isinstance(p, IsWorkspaceMember) for p in view.get_permissions()):
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("in") == "header" and p.get("name") == WORKSPACE_PARAMETER["name"] for p in parameters):
                parameters.append(dict(WORKSPACE_PARAMETER))
        responses = operation.setdefault("responses", {})
        for status, description in _error_statuses(view, operation).items():
            responses.setdefault(str(status), _error(description))
        for status, response in responses.items():
            if status.startswith("4") and "content" not in response:
                response["content"] = {"application/json": {"schema": ERROR_SCHEMA}}
    return result
