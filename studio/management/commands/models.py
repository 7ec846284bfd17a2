"""`manage.py models list|pull|verify`: what model weights are installed, and fetching them
where the machine is online. Vitrine never downloads at run time."""
import urllib.error
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation import models_store, registry
from generation.segmentation import resolve_auto


class Command(BaseCommand):
    help = "List, download (where online) and verify model weights in local folders."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="every known model and whether it is installed")
        pull = sub.add_parser("pull", help="download a model into its local folder")
        pull.add_argument("name")
        pull.add_argument("--timeout", type=float, default=60.0, help="seconds to wait on the network per read")
        verify = sub.add_parser("verify", help="check installed weights against their published checksums")
        verify.add_argument("names", nargs="*")

    def handle(self, *args, action, **opts):
        home = settings.VITRINE_REMBG_HOME
        getattr(self, f"_{action}")(home, **opts)

    def _list(self, home, **opts):
        installed = models_store.installed_models(home)
        self.stdout.write(f"Segmentation models (rembg) in {home}:")
        for name, model in models_store.REMBG_MODELS.items():
            state = f"installed  {installed[name]}" if name in installed else f"missing    → {model.pull_command}"
            self.stdout.write(f"  rembg:{name:<24} {state}")
        choice = resolve_auto(home)
        configured = settings.VITRINE_SEGMENTER
        self.stdout.write(f"Segmenter `auto` resolves to {choice.name}: {choice.reason}.")
        in_use = choice.name if configured == "auto" else configured
        self.stdout.write(f"Segmenter in use (VITRINE_SEGMENTER={configured}): {in_use}")
        self.stdout.write(f"Scene models in {registry.models_dir()}:")
        for name, spec in registry.MODELS.items():
            state = "installed" if spec.path.is_dir() else f"missing    → python manage.py models pull {name}"
            self.stdout.write(f"  {name:<30} {state:<10} {spec.path}  ({spec.description})")

    def _pull(self, home, name, timeout, **opts):
        if name in registry.MODELS:
            return self._pull_scene_model(registry.MODELS[name], timeout)
        name = name.removeprefix("rembg:")
        if name not in models_store.REMBG_MODELS:
            raise CommandError(f"unknown model {name!r}; `python manage.py models list` shows the known ones")
        if models_store.verify_model(name, home):
            self.stdout.write(f"{name} is already installed and verified.")
            return
        self.stdout.write(f"Downloading {name} into {home} …")
        try:
            path = models_store.download_model(name, home, timeout=timeout)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise CommandError(f"could not download {name}: {exc}. Is this machine online? Try again later.") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{name} installed at {path} (checksum verified)"))

    def _pull_scene_model(self, spec, timeout):
        if not spec.source:
            raise CommandError(f"{spec.name} ships with Vitrine in {spec.path}; there is nothing to download")
        import json
        import os

        from huggingface_hub import hf_hub_download, list_repo_files, snapshot_download

        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))
        self.stdout.write(f"Downloading {spec.source} into {spec.path} … (several GB)")
        # Into a side folder first: a half-finished download must never look installed.
        partial = spec.path.with_name(spec.path.name + ".partial")
        try:
            # Exactly the folders the pipeline loads: a pattern such as "*.safetensors" would
            # also fetch the root single-file checkpoint and the fp16 duplicates.
            index = json.loads(Path(hf_hub_download(spec.source, "model_index.json", local_dir=partial)).read_text())
            files = models_store.pipeline_files_to_fetch(list_repo_files(spec.source), index)
            snapshot_download(repo_id=spec.source, local_dir=partial, allow_patterns=files)
        except Exception as exc:  # hub, network and permission errors alike: say what and how
            raise CommandError(
                f"could not download {spec.name} from {spec.source}: {exc}. Is this machine online, and for gated "
                "models, is HF_TOKEN set after accepting the licence?"
            ) from exc
        os.replace(partial, spec.path)
        self.stdout.write(self.style.SUCCESS(f"{spec.name} installed at {spec.path}"))

    def _verify(self, home, names, **opts):
        names = [n.removeprefix("rembg:") for n in names] or list(models_store.installed_models(home))
        if not names:
            self.stdout.write(f"No segmentation model is installed in {home}.")
            return
        bad = []
        for name in names:
            if name not in models_store.REMBG_MODELS:
                raise CommandError(f"unknown model {name!r}")
            ok = models_store.verify_model(name, home)
            self.stdout.write(f"  rembg:{name:<24} {'ok' if ok else 'MISSING OR CORRUPT'}")
            if not ok:
                bad.append(name)
        if bad:
            raise CommandError(f"{len(bad)} model(s) failed verification: {', '.join(bad)}; pull them again")
