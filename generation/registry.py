"""The scene backends and models Vitrine knows, and the one place a model is loaded.

A *backend* is a kind of scene model: its code, the sampling settings it accepts
(:class:`~generation.pipelines.base.SamplingRules`) and the size it was trained at. A *model*
is a folder of weights for one backend, under the models root: ``$VITRINE_MODELS_DIR`` when
set, else ``generation/weights/`` in the repository, where the bundled backdrop-mini ships.
Models are only ever loaded from a local folder (users may run offline).

Reading the registry never imports torch (the web process checks presets against it): a
backend's code is imported when a model is loaded.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from generation.pipelines.base import SCHEDULERS, SamplingRules, SceneBackend

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class BackendSpec:
    """A kind of scene model: ``implementation`` (``"module:Class"``) loads its folders."""

    name: str
    implementation: str
    rules: SamplingRules
    #: Pixels the backend was trained at: scenes are made at the canvas's aspect and this
    #: area, then resized to the canvas. ``None``: it works at any size.
    native_pixels: int | None = None
    #: Whether the model reads the prompt's words. The bundled model has no text encoder: it
    #: follows the preset's style and the brand palette, so pages say free text is ignored.
    reads_prompt: bool = True

    def backend_class(self) -> type:
        """The class (imported now) whose ``from_folder(path, device=...)`` loads a model."""
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module), name)


#: Noise-prediction diffusion models take every scheduler the engine names.
_DIFFUSION_SCHEDULERS = tuple(SCHEDULERS)

BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        # Trained and tested with DDIM only; it has no text conditioning to guide, and always
        # paints the whole scene around the product.
        BackendSpec(
            name="backdrop", implementation="generation.backdrop.backend:BackdropBackend",
            rules=SamplingRules(
                title="backdrop-mini", schedulers=("ddim",), scheduler="ddim", steps=20, guidance=1.0,
                guidance_range=(1.0, 1.0), strength_range=(1.0, 1.0),
            ),
            reads_prompt=False,
        ),
        BackendSpec(
            name="sd-inpaint", implementation="generation.pipelines.sd_inpaint:StableDiffusionInpaintBackend",
            rules=SamplingRules(
                title="Stable Diffusion inpainting", schedulers=_DIFFUSION_SCHEDULERS, scheduler="euler",
                steps=30, guidance=7.0,
            ),
            native_pixels=512 * 512,
        ),
        BackendSpec(
            name="sdxl-inpaint", implementation="generation.pipelines.sdxl_inpaint:StableDiffusionXLInpaintBackend",
            rules=SamplingRules(
                title="SDXL inpainting", schedulers=_DIFFUSION_SCHEDULERS, scheduler="euler", steps=30, guidance=7.0,
            ),
            native_pixels=1024 * 1024,
        ),
        # Flow matching: only the flow-matching Euler scheduler applies. Guidance-distilled:
        # its guidance is embedded (the model card uses 30) and it has no negative prompt.
        BackendSpec(
            name="flux-fill", implementation="generation.pipelines.flux_fill:FluxFillBackend",
            rules=SamplingRules(
                title="FLUX.1 Fill", schedulers=("euler",), scheduler="euler", steps=28, guidance=30.0,
                guidance_range=(10.0, 100.0), guidance_kind="embedded guidance",
                guidance_note="Stable Diffusion's classifier-free guidance values (around 7) do not carry over.",
            ),
            native_pixels=1024 * 1024,
        ),
    )
}


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
    #: A folder (under the models root) with an fp16-safe VAE used in place of the model's
    #: own on CUDA when it is installed; never fetched at run time.
    fp16_vae: str = ""

    @property
    def path(self) -> Path:
        return models_dir() / self.folder

    @property
    def fp16_vae_path(self) -> Path | None:
        """The fp16-safe VAE's folder when it is installed, else ``None``."""
        if not self.fp16_vae:
            return None
        path = models_dir() / self.fp16_vae
        return path if (path / "config.json").is_file() else None

    @property
    def reads_prompt(self) -> bool:
        """Whether this model reads free text (its backend's :attr:`BackendSpec.reads_prompt`)."""
        return BACKENDS[self.backend].reads_prompt


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
                  description="SDXL 1.0 inpainting, 1024 px (GPU)",
                  # madebyollin/sdxl-vae-fp16-fix: SDXL's own VAE overflows in fp16 and is
                  # upcast to fp32 for every decode without it.
                  fp16_vae="sdxl-vae-fp16-fix"),
        ModelSpec(name="flux-fill", backend="flux-fill", folder="flux-fill",
                  source="black-forest-labs/FLUX.1-Fill-dev",
                  description="FLUX.1 Fill [dev], 1024 px (GPU; its bf16 weights take ~34 GB: smaller cards run it with model CPU offload, chosen automatically and slower; gated: accept the licence and set HF_TOKEN)"),
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


def get_backend(name: str) -> BackendSpec:
    try:
        return BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown scene backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None


_loaded: dict[tuple[str, str, str | None, str | None], SceneBackend] = {}
# Two threads asking for the same model at once must not load it twice (GPU memory), so loads
# happen under the lock; a model already loaded is handed out without waiting for it.
_loading = threading.Lock()


def load_scene_backend(name: str, *, device: str | None = None, dtype: str | None = None) -> SceneBackend:
    """The named model as a scene backend, loaded once per process and reused: a worker keeps
    its models warm across tasks.

    Keyed by ``(name, resolved folder, device, dtype)``; ``device=None`` and ``dtype=None``
    are the backend's own choice (CUDA when available for the diffusers backends, CPU for
    backdrop-mini; fp16/bf16 on CUDA, fp32 on CPU). ``dtype`` is a torch dtype's name
    (``"bfloat16"``). A failed load is not cached.

    Raises:
        KeyError: unknown model name.
        FileNotFoundError: the model's folder is missing; the message names the folder and
            how to get it.
    """
    spec = get_model(name)
    key = (name, str(spec.path.resolve()), device, dtype)
    if (backend := _loaded.get(key)) is not None:
        return backend
    with _loading:
        if key not in _loaded:
            if not spec.path.is_dir():
                how = f"run `python manage.py models pull {name}` where the machine is online" if spec.source else "reinstall Vitrine"
                raise FileNotFoundError(f"model {name!r} expects its files in {spec.path}; {how}")
            options = {"dtype": dtype} if dtype is not None else {}
            if (fp16_vae := spec.fp16_vae_path) is not None:
                options["fp16_vae"] = fp16_vae
            _loaded[key] = get_backend(spec.backend).backend_class().from_folder(spec.path, device=device, **options)
        return _loaded[key]


def clear_cache() -> None:
    """Forget every loaded model (tests; or to free memory)."""
    with _loading:
        _loaded.clear()
