"""Every operation of /api/v1/ against the app's own OpenAPI schema (issue 14: no 5xx from any
input, every answered status declared).

schemathesis loads the schema from the WSGI app itself (no server) and, per operation, sends
examples generated from it: valid ones (positive) and ones that break it (negative: wrong
types, missing required fields, out-of-range numbers). The caller is the demo workspace's
brand manager, so the write operations of reviews, brand kits and presets are reachable and
not only their 403s. A fixed seed and a small budget per operation keep the module to a few
minutes on CI's two cores; a failure prints the exact request to replay.

Checks: no 5xx; the status is one the operation declares; the content type is the declared
one; the body matches the declared schema (the error format for errors); and a request that
breaks the schema is refused with a 4xx (negative data rejection).
"""
import io
from contextlib import contextmanager

import pytest
from django.core import signals
from django.core.cache import cache
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings

import schemathesis
from catalog import selectors
from catalog.models import User, Workspace
from catalog.services import DEMO_USERS, api_token_create
from config.wsgi import application
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

#: Examples per operation (positive and negative together, Hypothesis' budget). 76
#: operations × 10 took about 4 minutes on a loaded 2-core machine; raise it locally to dig.
EXAMPLES = 10
SEED = 1414

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, negative_data_rejection]


@contextmanager
def _connection_kept():
    """The real WSGI handler closes the database connection around each request; a test's
    transaction lives on that connection, so (as Django's test client does) keep it open."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def wsgi_keeps_connection(db):
    with _connection_kept():
        yield


@pytest.fixture(scope="module")
def demo_workspace(django_db_setup, django_db_blocker):
    """The demo workspace (its three logins, products, default brand kit and presets), seeded
    once for the module and committed, so each operation's test starts from it and rolls back
    to it; removed again at the end so that no other module sees it."""
    # Throttle counters live in the cache: neither earlier modules' nor this one's may leak.
    cache.clear()
    with django_db_blocker.unblock():
        call_command("seed_demo", stdout=io.StringIO())
    yield
    cache.clear()
    with django_db_blocker.unblock():
        Workspace.objects.filter(slug="demo").delete()
        User.objects.filter(email__in=[email for email, _ in DEMO_USERS]).delete()


@pytest.fixture
def brand_manager_headers(demo_workspace, wsgi_keeps_connection):
    membership = selectors.membership_for(user=User.objects.get(email="brand@demo.vitrine"), workspace_slug="demo")
    _, key = api_token_create(membership=membership, name="schemathesis")
    return {"Authorization": f"Token {key}"}


def _load_schema():
    """The schema as the app serves it at /api/schema/, fetched through WSGI at collection
    (serving it reads no rows; the handler's connection bookkeeping is kept off meanwhile)."""
    with _connection_kept():
        loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    loaded.config.seed = SEED
    return loaded


schema = _load_schema()


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_operation(case, brand_manager_headers):
    case.call_and_validate(headers=brand_manager_headers, checks=CHECKS)
