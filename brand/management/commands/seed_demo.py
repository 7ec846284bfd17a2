from django.core.management.base import BaseCommand, CommandError

from brand.services import workspace_defaults_ensure
from catalog.services import DEMO_PASSWORD, DEMO_USERS, demo_workspace_seed


class Command(BaseCommand):
    help = "Create (or refresh) the demo workspace and its logins. Demo mode only."

    def handle(self, *args, **options):
        try:
            workspace = demo_workspace_seed()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        workspace_defaults_ensure(workspace=workspace)
        self.stdout.write(f"Demo workspace '{workspace.name}' ready.")
        for email, role in DEMO_USERS:
            self.stdout.write(f"  {email} / {DEMO_PASSWORD} ({role.label})")
