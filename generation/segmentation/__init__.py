"""Segmentation backends, chosen by name.

``get_segmenter("auto")`` (the default) picks the best rembg model whose weights are in the
model folder (BiRefNet, then IS-Net, then U^2-Net: :data:`AUTO_PREFERENCE`) and falls back to
the weight-free ``graphcut`` when none is there (or rembg itself is not installed);
:func:`resolve_auto` says which and why. ``get_segmenter("graphcut")`` is the weight-free
one for plain, gradient and studio backgrounds (border background model + GrabCut + soft
matte; "studio" is its deprecated old name and still works); ``get_segmenter("rembg:u2net")``
(or any model in :data:`generation.models_store.REMBG_MODELS`) runs a rembg ONNX model from a
local folder. Backends are imported lazily: importing rembg compiles numba code for tens of
seconds.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from generation.segmentation.base import (
    LOCK_ALPHA_THRESHOLD,
    ModelNotInstalled,
    NoProductFound,
    SegmentationError,
    SegmentationResult,
    Segmenter,
    cutout_rgba,
    lock_mask_image,
    require_product,
)

__all__ = [
    "AUTO_PREFERENCE",
    "AutoChoice",
    "DEFAULT_SEGMENTER",
    "DEPRECATED_SEGMENTER_NAMES",
    "LOCK_ALPHA_THRESHOLD",
    "ModelNotInstalled",
    "NoProductFound",
    "SegmentationError",
    "SegmentationResult",
    "Segmenter",
    "check_segmenter_name",
    "cutout_rgba",
    "get_segmenter",
    "lock_mask_image",
    "require_product",
    "resolve_auto",
    "resolve_segmenter_name",
]

DEFAULT_SEGMENTER = "auto"

#: The rembg models ``auto`` may pick, best first: BiRefNet, then IS-Net, then U^2-Net. Only
#: general-purpose models: portrait, anime, camouflage and human-only ones are not for product
#: photos, and BRIA RMBG's licence is non-commercial, so they are used only when named.
AUTO_PREFERENCE: tuple[str, ...] = (
    "birefnet-general",
    "birefnet-massive",
    "birefnet-hrsod",
    "birefnet-dis",
    "birefnet-general-lite",
    "isnet-general-use",
    "u2net",
    "silueta",
    "u2netp",
)


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` resolves to: the segmenter name and, in words, why."""

    name: str
    reason: str


def resolve_auto(model_dir: str | os.PathLike[str] | None = None) -> AutoChoice:
    """The segmenter ``auto`` stands for with the weights in ``model_dir`` (default:
    ``U2NET_HOME``): the first model of :data:`AUTO_PREFERENCE` whose file is there, else
    ``graphcut``. Only file names are looked at; nothing is imported or loaded."""
    from generation import models_store

    home = Path(model_dir).expanduser() if model_dir else models_store.default_model_home()
    if home is None:
        return AutoChoice("graphcut", "no rembg model folder is set (VITRINE_REMBG_HOME / U2NET_HOME)")
    installed = models_store.installed_models(home)
    best = next((name for name in AUTO_PREFERENCE if name in installed), None)
    if best is None:
        return AutoChoice("graphcut", f"no general rembg model (BiRefNet, IS-Net, U^2-Net) is installed in {home}")
    if importlib.util.find_spec("rembg") is None:
        return AutoChoice("graphcut", f"rembg:{best} is installed in {home}, but the rembg package is not")
    return AutoChoice(f"rembg:{best}", f"the best installed rembg model in {home}")

#: Old names still accepted (API clients, ``stage --segmenter``, ``VITRINE_SEGMENTER``), each
#: mapped to the current one. "studio" was the graphcut segmenter's name until the Django app
#: of that name made the word mean two things; deprecated, to be removed in a later release.
DEPRECATED_SEGMENTER_NAMES: dict[str, str] = {"studio": "graphcut"}


def check_segmenter_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` has the form of a segmenter name (cheap: nothing is
    imported or loaded; whether a rembg model is installed is the worker's to find out).
    Deprecated names (:data:`DEPRECATED_SEGMENTER_NAMES`) are accepted."""
    if name not in ("auto", "graphcut", *DEPRECATED_SEGMENTER_NAMES) and not (
        name.startswith("rembg:") and len(name) > len("rembg:")
    ):
        raise ValueError(f"Unknown segmenter '{name}'. Use 'auto', 'graphcut' or 'rembg:<model>'.")


def resolve_segmenter_name(name: str) -> str:
    """The current name for ``name``: a deprecated alias maps to its replacement (with a
    ``DeprecationWarning``); any other valid name is returned as it is.

    Raises:
        ValueError: not a segmenter name (see :func:`check_segmenter_name`).
    """
    check_segmenter_name(name)
    if name in DEPRECATED_SEGMENTER_NAMES:
        current = DEPRECATED_SEGMENTER_NAMES[name]
        warnings.warn(
            f"segmenter name {name!r} is deprecated; use {current!r}", DeprecationWarning, stacklevel=3
        )
        return current
    return name


def get_segmenter(
    name: str = DEFAULT_SEGMENTER, *, model_dir: str | os.PathLike[str] | None = None
) -> Segmenter:
    """Return the segmentation backend called ``name``.

    Args:
        name: ``"auto"`` (see :func:`resolve_auto`), ``"graphcut"`` or ``"rembg:<model>"``
            (e.g. ``"rembg:isnet-general-use"``); the deprecated ``"studio"`` gives ``"graphcut"``.
        model_dir: folder holding rembg weights (rembg's ``U2NET_HOME`` layout); defaults to
            the ``U2NET_HOME`` environment variable. Ignored by ``graphcut``.

    Raises:
        ValueError: unknown backend or model name.
        ModelNotInstalled: a rembg model whose weights file is missing (raised here, before
            rembg is imported, so nothing ever tries to download).
    """
    name = resolve_segmenter_name(name)
    if name == "auto":
        name = resolve_auto(model_dir).name
    if name == "graphcut":
        from generation.segmentation.graphcut import GraphCutSegmenter

        return GraphCutSegmenter()
    if name.startswith("rembg:"):
        from generation.segmentation.rembg_backend import RembgSegmenter

        return RembgSegmenter(model=name.split(":", 1)[1], model_dir=model_dir)
    raise ValueError(
        f"unknown segmenter {name!r}: use 'auto', 'graphcut' or 'rembg:<model>' (e.g. 'rembg:u2net')"
    )
