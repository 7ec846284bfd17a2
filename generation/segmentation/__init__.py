"""Segmentation backends, chosen by name.

``get_segmenter("studio")`` is the weight-free default for plain, gradient and studio
backgrounds; ``get_segmenter("rembg:u2net")`` (or any model in
:data:`generation.models_store.REMBG_MODELS`) runs a rembg ONNX model from a local folder.
Backends are imported lazily: importing rembg compiles numba code for tens of seconds.
"""

from __future__ import annotations

import os

from generation.segmentation.base import (
    LOCK_ALPHA_THRESHOLD,
    ModelNotInstalled,
    SegmentationError,
    SegmentationResult,
    Segmenter,
    cutout_rgba,
    lock_mask_image,
)

__all__ = [
    "DEFAULT_SEGMENTER",
    "LOCK_ALPHA_THRESHOLD",
    "ModelNotInstalled",
    "SegmentationError",
    "SegmentationResult",
    "Segmenter",
    "check_segmenter_name",
    "cutout_rgba",
    "get_segmenter",
    "lock_mask_image",
]

DEFAULT_SEGMENTER = "studio"


def check_segmenter_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` has the form of a segmenter name (cheap: nothing is
    imported or loaded; whether a rembg model is installed is the worker's to find out)."""
    if name != "studio" and not (name.startswith("rembg:") and len(name) > len("rembg:")):
        raise ValueError(f"Unknown segmenter '{name}'. Use 'studio' or 'rembg:<model>'.")


def get_segmenter(
    name: str = DEFAULT_SEGMENTER, *, model_dir: str | os.PathLike[str] | None = None
) -> Segmenter:
    """Return the segmentation backend called ``name``.

    Args:
        name: ``"studio"`` or ``"rembg:<model>"`` (e.g. ``"rembg:isnet-general-use"``).
        model_dir: folder holding rembg weights (rembg's ``U2NET_HOME`` layout); defaults to
            the ``U2NET_HOME`` environment variable. Ignored by ``studio``.

    Raises:
        ValueError: unknown backend or model name.
        ModelNotInstalled: a rembg model whose weights file is missing (raised here, before
            rembg is imported, so nothing ever tries to download).
    """
    check_segmenter_name(name)
    if name == "studio":
        from generation.segmentation.studio import StudioSegmenter

        return StudioSegmenter()
    if name.startswith("rembg:"):
        from generation.segmentation.rembg_backend import RembgSegmenter

        return RembgSegmenter(model=name.split(":", 1)[1], model_dir=model_dir)
    raise ValueError(
        f"unknown segmenter {name!r}: use 'studio' or 'rembg:<model>' (e.g. 'rembg:u2net')"
    )
