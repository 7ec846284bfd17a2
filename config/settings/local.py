"""`make run`: embedded defaults (SQLite, local media, filesystem broker) unless the
environment names real services."""
import os

os.environ.setdefault("DJANGO_SECRET_KEY", "vitrine-local-development-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("VITRINE_DEMO", "true")

from .base import *  # noqa: E402,F403
from .base import VAR_DIR  # noqa: E402

VAR_DIR.mkdir(parents=True, exist_ok=True)
