"""`manage.py storefront_demo --fakeshop http://127.0.0.1:8765`: connect the demo workspace to
the fake storefront `make run` starts, unless the workspace already has a real shop."""
from urllib.parse import urlsplit

import requests
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Workspace
from storefront import selectors, services
from storefront.models import ConnectionStatus

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Command(BaseCommand):
    help = "Connect the demo workspace to the loopback fake storefront (demo only; a real shop stays as it is)."

    def add_arguments(self, parser):
        parser.add_argument("--fakeshop", required=True, help="the fake storefront's address, e.g. http://127.0.0.1:8765")

    def handle(self, *args, fakeshop: str, **options):
        workspace = Workspace.objects.filter(slug="demo").first()
        if workspace is None:
            raise CommandError("No demo workspace: run `manage.py seed_demo` first.")
        if urlsplit(fakeshop).hostname not in LOOPBACK:
            raise CommandError("The fake storefront runs on this machine: give its http://127.0.0.1:PORT address.")
        real = [c for c in selectors.connection_list(workspace=workspace)
                if c.status == ConnectionStatus.ACTIVE and urlsplit(c.api_base_url).hostname not in LOOPBACK]
        if real:
            self.stdout.write(f"The demo workspace is connected to {real[0].shop_domain}; the fake storefront is left out.")
            return
        try:
            fake = requests.get(f"{fakeshop.rstrip('/')}/_fake/credentials", timeout=5).json()
        except (requests.RequestException, ValueError) as exc:
            raise CommandError(f"The fake storefront at {fakeshop} does not answer ({type(exc).__name__}).") from exc
        try:
            connection = services.connection_create(
                workspace=workspace, shop_domain=fake["shop"], access_token=fake["token"],
                webhook_secret=fake["client_secret"], api_base_url=fake["admin_url"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"Demo workspace connected to the fake storefront {connection.shop_domain} ({fake['url']}/ shows what it holds).")
