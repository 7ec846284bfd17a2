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

#: Why a placement has the size and scale it has (``Placement.reason``).
NATIVE, SMALLER_CANVAS, DOWNSCALED, ENLARGED = "native", "smaller-canvas", "downscaled", "enlarged"


@dataclass(frozen=True)
class Placement:
    """Where the product goes on one channel's canvas, and why.

    ``canvas``: the image's ``(width, height)``; ``wanted``: the channel's full size;
    ``transform``: the product layer's placement (scale 1 unless ``reason`` is
    ``downscaled`` or ``enlarged``); ``product_px``: the long side of the product's box in the
    photo; ``photo_px``: the photo's long side."""

    canvas: tuple[int, int]
    wanted: tuple[int, int]
    transform: Transform
    reason: str
    product_px: int
    photo_px: int

    def to_dict(self) -> dict:
        return {
            "canvas": list(self.canvas), "wanted": list(self.wanted), "transform": self.transform.to_dict(),
            "reason": self.reason, "product_px": self.product_px, "photo_px": self.photo_px,
        }


def plan_placement(*, channel: ChannelSpec, bbox: tuple[int, int, int, int] | None, photo_size: tuple[int, int]) -> Placement:
    """The canvas and the product's transform on ``channel``: placement that prefers identity.

    The product keeps its native resolution (scale 1, an integer offset: pixel-identical) and
    the scene is made around it, whenever its fill (the long side of its box over the
    frame's, as the preflight measures it) on the channel's canvas lies in the channel's
    ``fill_range`` (35–85 % by default: less reads as a speck in a room, more leaves no scene).
    Otherwise:

    * fill above the range (the photo has more pixels than the canvas): the product is
      downscaled to the channel's ``fill`` (62 % by default), the framing a resized product gets;
    * fill below the range (the photo has too few pixels), on a channel that allows a
      ``smaller_canvas``: the canvas shrinks, at the channel's aspect, to the largest size
      the product still fills at the range's low end at scale 1, down to ``min_long_side``;
    * below that, or on a channel that needs its exact size: the product is enlarged to the
      range's low end (the least enlargement that frames it), and the resolution gate warns.

    Centred horizontally, the product's base at GROUND of the height (centred when it is
    tall). The same channel, box and photo size always give the same placement."""
    pw, ph = photo_size
    if bbox is None:
        bbox = (0, 0, pw, ph)
    x0, y0, x1, y1 = bbox
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    product_px, photo_px = max(bw, bh), max(pw, ph)
    if channel.width is None or channel.height is None:
        # The photo's own canvas (as-photo): the product stays where it is.
        return Placement(photo_size, photo_size, Transform(), NATIVE, product_px, photo_px)
    wanted = (channel.width, channel.height)
    cw, ch = wanted
    low, high = channel.fill_range
    native_fill = max(bw / cw, bh / ch)
    canvas, scale, reason = wanted, 1.0, NATIVE
    if native_fill > high:
        scale, reason = channel.fill / native_fill, DOWNSCALED
    elif native_fill < low:
        shrink = native_fill / low  # the canvas at which the product fills `low` at scale 1
        floor = min(1.0, (channel.min_long_side or 0) / max(cw, ch)) if channel.smaller_canvas else 1.0
        if shrink >= floor:
            canvas, reason = (int(cw * shrink), int(ch * shrink)), SMALLER_CANVAS  # rounded down: fill >= low
        else:
            canvas = (int(round(cw * floor)), int(round(ch * floor)))
            scale, reason = low / max(bw / canvas[0], bh / canvas[1]), ENLARGED
    if scale != 1.0:
        scale = float(f"{scale:.6f}")  # a short decimal: the recipe stores and replays it exactly
    return Placement(canvas, wanted, _position(bbox, scale, canvas), reason, product_px, photo_px)


def _position(bbox: tuple[int, int, int, int], scale: float, canvas: tuple[int, int]) -> Transform:
    """The integer offset that centres the scaled box horizontally with its base at GROUND
    (never pushing a tall product off the top)."""
    x0, y0, x1, y1 = bbox
    cw, ch = canvas
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    dx = int(round(cw / 2 - (x0 + bw / 2) * scale))
    base = max(GROUND * ch, (ch + bh * scale) / 2)
    dy = int(round(min(base, ch) - y1 * scale))
    return Transform(scale=scale, dx=dx, dy=dy)


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
