"""Scene backends: diffusers inpainting pipelines behind one small interface.

``load_backend("sdxl-inpaint", folder)`` loads a pipeline from a local folder once per worker
process and returns the same backend on every later call with the same (backend, folder,
device). Importing this package does not import torch; the backend modules do, when loaded.

Backends:

- ``sd-inpaint``: :class:`~generation.pipelines.sd_inpaint.StableDiffusionInpaintBackend`
- ``sdxl-inpaint``: :class:`~generation.pipelines.sdxl_inpaint.StableDiffusionXLInpaintBackend`
- ``flux-fill``: :class:`~generation.pipelines.flux_fill.FluxFillBackend`
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path

from generation.pipelines.base import (
    SCHEDULERS,
    GenerationCancelled,
    LoraSpec,
    OutOfMemory,
    SceneBackend,
    SceneRequest,
    StepCallback,
    generate_with_oom_retry,
)

__all__ = [
    "BACKENDS",
    "SCHEDULERS",
    "GenerationCancelled",
    "LoraSpec",
    "OutOfMemory",
    "SceneBackend",
    "SceneRequest",
    "StepCallback",
    "backend_class",
    "clear_cache",
    "generate_with_oom_retry",
    "load_backend",
]

#: backend name → (module, class); imported only when a backend is loaded.
BACKENDS: dict[str, tuple[str, str]] = {
    "sd-inpaint": ("generation.pipelines.sd_inpaint", "StableDiffusionInpaintBackend"),
    "sdxl-inpaint": ("generation.pipelines.sdxl_inpaint", "StableDiffusionXLInpaintBackend"),
    "flux-fill": ("generation.pipelines.flux_fill", "FluxFillBackend"),
}

_cache: dict[tuple[str, str, str], SceneBackend] = {}
# Two threads asking for the same model at once must not load it twice (GPU memory).
_cache_lock = threading.Lock()


def backend_class(backend: str) -> type:
    """The class implementing ``backend``; ``ValueError`` lists the known names."""
    try:
        module, name = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown scene backend {backend!r}; known: {', '.join(sorted(BACKENDS))}") from None
    return getattr(importlib.import_module(module), name)


def load_backend(
    backend: str, folder: str | os.PathLike[str], *, device: str | None = None
) -> SceneBackend:
    """The ``backend`` loaded from the local ``folder``, loaded once per process.

    Keyed by ``(backend, resolved folder, device)``; ``device=None`` means CUDA when available,
    else CPU. A failed load is not cached.

    Raises:
        ValueError: unknown backend name.
        FileNotFoundError: the folder is missing; the message names the folder and
            ``python manage.py models pull NAME``.
    """
    cls = backend_class(backend)
    if device is None:  # resolved first, so that None and its meaning share one entry
        from generation.pipelines._diffusers import default_device

        device = default_device()
    key = (backend, str(Path(folder).resolve()), device)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = cls.from_folder(Path(folder), device=device)
        return _cache[key]


def clear_cache() -> None:
    """Forget every loaded backend (tests; or to free memory)."""
    with _cache_lock:
        _cache.clear()
