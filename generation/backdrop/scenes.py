"""Procedural studio scenes: the training data and the held-out references of backdrop-mini.

A scene is fully determined by its seed: a backdrop (sweep, wall + floor, or table top) coloured
from a brand palette through the style's rules, soft light falloff and vignette from a light
direction, a product silhouette (bottle, box, jar, shoe-like blob, rounded shape) with simple
shading, and its contact shadow plus a cast shadow thrown away from the light.

The scene is built in layers so that training can ask for the low-frequency part only
(``detail=False``): that is what the 32 px network learns; ``textures.apply_texture`` draws
the rest in both the references and the pipeline's texture pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .styles import STYLE_NAMES, STYLES, BackdropStyle, normalize_palette
from .textures import apply_texture

SHAPES = ("box", "bottle", "jar", "shoe", "round")

_WHITE = np.array([0.96, 0.96, 0.95], np.float32)
_OAT = np.array([0.86, 0.81, 0.72], np.float32)
_MARBLE = np.array([0.93, 0.92, 0.90], np.float32)
_WOOD = np.array([0.56, 0.38, 0.23], np.float32)


@dataclass(frozen=True)
class Scene:
    """One rendered scene; arrays are float32 in [0, 1] at the requested size."""

    image: np.ndarray  # (H, W, 3) product composited over the background
    background: np.ndarray  # (H, W, 3) backdrop + shadows, no product
    product: np.ndarray  # (H, W, 3) product colours (meaningful where coverage > 0)
    coverage: np.ndarray  # (H, W) anti-aliased product coverage
    style: str
    palette: np.ndarray  # (3, 3)
    horizon: float | None  # wall/floor boundary as a fraction of the height
    light_x: float  # -1 light from the left … +1 from the right
    bbox: tuple[int, int, int, int]  # product x0, y0, x1, y1 (exclusive) in pixels

    @property
    def mask(self) -> np.ndarray:
        """Hard product mask (bool), what a caller hands the pipeline."""
        return self.coverage > 0.5


def random_palette(rng: np.random.Generator) -> np.ndarray:
    """Three brand-like colours: mostly saturated hues, some near-greys, some darks."""
    cols = []
    for _ in range(3):
        hue = rng.uniform(0, 180)
        sat = rng.choice([rng.uniform(0.0, 0.15), rng.uniform(0.2, 1.0)], p=[0.2, 0.8])
        val = rng.uniform(0.25, 1.0)
        hsv = np.array([[[hue, sat * 255, val * 255]]], np.uint8)
        cols.append(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] / 255.0)
    pal = np.array(cols, np.float32)
    if rng.random() < 0.3:  # 2-colour brand kits arrive with colour 2 reused as the accent
        pal[2] = pal[1]
    return pal


def _mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) * a + t * b


def _backdrop_colours(style: BackdropStyle, pal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top/wall colour, bottom/floor colour) for a style and palette."""
    c1, c2, _ = pal
    name = style.name
    if name == "studio-white":
        return _mix(_WHITE, c1, 0.08), _mix(_WHITE, c2, 0.06)
    if name == "studio-colour":
        return c1, c2
    if name == "marble":
        return _mix(np.full(3, 0.85, np.float32), c1, 0.55), _mix(_MARBLE, c2, 0.2)
    if name == "wood":
        return _mix(np.full(3, 0.8, np.float32), c1, 0.7), _mix(_WOOD, c2, 0.35)
    if name == "concrete":
        return _mix(np.full(3, 0.6, np.float32), c1, 0.3), _mix(np.full(3, 0.5, np.float32), c2, 0.3)
    if name == "linen":
        return _mix(_OAT, c1, 0.7), _mix(_OAT, c2, 0.7)
    if name == "pastel-sweep":
        return _mix(np.ones(3, np.float32), c1, 0.45), _mix(np.ones(3, np.float32), c2, 0.45)
    raise ValueError(name)


def _draw_product(rng: np.random.Generator, h: int, w: int, shape: str, cx: float, yb: float, ph: float, light_x: float):
    """Coverage (H, W) and colour layer (H, W, 3) of one product; sizes in pixels."""
    canvas = np.zeros((h, w), np.uint8)
    sh = 4  # cv2 sub-pixel bits
    s = float(1 << sh)

    def pt(x, y):
        return (int(round(x * s)), int(round(y * s)))

    def poly(points):
        cv2.fillPoly(canvas, [np.array([pt(x, y) for x, y in points], np.int32)], 255, cv2.LINE_AA, sh)

    def ellipse(x, y, ax, ay):
        cv2.ellipse(canvas, pt(x, y), pt(ax, ay), 0, 0, 360, 255, -1, cv2.LINE_AA, sh)

    cylindrical = True
    if shape == "box":
        pw = ph * rng.uniform(0.5, 1.2)
        poly([(cx - pw / 2, yb), (cx + pw / 2, yb), (cx + pw / 2, yb - ph), (cx - pw / 2, yb - ph)])
        cylindrical = False
    elif shape == "bottle":
        bw = ph * rng.uniform(0.26, 0.42)
        body = 0.6 * ph
        nw = bw * rng.uniform(0.28, 0.45)
        cap = 0.08 * ph
        poly([
            (cx - bw / 2, yb), (cx + bw / 2, yb), (cx + bw / 2, yb - body),
            (cx + nw / 2, yb - body - 0.14 * ph), (cx + nw / 2, yb - ph + cap),
            (cx + nw * 0.65, yb - ph + cap), (cx + nw * 0.65, yb - ph),
            (cx - nw * 0.65, yb - ph), (cx - nw * 0.65, yb - ph + cap),
            (cx - nw / 2, yb - ph + cap), (cx - nw / 2, yb - body - 0.14 * ph), (cx - bw / 2, yb - body),
        ])
        pw = bw
    elif shape == "jar":
        pw = ph * rng.uniform(0.7, 1.1)
        r = 0.18 * pw
        lid = 0.18 * ph
        poly([(cx - pw / 2 + r, yb), (cx + pw / 2 - r, yb), (cx + pw / 2 - r, yb - ph + lid), (cx - pw / 2 + r, yb - ph + lid)])
        poly([(cx - pw / 2, yb - r), (cx + pw / 2, yb - r), (cx + pw / 2, yb - ph + lid + r), (cx - pw / 2, yb - ph + lid + r)])
        for ex, ey in ((cx - pw / 2 + r, yb - r), (cx + pw / 2 - r, yb - r), (cx - pw / 2 + r, yb - ph + lid + r), (cx + pw / 2 - r, yb - ph + lid + r)):
            ellipse(ex, ey, r, r)
        poly([(cx - pw * 0.42, yb - ph + lid + 1), (cx + pw * 0.42, yb - ph + lid + 1), (cx + pw * 0.42, yb - ph), (cx - pw * 0.42, yb - ph)])
    elif shape == "shoe":
        pw = ph * rng.uniform(1.8, 2.6)
        side = rng.choice([-1.0, 1.0])
        ellipse(cx, yb - 0.3 * ph, pw / 2, 0.3 * ph)
        ellipse(cx - side * 0.28 * pw, yb - 0.5 * ph, 0.2 * pw, 0.5 * ph)
        poly([(cx - pw / 2, yb), (cx + pw / 2, yb), (cx + pw / 2, yb - 0.3 * ph), (cx - pw / 2, yb - 0.3 * ph)])
        canvas[min(h, int(np.ceil(yb))) :] = 0  # flat sole
        cylindrical = False
    else:  # round
        pw = ph * rng.uniform(0.7, 1.3)
        ellipse(cx, yb - ph / 2, pw / 2, ph / 2)

    cov = canvas.astype(np.float32) / 255.0

    hue = rng.uniform(0, 180)
    hsv = np.array([[[hue, rng.uniform(0.0, 1.0) * 255, rng.uniform(0.2, 0.95) * 255]]], np.uint8)
    body = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0
    xx = (np.arange(w, dtype=np.float32)[None, :] + 0.5 - cx) / max(pw / 2, 1e-3)
    yy = (np.arange(h, dtype=np.float32)[:, None] + 0.5 - (yb - ph)) / max(ph, 1e-3)
    if cylindrical:
        lum = 1.05 - 0.35 * (xx - 0.45 * light_x) ** 2
    else:
        lum = 0.95 + 0.15 * light_x * xx - 0.05 * yy
    colour = body[None, None, :] * np.clip(lum, 0.3, 1.3)[..., None]
    if shape in ("bottle", "jar", "box") and rng.random() < 0.6:
        hsv2 = np.array([[[rng.uniform(0, 180), rng.uniform(0, 255), rng.uniform(60, 255)]]], np.uint8)
        label = cv2.cvtColor(hsv2, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0
        band = ((yy > 0.5) & (yy < 0.8) & (np.abs(xx) < 0.9)).astype(np.float32)
        colour = colour * (1 - band[..., None]) + label * np.clip(lum, 0.3, 1.3)[..., None] * band[..., None]
    return cov, np.clip(colour, 0, 1), pw


def _shadows(cov: np.ndarray, yb: float, light_x: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative darkening (H, W): contact shadow plus a cast shadow away from the light."""
    h, w = cov.shape
    rows = cov[max(0, int(yb) - max(2, h // 64)) : max(1, int(np.ceil(yb)))]
    cols = np.nonzero(rows.max(axis=0) > 0.3)[0] if rows.size else np.array([])
    if cols.size == 0:
        cols = np.nonzero(cov.max(axis=0) > 0.3)[0]
    x0, x1 = (cols.min(), cols.max() + 1) if cols.size else (w // 2, w // 2 + 1)
    full_cols = np.nonzero(cov.max(axis=0) > 0.3)[0]
    full_w = (full_cols.max() + 1 - full_cols.min()) if full_cols.size else 1
    half = max((x1 - x0) / 2 * 1.08, 0.3 * full_w / 2)
    ch = rng.uniform(0.012, 0.025) * h
    contact = np.zeros((h, w), np.float32)
    cv2.ellipse(contact, (int(round((x0 + x1) / 2 * 16)), int(round((yb - 0.2 * ch) * 16))),
                (int(round(half * 16)), int(round(ch * 16))), 0, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
    contact = cv2.GaussianBlur(contact, (0, 0), max(0.5, 0.45 * ch))

    # The cast shadow is the silhouette laid down behind the product: anchored at the base,
    # squashed towards the horizon and sheared away from the light.
    shear = -light_x * rng.uniform(0.4, 1.1)
    squash = rng.uniform(0.25, 0.55)
    m = np.float32([[1, -shear, shear * yb], [0, squash, (1 - squash) * yb]])
    cast = cv2.warpAffine(cov, m, (w, h), flags=cv2.INTER_LINEAR)
    cast = cv2.GaussianBlur(cast, (0, 0), max(0.6, rng.uniform(0.012, 0.03) * h))
    sc = rng.uniform(0.45, 0.7)
    ss = rng.uniform(0.18, 0.38)
    return (1 - sc * contact) * (1 - ss * cast)


def render_scene(
    seed: int,
    size: tuple[int, int] = (64, 64),
    style: str | None = None,
    palette=None,
    detail: bool = True,
) -> Scene:
    """Render the scene for ``seed`` at ``size`` = (height, width).

    ``style`` and ``palette`` default to ones drawn from the seed. ``detail=False`` leaves out
    the surface texture: the low-frequency layer that the network is trained on.
    """
    h, w = size
    rng = np.random.default_rng(seed)
    style_name = style if style is not None else STYLE_NAMES[rng.integers(len(STYLES))]
    spec = STYLES[STYLE_NAMES.index(style_name)]
    pal = random_palette(rng) if palette is None else normalize_palette(palette)
    light_x = float(rng.uniform(-1, 1))

    y = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    x = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / h  # height units
    aspect = w / h
    top, bottom = _backdrop_colours(spec, pal)

    horizon: float | None
    if spec.layout == "sweep":
        horizon = None
        ys = rng.uniform(0.4, 0.72)
        t = np.clip((y - ys) / 0.45 + 0.5, 0, 1)
        t = t * t * (3 - 2 * t)
        yb = rng.uniform(max(0.55, ys + 0.05), 0.93)
    else:
        horizon = float(rng.uniform(0.3, 0.68))
        soft = rng.uniform(0.003, 0.006) if spec.layout == "table_top" else rng.uniform(0.006, 0.02)
        t = np.clip((y - horizon) / soft + 0.5, 0, 1)
        yb = rng.uniform(max(horizon + 0.1, 0.5), 0.94)
    bg = top[None, None, :] * (1 - t[..., None]) + bottom[None, None, :] * t[..., None]
    bg = np.broadcast_to(bg, (h, w, 3)).copy()
    if horizon is not None:
        # Ambient occlusion where wall meets floor / table.
        ao = np.exp(-np.clip(horizon - y, 0, None) / 0.03) * (y < horizon)
        bg *= (1 - rng.uniform(0.05, 0.15) * ao)[..., None]
    if spec.name == "pastel-sweep":
        gx = rng.uniform(0.3, 0.7) * aspect
        glow = np.exp(-((x - gx) ** 2 + (y - 0.45) ** 2) / (2 * 0.22**2))
        g = _mix(np.ones(3, np.float32), pal[2], 0.45)
        bg = bg * (1 - 0.5 * glow[..., None]) + g * 0.5 * glow[..., None]

    # Key light: falloff from a spot on the light's side, then a vignette.
    lxp = (0.5 + 0.5 * light_x) * aspect
    lyp = rng.uniform(-0.2, 0.3)
    radius = rng.uniform(0.9, 1.6)
    falloff = rng.uniform(0.08, 0.3)
    d = np.sqrt((x - lxp) ** 2 + (y - lyp) ** 2) / radius
    shade = 1 - falloff * np.clip(d, 0, 1.5) ** 2
    r2 = ((x - aspect / 2) ** 2 + (y - 0.5) ** 2) / (0.25 * (1 + aspect**2))
    shade *= 1 - rng.uniform(0.0, 0.3) * r2
    bg *= rng.uniform(0.94, 1.06) * shade[..., None]

    if detail:
        bg = apply_texture(np.clip(bg, 0, 1), spec, pal, np.random.default_rng([seed, 1]), horizon)

    shape = SHAPES[rng.integers(len(SHAPES))]
    ph = rng.uniform(0.15, 0.32) if shape == "shoe" else rng.uniform(0.2, 0.6)
    ph = min(ph, yb - 0.04) * h
    _, _, pw = _draw_product(np.random.default_rng([seed, 2]), h, w, shape, 0.0, yb * h, ph, light_x)
    # Place horizontally after drawing once to learn the width, so it stays inside the frame.
    lo, hi = pw / 2 + 0.04 * w, w - pw / 2 - 0.04 * w
    cx = rng.uniform(lo, hi) if hi > lo else w / 2
    cov, colour, _ = _draw_product(np.random.default_rng([seed, 2]), h, w, shape, cx, yb * h, ph, light_x)

    bg = np.clip(bg * _shadows(cov, yb * h, light_x, np.random.default_rng([seed, 3]))[..., None], 0, 1)
    image = bg * (1 - cov[..., None]) + colour * cov[..., None]
    ys_, xs_ = np.nonzero(cov > 0.5)
    bbox = (int(xs_.min()), int(ys_.min()), int(xs_.max()) + 1, int(ys_.max()) + 1) if xs_.size else (0, 0, 0, 0)
    return Scene(
        image=image.astype(np.float32),
        background=bg.astype(np.float32),
        product=colour.astype(np.float32),
        coverage=cov,
        style=style_name,
        palette=pal,
        horizon=horizon,
        light_x=light_x,
        bbox=bbox,
    )


def shadow_bands(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean luminance of the band just under the product's base and of the band beside it.

    The under band spans the columns of the product's lowest rows (where a contact shadow
    belongs); the beside band is the same rows, a little way off to both sides. A grounded
    product has under < beside. Returns (nan, nan) when there is no room to measure.
    """
    h, w = mask.shape
    rows = np.nonzero(mask.any(axis=1))[0]
    if rows.size == 0:
        return float("nan"), float("nan")
    y1 = rows.max() + 1
    base = mask[max(0, y1 - max(2, int(0.03 * h))) : y1].any(axis=0)
    cols = np.nonzero(base)[0]
    x0, x1 = cols.min(), cols.max() + 1
    bw = max(x1 - x0, int(0.05 * w))
    band_h = max(2, int(0.02 * h))
    lum = np.asarray(image, np.float32)[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    band = lum[y1 : min(h, y1 + band_h)]
    under = band[:, x0:x1]
    beside = np.concatenate(
        [band[:, max(0, x0 - int(0.75 * bw)) : max(0, x0 - int(0.25 * bw))],
         band[:, min(w, x1 + int(0.25 * bw)) : min(w, x1 + int(0.75 * bw))]], axis=1)
    if under.size == 0 or beside.size == 0:
        return float("nan"), float("nan")
    return float(under.mean()), float(beside.mean())
