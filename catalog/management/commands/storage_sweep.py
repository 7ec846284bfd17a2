"""`manage.py storage_sweep [--delete]`: files in storage that no row points to.

Every store writes its files before the row commits and removes them if the row does not;
a worker killed between the two (or a bug) can still leave one behind. This lists them, and
with --delete removes them. Files younger than --min-age are left alone: they may belong to
a row that is being committed right now."""
from __future__ import annotations

import datetime

from django.apps import apps
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand
from django.db import models
from django.utils import timezone

from catalog.jobs import ACTIVE
from catalog.models import JobKind, PhotoJob


def referenced_names() -> set[str]:
    """Every file name any FileField of any table points to."""
    names: set[str] = set()
    for model in apps.get_models():
        fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        for field in fields:
            names.update(n for n in model._default_manager.exclude(**{field: ""}).values_list(field, flat=True) if n)
    # A touch-up's uploaded mask is named in its job's params until the job is over.
    for params in PhotoJob.objects.filter(ACTIVE, kind=JobKind.TOUCH_UP).values_list("params", flat=True):
        if params.get("mask"):
            names.add(params["mask"])
    return names


def stored_names(folder: str = "") -> list[str]:
    directories, files = default_storage.listdir(folder)
    found = [f"{folder}/{name}" if folder else name for name in files]
    for directory in directories:
        found.extend(stored_names(f"{folder}/{directory}" if folder else directory))
    return found


class Command(BaseCommand):
    help = "List (and with --delete remove) stored files that no row points to."

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="remove them (default: only list)")
        parser.add_argument("--min-age", type=int, default=3600, metavar="SECONDS", help="leave younger files alone (default 3600)")

    def handle(self, *args, delete: bool, min_age: int, **options):
        referenced = referenced_names()
        cutoff = timezone.now() - datetime.timedelta(seconds=min_age)
        orphans = []
        for name in sorted(stored_names()):
            if name in referenced:
                continue
            if default_storage.get_modified_time(name) > cutoff:
                continue
            orphans.append(name)
        for name in orphans:
            self.stdout.write(name)
            if delete:
                default_storage.delete(name)
        verb = "removed" if delete else "found (run with --delete to remove them)"
        self.stderr.write(f"{len(orphans)} orphan file(s) {verb}; {len(referenced)} file(s) in use")
