"""Warm-up when a GPU worker starts: load the scene models and run one small call per bucket
before the worker takes its first job (config/celery.py calls :func:`warm_up_worker` in each
pool process as it starts).

Settings (environment):

* ``VITRINE_GPU_WARMUP``: ``auto`` (default) warms up when the worker consumes the ``gpu``
  queue and CUDA is available; ``1`` also on a CPU-only worker; ``0`` never.
* ``VITRINE_GPU_WARMUP_MODELS``: comma-separated model names; default every installed
  diffusers model (``sd-inpaint``, ``sdxl-inpaint``, ``flux-fill`` whose folder exists).
* ``VITRINE_GPU_WARMUP_TIMEOUT``: seconds the worker allows a pool process to start when it
  warms up (default 1800: a ``max-autotune`` compile of five buckets takes minutes).

Torch is imported only when a warm-up happens.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from generation.registry import MODELS, get_backend

__all__ = ["WARMUP_TIMEOUT_DEFAULT", "may_warm_up", "should_warm_up", "warm_up_models", "warm_up_timeout", "warm_up_worker"]

log = logging.getLogger(__name__)
WARMUP_TIMEOUT_DEFAULT = 1800.0
_DIFFUSERS_BACKENDS = ("sd-inpaint", "sdxl-inpaint", "flux-fill")


def _setting() -> str:
    return (os.environ.get("VITRINE_GPU_WARMUP") or "auto").strip().lower()


def _nvidia_present() -> bool:
    """An NVIDIA device node exists: cheap, and needs no torch (nor CUDA initialised before
    the pool forks)."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


def may_warm_up(queues: Iterable[str]) -> bool:
    """Torch-free: whether a worker consuming ``queues`` may warm up (the worker's main
    process asks this before it forks its pool, to give the pool processes the time)."""
    setting = _setting()
    if setting in ("0", "false", "no", "off") or "gpu" not in set(queues):
        return False
    return setting in ("1", "true", "yes", "on") or _nvidia_present()


def should_warm_up(queues: Iterable[str], *, cuda_available: bool | None = None) -> bool:
    """Whether a worker consuming ``queues`` warms up (see the module's settings)."""
    setting = _setting()
    if setting in ("0", "false", "no", "off") or "gpu" not in set(queues):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    if cuda_available is None:
        # A CPU-only machine never imports torch here (pool processes start fast). Imported
        # by name, as the registry imports backends: the web process imports config.celery
        # (for /healthz) and must not import torch; only a worker runs this.
        cuda_available = _nvidia_present() and importlib.import_module("torch").cuda.is_available()
    return cuda_available


def warm_up_timeout() -> float:
    return float(os.environ.get("VITRINE_GPU_WARMUP_TIMEOUT") or WARMUP_TIMEOUT_DEFAULT)


def _models() -> list[str]:
    named = [name.strip() for name in (os.environ.get("VITRINE_GPU_WARMUP_MODELS") or "").split(",") if name.strip()]
    if named:
        return named
    return [name for name, spec in MODELS.items() if spec.backend in _DIFFUSERS_BACKENDS and spec.path.is_dir()]


def warm_up_models(names: Iterable[str], *, steps: int = 2) -> dict[str, dict]:
    """Load each model (through the registry: the same cached backend the jobs get) and run
    its warm-up; ``{name: {"load_s", "buckets": {bucket: seconds}}}``, logged as it goes. A
    model that fails to load or warm up is logged and skipped: the worker still starts (its
    jobs then fail with the load error, in words)."""
    from generation.registry import load_scene_backend

    report = {}
    for name in names:
        started = time.perf_counter()
        try:
            backend = load_scene_backend(name)
            loaded = time.perf_counter() - started
            timings = backend.warm_up(steps=steps) if hasattr(backend, "warm_up") else []
        except Exception:
            log.exception("gpu.warmup_failed model=%s", name)
            continue
        report[name] = {"load_s": round(loaded, 2), "buckets": {str(b): round(s, 2) for b, s in timings}}
        log.info(
            "gpu.warmup model=%s backend=%s load_s=%.1f warmup_s=%.1f buckets=%s compiled=%s",
            name, get_backend(MODELS[name].backend).name if name in MODELS else "?", loaded,
            sum(s for _, s in timings), " ".join(f"{b}:{s:.1f}s" for b, s in timings) or "none",
            getattr(backend, "compiled", False),
        )
    return report


def warm_up_worker(queues: Iterable[str]) -> dict[str, dict]:
    """What a starting pool process calls: warm up the configured models when
    :func:`should_warm_up` says so; ``{}`` otherwise."""
    queues = list(queues)
    if not should_warm_up(queues):
        return {}
    names = _models()
    if not names:
        log.info("gpu.warmup skipped: no diffusers model is installed (VITRINE_MODELS_DIR)")
        return {}
    return warm_up_models(names)
