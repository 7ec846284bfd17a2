"""`manage.py schema_check`: refuse, in one line, a database made by an older checkout.

No version of Vitrine has been released, so its migrations may be regenerated; a `var/` (or
a database) from before that holds migrations the code no longer has, and `migrate` would
fail with a traceback about tables that already exist. `make run` calls this first."""
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader

#: Apps of this project, past and present ("generation" was an app until the engine split).
PROJECT_APPS = {"catalog", "brand", "studio", "generation"}


class Command(BaseCommand):
    help = "Check that the database's applied migrations are ones this checkout has."

    def handle(self, *args, **options):
        loader = MigrationLoader(connections[DEFAULT_DB_ALIAS], ignore_no_migrations=True)
        stale = sorted(key for key in loader.applied_migrations if key[0] in PROJECT_APPS and key not in loader.graph.nodes)
        if stale:
            names = ", ".join(f"{app}.{name}" for app, name in stale[:3]) + (" …" if len(stale) > 3 else "")
            raise CommandError(
                f"The database was made by an older checkout of Vitrine (it has migrations this one does not: {names}). "
                "Reset it with `make clean` (deletes var/: its database, uploads and images) and run `make run` again."
            )
