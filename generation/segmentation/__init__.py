"""Segmentation backends, chosen by name.

``get_segmenter("graphcut")`` is the weight-free default for plain, gradient and studio
backgrounds (border background model + GrabCut + soft matte; "studio" is its deprecated old
name and still works); ``get_segmenter("rembg:u2net")`` (or any model in
:data:`generation.models_store.REMBG_MODELS`) runs a rembg ONNX model from a local folder.
Backends are imported lazily: importing rembg compiles numba code for tens of seconds.
"""

from __future__ import annotations

import os
import warnings

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
    "resolve_segmenter_name",
]

DEFAULT_SEGMENTER = "graphcut"

#: Old names still accepted (API clients, ``stage --segmenter``, ``VITRINE_SEGMENTER``), each
#: mapped to the current one. "studio" was the graphcut segmenter's name until the Django app
#: of that name made the word mean two things; deprecated, to be removed in a later release.
DEPRECATED_SEGMENTER_NAMES: dict[str, str] = {"studio": "graphcut"}


def check_segmenter_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` has the form of a segmenter name (cheap: nothing is
    imported or loaded; whether a rembg model is installed is the worker's to find out).
    Deprecated names (:data:`DEPRECATED_SEGMENTER_NAMES`) are accepted."""
    if name not in ("graphcut", *DEPRECATED_SEGMENTER_NAMES) and not (
        name.startswith("rembg:") and len(name) > len("rembg:")
    ):
        raise ValueError(f"Unknown segmenter '{name}'. Use 'graphcut' or 'rembg:<model>'.")


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
        name: ``"graphcut"`` or ``"rembg:<model>"`` (e.g. ``"rembg:isnet-general-use"``);
            the deprecated ``"studio"`` gives ``"graphcut"``.
        model_dir: folder holding rembg weights (rembg's ``U2NET_HOME`` layout); defaults to
            the ``U2NET_HOME`` environment variable. Ignored by ``graphcut``.

    Raises:
        ValueError: unknown backend or model name.
        ModelNotInstalled: a rembg model whose weights file is missing (raised here, before
            rembg is imported, so nothing ever tries to download).
    """
    name = resolve_segmenter_name(name)
    if name == "graphcut":
        from generation.segmentation.graphcut import GraphCutSegmenter

        return GraphCutSegmenter()
    if name.startswith("rembg:"):
        from generation.segmentation.rembg_backend import RembgSegmenter

        return RembgSegmenter(model=name.split(":", 1)[1], model_dir=model_dir)
    raise ValueError(
        f"unknown segmenter {name!r}: use 'graphcut' or 'rembg:<model>' (e.g. 'rembg:u2net')"
    )
