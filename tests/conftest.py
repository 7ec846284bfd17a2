import shutil
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Role
from tests.factories import MembershipFactory, WorkspaceFactory

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config, items):
    from config.settings import test as test_settings

    ci = test_settings.CI
    if ci and not Path(CHROMIUM).exists():
        raise pytest.UsageError(f"CI=true but {CHROMIUM} is missing (apt-get install chromium)")
    skip_redis = pytest.mark.skip(reason="Redis not reachable: real-worker tests skipped (they run under CI=true)")
    skip_browser = pytest.mark.skip(reason=f"{CHROMIUM} missing: browser tests skipped (they run under CI=true)")
    skip_postgres = pytest.mark.skip(reason="PostgreSQL not reachable: PostgreSQL-only tests skipped")
    for item in items:
        if "integration" in item.keywords and not test_settings.REDIS_AVAILABLE:
            item.add_marker(skip_redis)
        if "browser" in item.keywords and not Path(CHROMIUM).exists():
            item.add_marker(skip_browser)
        if "postgres" in item.keywords and not test_settings.POSTGRES_AVAILABLE:
            item.add_marker(skip_postgres)


@pytest.fixture(autouse=True)
def _media_root_is_fresh():
    """Each test starts with an empty media folder, so 'nothing was stored' is checkable."""
    root = Path(settings.MEDIA_ROOT)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    yield


def stored_files() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def membership(db):
    return MembershipFactory(role=Role.MERCHANT)


@pytest.fixture
def workspace(membership):
    return membership.workspace


@pytest.fixture
def user(membership):
    return membership.user


@pytest.fixture
def other_membership(db):
    return MembershipFactory(workspace=WorkspaceFactory(name="Rival Shop"), role=Role.OWNER)


def _client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    return _client_for(user)


@pytest.fixture
def other_api(other_membership) -> APIClient:
    return _client_for(other_membership.user)
