"""From a cutout and a scene to a finished, locked, checked image: one place for the steps
every output goes through (the `stage` command and the generation task alike)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generation.colour import dominant_colours
from generation.lock import (
    LockCertificate,
    ProductLayer,
    Transform,
    backdrop_fill,
    composite_locked,
    contact_shadow,
    place_layer,
)
from generation.preflight import ChannelSpec, CheckResult, run_preflight

#: Preflight for an output at the photo's own size and framing (no channel preset asked).
AS_PHOTO = ChannelSpec(name="as-photo", title="The photo's own size")

#: Where the product's base stands, as a share of the canvas height from the top.
GROUND = 0.84

#: The product's bounding box fills this share of the canvas's limiting side when placed:
#: enough room around it for the scene to read as a place, as in lifestyle product shots.
DEFAULT_FILL = 0.62


@dataclass(frozen=True, eq=False)
class ComposedImage:
    image: np.ndarray
    certificate: LockCertificate
    preflight: list[CheckResult]
    #: The scene's main colours around the product, [((r, g, b), share), ...], for the
    #: brand palette gate.
    background_colours: list[tuple[tuple[int, int, int], float]]

    @property
    def preflight_passed(self) -> bool:
        return all(check.passed for check in self.preflight)


def fit_transform(
    *, bbox: tuple[int, int, int, int] | None, photo_size: tuple[int, int], canvas_size: tuple[int, int], fill: float = DEFAULT_FILL
) -> Transform:
    """Place the product on a canvas of another size: scaled so its box fills `fill` of the
    limiting side, centred horizontally, standing with its base at GROUND of the height (on
    the surface, as studio product shots are framed; centred when it fills most of the frame).
    The same photo and canvas always give the same transform."""
    pw, ph = photo_size
    cw, ch = canvas_size
    if bbox is None:
        bbox = (0, 0, pw, ph)
    x0, y0, x1, y1 = bbox
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    scale = min(fill * cw / bw, fill * ch / bh)
    scale = float(f"{scale:.6f}")  # a short decimal: the recipe stores and replays it exactly
    dx = int(round(cw / 2 - (x0 + bw / 2) * scale))
    base = max(GROUND * ch, (ch + bh * scale) / 2)  # never push a tall product off the top
    dy = int(round(min(base, ch) - y1 * scale))
    return Transform(scale=scale, dx=dx, dy=dy)


def fill_for(channel: ChannelSpec) -> float:
    """How much of the frame the product should fill on this channel (marketplaces ask more)."""
    return max(DEFAULT_FILL, channel.min_fill + 0.05) if channel.min_fill else DEFAULT_FILL


def compose(
    *, layer: ProductLayer, scene: np.ndarray, transform: Transform, channel: ChannelSpec = AS_PHOTO, shadow: bool = True
) -> ComposedImage:
    """Composite the product over `scene` (canvas-sized), lock it, and run the channel's checks.

    A white-background channel (marketplace main images) gets pure RGB 255 around the
    product and no shadow, whatever the scene: that is the channel's rule, not a style."""
    canvas = (scene.shape[1], scene.shape[0])
    if channel.white_background:
        scene, shadow = backdrop_fill(size=canvas, color=(255, 255, 255)), False
    placed = place_layer(layer, transform, canvas)
    shadow_map = contact_shadow(mask=placed.alpha > 0.5) if shadow else None
    image, certificate = composite_locked(layer=layer, scene=scene, transform=transform, shadow=shadow_map)
    checks = run_preflight(image=image, alpha=placed.alpha, mask=placed.mask, channel=channel)
    return ComposedImage(image=image, certificate=certificate, preflight=checks, background_colours=background_colours(image, placed.alpha))


def background_colours(image: np.ndarray, alpha: np.ndarray, *, k: int = 4) -> list[tuple[tuple[int, int, int], float]]:
    """The main colours of the scene where the product is not (alpha below 2 %), on a
    subsample of at most ~250k pixels: colour shares do not need every pixel."""
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 250_000)))
    return dominant_colours(image[::step, ::step], mask=alpha[::step, ::step] < 0.02, k=k, samples=8000)
