from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from generation.credentials import dev_root_path, write_dev_chain


class Command(BaseCommand):
    help = (
        "Create a local development certificate chain for Content Credentials (C2PA) at "
        "VITRINE_C2PA_KEY / VITRINE_C2PA_CERT: a development root CA and an ES256 end-entity signing "
        "certificate it issued. Does nothing when both files exist (--force replaces them). Readers "
        "report assets signed with it as valid but untrusted; use a certificate from a CA for production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="replace an existing key and certificate")

    def handle(self, *args, force: bool, **options):
        key, cert = Path(settings.VITRINE_C2PA_KEY), Path(settings.VITRINE_C2PA_CERT)
        if write_dev_chain(key, cert, force=force):
            self.stdout.write(
                f"Content Credentials: development signing key {key}, certificate {cert} "
                f"(root CA {dev_root_path(cert)}; untrusted outside this machine)"
            )
        elif options["verbosity"] > 1:
            self.stdout.write(f"Content Credentials: {key} and {cert} exist; nothing to do")
