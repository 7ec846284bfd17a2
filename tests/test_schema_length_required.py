"""The API schema declares 411 wherever config.middleware can answer it: an operation that
takes a body, sent chunked to a server that cannot hand the body over (tests/test_body_caps.py
checks the answer itself)."""
import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_every_operation_with_a_body_declares_411_in_the_error_format(user):
    client = APIClient()
    client.force_authenticate(user)
    schema = client.get("/api/schema/?format=json").json()

    with_body = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items() if "requestBody" in op]

    assert ("/api/v1/auth/token/", "post") in {(path, method) for path, method, _ in with_body}
    for path, method, operation in with_body:
        declared = operation["responses"].get("411")
        assert declared, f"{method.upper()} {path} does not declare 411"
        assert declared["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        assert "Content-Length" in declared["description"]
    without_body = [op for item in schema["paths"].values() for method, op in item.items() if method == "get"]
    assert without_body and all("411" not in op["responses"] for op in without_body)
