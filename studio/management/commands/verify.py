from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.credentials import read_manifest
from generation.credentials import summary as credentials_summary
from generation.verify import IDENTICAL, RESAMPLED_AS_DECLARED, verify_asset


class Command(BaseCommand):
    help = (
        "Check a delivered asset against the original photo, independently of the compositor: "
        "prints identical, resampled-as-declared or changed, with counts. Exits 1 unless the "
        "product is the original's, as the certificate declares, and (when the asset carries Content "
        "Credentials) its C2PA manifest validates."
    )

    def add_arguments(self, parser):
        parser.add_argument("asset", type=Path, help="the delivered PNG")
        parser.add_argument("original", type=Path, help="the photo as it was uploaded")

    def handle(self, *args, asset: Path, original: Path, **options):
        for path in (asset, original):
            if not path.is_file():
                raise CommandError(f"{path} is not a file")
        data = asset.read_bytes()
        verdict = verify_asset(data, original.read_bytes())
        self.stdout.write(verdict.summary())
        manifest = read_manifest(data)
        self.stdout.write(credentials_summary(manifest))
        if verdict.verdict not in (IDENTICAL, RESAMPLED_AS_DECLARED):
            raise SystemExit(1)
        if manifest["present"] and not manifest["valid"]:
            raise SystemExit(1)  # signed, then changed: the file is not the one that was signed
