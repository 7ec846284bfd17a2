"""The test suite. PostgreSQL and Redis are used when they answer; under CI=true their
absence is an error, not a skip (see tests/conftest.py for what is skipped locally)."""
import os
import socket
import sys
import tempfile
from urllib.parse import urlparse

os.environ.setdefault("DJANGO_SECRET_KEY", "vitrine-test-key")
os.environ.setdefault("VITRINE_DEMO", "true")

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_POSTGRES_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vitrine")
_REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


POSTGRES_AVAILABLE = _POSTGRES_URL.startswith("postgres") and _answers(_POSTGRES_URL, 5432)
REDIS_AVAILABLE = _answers(_REDIS_URL, 6379)
if CI and not POSTGRES_AVAILABLE:
    raise RuntimeError(f"CI=true but PostgreSQL does not answer at {_POSTGRES_URL}")
if CI and not REDIS_AVAILABLE:
    raise RuntimeError(f"CI=true but Redis does not answer at {_REDIS_URL}")

_tmp = tempfile.mkdtemp(prefix="vitrine-test-")
os.environ["VITRINE_VAR_DIR"] = _tmp
os.environ["DATABASE_URL"] = _POSTGRES_URL if POSTGRES_AVAILABLE else f"sqlite:///{_tmp}/test.sqlite3"
if REDIS_AVAILABLE:
    os.environ["REDIS_URL"] = _REDIS_URL
else:
    os.environ.pop("REDIS_URL", None)
if not POSTGRES_AVAILABLE:
    print("vitrine tests: PostgreSQL not reachable, using SQLite", file=sys.stderr)

from .base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Mail stays in django.core.mail.outbox (also for the live server, which runs in this process).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The in-process worker: tasks run on commit, in the test's own process. The integration
# marker switches this off and runs a real worker over Redis.
CELERY_TASK_ALWAYS_EAGER = True
STATIC_ROOT = f"{_tmp}/static"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
