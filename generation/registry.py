"""The scene models Vitrine knows: name → backend → local folder.

Models are only ever loaded from a local folder (users may run offline). The folder root is
``$VITRINE_MODELS_DIR`` when set, else ``generation/weights/`` in the repository, where the
bundled backdrop-mini ships. Backends are imported lazily so that reading the registry never
imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its ``backend`` decides how ``folder`` (under the models root) loads."""

    name: str
    backend: str
    folder: str
    #: Where `manage.py models pull` fetches the folder from (a Hugging Face repository id);
    #: never read at run time.
    source: str = ""
    description: str = ""

    @property
    def path(self) -> Path:
        return models_dir() / self.folder


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(name="backdrop-mini", backend="backdrop", folder="backdrop-mini",
                  description="bundled CPU studio-backdrop model (ships with Vitrine)"),
        ModelSpec(name="sd-inpaint", backend="sd-inpaint", folder="sd-inpaint",
                  source="stable-diffusion-v1-5/stable-diffusion-inpainting",
                  description="Stable Diffusion 1.5 inpainting, 512 px (GPU recommended)"),
        ModelSpec(name="sdxl-inpaint", backend="sdxl-inpaint", folder="sdxl-inpaint",
                  source="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
                  description="SDXL 1.0 inpainting, 1024 px (GPU)"),
        ModelSpec(name="flux-fill", backend="flux-fill", folder="flux-fill",
                  source="black-forest-labs/FLUX.1-Fill-dev",
                  description="FLUX.1 Fill [dev], 1024 px (GPU, 24 GB+; gated: accept the licence and set HF_TOKEN)"),
    )
}


def models_dir() -> Path:
    """Root folder of all model folders (read at call time, so tests can point it elsewhere)."""
    return Path(os.environ.get("VITRINE_MODELS_DIR") or DEFAULT_MODELS_DIR)


def get_model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}") from None


def load_pipeline(name: str) -> Any:
    """Load the named model's pipeline from its local folder."""
    spec = get_model(name)
    if not spec.path.is_dir():
        raise FileNotFoundError(f"model {name!r} expects its files in {spec.path}")
    if spec.backend == "backdrop":
        from generation.backdrop.pipeline import BackdropPipeline

        return BackdropPipeline.from_pretrained(spec.path)
    raise ValueError(f"model {name!r} has unknown backend {spec.backend!r}")


_loaded: dict[tuple[str, str], Any] = {}


def load_scene_backend(name: str) -> Any:
    """The named model as a scene backend (generation.pipelines.base.SceneBackend), loaded
    once per process and reused: a worker keeps its models warm across tasks."""
    spec = get_model(name)
    key = (name, str(spec.path))
    if key not in _loaded:
        if not spec.path.is_dir():
            how = f"run `python manage.py models pull {name}` where the machine is online" if spec.source else "reinstall Vitrine"
            raise FileNotFoundError(f"model {name!r} expects its files in {spec.path}; {how}")
        if spec.backend == "backdrop":
            from generation.backdrop.backend import BackdropBackend

            _loaded[key] = BackdropBackend.from_folder(spec.path)
        else:
            from generation.pipelines import load_backend

            _loaded[key] = load_backend(spec.backend, spec.path)
    return _loaded[key]
