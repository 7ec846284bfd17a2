"""Scene styles and brand palettes understood by backdrop-mini.

A style is the model's scene class (a merchant's scene preset names one in its ``style``). The
style list is part of the trained model: its order fixes the class ids the network was trained
with, so new styles mean retraining (append, never reorder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BackdropStyle:
    """How a style lays out a scene: the backdrop shape and the surface texture."""

    name: str
    layout: str  # "sweep" (no horizon), "wall_floor" or "table_top" (horizon line)
    wall_texture: str  # texture family drawn on the wall / whole sweep
    floor_texture: str  # texture family drawn below the horizon (same as wall for sweeps)


STYLES: tuple[BackdropStyle, ...] = (
    BackdropStyle("studio-white", "sweep", "paper", "paper"),
    BackdropStyle("studio-colour", "wall_floor", "paper", "paper"),
    BackdropStyle("marble", "table_top", "paper", "marble"),
    BackdropStyle("wood", "table_top", "paper", "wood"),
    BackdropStyle("concrete", "wall_floor", "concrete", "concrete"),
    BackdropStyle("linen", "sweep", "linen", "linen"),
    BackdropStyle("pastel-sweep", "sweep", "paper", "paper"),
)
STYLE_NAMES: tuple[str, ...] = tuple(style.name for style in STYLES)

#: A neutral warm studio (backdrop, surface, accent), used when no brand palette is given and
#: as the palette of every workspace's first brand kit.
DEFAULT_PALETTE: tuple[tuple[int, int, int], ...] = ((239, 233, 225), (217, 203, 184), (138, 111, 82))


def style_id(name: str) -> int:
    """The class id the network was trained with for ``name``."""
    try:
        return STYLE_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown style {name!r}; known: {', '.join(STYLE_NAMES)}") from None


def normalize_palette(palette: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Return the palette as a (3, 3) float32 array of sRGB values in [0, 1].

    Accepts 2 or 3 colours, each either 0–255 integers or 0–1 floats. Colour 1 is the wall /
    backdrop, colour 2 the floor / surface, colour 3 an accent (pastel glow, marble veins);
    a 2-colour palette reuses colour 2 as the accent, which is also how the model was trained
    on a share of its palettes.
    """
    arr = np.asarray(palette, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or not 2 <= arr.shape[0] <= 3:
        raise ValueError(f"palette must be 2 or 3 RGB colours, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0:
        raise ValueError("palette values must be finite and non-negative")
    # Integers (or anything above 1) are read as 0–255 bytes.
    if np.issubdtype(np.asarray(palette).dtype, np.integer) or arr.max() > 1.0:
        if arr.max() > 255:
            raise ValueError("palette values above 255")
        arr = arr / 255.0
    if arr.shape[0] == 2:
        arr = np.concatenate([arr, arr[1:2]], axis=0)
    return arr.astype(np.float32)
