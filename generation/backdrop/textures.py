"""Procedural surface detail (paper, concrete, marble, wood, linen) at any resolution.

The same functions draw the detail layer of the procedural training/reference scenes and the
texture pass that follows the network in the pipeline: a 32 px network cannot draw marble
veins or linen threads, so it makes the low-frequency scene and these add the detail on top.
Everything is relative to the image height so a texture looks the same at 128 and 2048 px.
"""

from __future__ import annotations

import cv2
import numpy as np

from .styles import BackdropStyle


def value_noise(h: int, w: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth zero-mean, roughly unit-variance noise with about ``cells`` features per height."""
    ch = max(2, cells)
    cw = max(2, int(round(cells * w / h)))
    grid = rng.standard_normal((ch + 3, cw + 3)).astype(np.float32)
    # Cubic upsampling of a small grid is the cheapest smooth noise; cropping the one-cell
    # border avoids cv2's edge replication showing up as a flat rim.
    big = cv2.resize(grid, (w * (cw + 3) // cw, h * (ch + 3) // ch), interpolation=cv2.INTER_CUBIC)
    oy = (big.shape[0] - h) // 2
    ox = (big.shape[1] - w) // 2
    return big[oy : oy + h, ox : ox + w] / 0.8


def _sine_turbulence(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, terms: int = 5, base: float = 1.5) -> np.ndarray:
    """A few random sinusoids: noise that can be sampled at perspective coordinates."""
    out = np.zeros(np.broadcast_shapes(u.shape, v.shape), dtype=np.float32)
    for i in range(terms):
        freq = base * (1.9**i)
        ang = rng.uniform(0, np.pi)
        fu, fv = freq * np.cos(ang), freq * np.sin(ang)
        out += np.sin(fu * u + fv * v + rng.uniform(0, 2 * np.pi)).astype(np.float32) / (1.6**i)
    return out


def _floor_coords(h: int, w: int, y0: int, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Perspective (u, v) for rows y0..h of a floor plane whose horizon is at ``horizon``·h."""
    y = (np.arange(y0, h, dtype=np.float32)[:, None] + 0.5) / h
    x = (np.arange(w, dtype=np.float32)[None, :] + 0.5 - w / 2) / h
    depth = 1.0 / (y - horizon + 0.06)  # 0.06: the camera looks slightly down at the table
    return x * depth, depth


def _paper(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    mottle = 0.010 * value_noise(h, w, 5, rng) + 0.005 * value_noise(h, w, 20, rng)
    return img * (1.0 + mottle[..., None])


def _concrete(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    n = 0.05 * value_noise(h, w, 3, rng) + 0.035 * value_noise(h, w, 10, rng) + 0.025 * value_noise(h, w, 40, rng)
    # Pores: sparse dark specks a few pixels wide at any output size.
    pores = (rng.random((h, w), dtype=np.float32) < 0.0015).astype(np.float32)
    pores = cv2.GaussianBlur(pores, (0, 0), max(0.6, h / 700))
    pores = np.clip(pores / max(pores.max(), 1e-6), 0, 1)
    return img * (1.0 + n - 0.25 * pores)[..., None]


def _linen(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    period = max(3.0, h / 260)
    rows = rng.standard_normal(h).astype(np.float32)
    cols = rng.standard_normal(w).astype(np.float32)
    # Slubs: thread thickness varies along a thread, so smooth the per-thread noise a little.
    rows = np.convolve(rows, np.ones(3, np.float32) / 3, mode="same")
    cols = np.convolve(cols, np.ones(3, np.float32) / 3, mode="same")
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    weave = np.sin(2 * np.pi * yy / period) * np.sin(2 * np.pi * xx / period)
    wrinkles = value_noise(h, w, 4, rng)
    lum = 1.0 + 0.018 * rows[:, None] + 0.018 * cols[None, :] + 0.025 * weave + 0.02 * wrinkles
    return img * lum[..., None]


def _marble(img: np.ndarray, palette: np.ndarray, rng: np.random.Generator, horizon: float | None) -> np.ndarray:
    h, w = img.shape[:2]
    y0 = 0 if horizon is None else max(0, int(horizon * h) - 2)
    if horizon is None:
        u = (np.arange(w, dtype=np.float32)[None, :] - w / 2) / h * 6
        v = np.arange(h, dtype=np.float32)[:, None] / h * 6
    else:
        u, v = _floor_coords(h, w, y0, horizon)
        u, v = u * 1.2, v * 0.5
    # Long, gently wandering veins: a slow sinusoid warped by low-frequency turbulence.
    turb = _sine_turbulence(u, v, rng, base=0.3)
    ang = rng.uniform(0.2, np.pi - 0.2)
    field = np.sin(np.cos(ang) * u * 1.8 + np.sin(ang) * v * 1.8 + 1.4 * turb + rng.uniform(0, 6.3))
    veins = (1.0 - np.abs(field)) ** 18  # the sharp valleys of |sin| become thin veins
    turb2 = _sine_turbulence(u, v, rng, base=0.5)
    faint = (1.0 - np.abs(np.sin(1.7 * u - 1.1 * v + 1.6 * turb2))) ** 40
    cloud = (1.0 - np.abs(field)) ** 3  # the soft haze marble has around its veins
    amount = np.clip(0.6 * veins + 0.3 * faint + 0.12 * cloud, 0, 1)[..., None]
    vein_colour = 0.55 * np.array([0.42, 0.42, 0.44], np.float32) + 0.45 * palette[2] * 0.7
    out = img.copy()
    out[y0:] = img[y0:] * (1 - amount) + vein_colour * amount
    return out


def _wood(img: np.ndarray, rng: np.random.Generator, horizon: float | None) -> np.ndarray:
    h, w = img.shape[:2]
    y0 = 0 if horizon is None else max(0, int(horizon * h) - 2)
    if horizon is None:
        u = (np.arange(w, dtype=np.float32)[None, :] - w / 2) / h * 4
        v = np.arange(h, dtype=np.float32)[:, None] / h * 4
    else:
        u, v = _floor_coords(h, w, y0, horizon)
    # Grain runs left-right along the table: fast variation in depth, slow across.
    turb = _sine_turbulence(u * 0.35, v * 0.6, rng)
    grain = np.sin(2 * np.pi * (v * 2.4 + 0.35 * turb))
    fine = np.sin(2 * np.pi * (v * 11.0 + 0.9 * turb + 0.15 * np.sin(u * 2.0)))
    lum = 1.0 + 0.09 * grain + 0.04 * fine
    out = img.copy()
    out[y0:] = img[y0:] * lum[..., None]
    return out


def _apply_family(family: str, img: np.ndarray, palette: np.ndarray, rng: np.random.Generator, horizon: float | None) -> np.ndarray:
    if family == "paper":
        return _paper(img, rng)
    if family == "concrete":
        return _concrete(img, rng)
    if family == "linen":
        return _linen(img, rng)
    if family == "marble":
        return _marble(img, palette, rng, horizon)
    if family == "wood":
        return _wood(img, rng, horizon)
    raise ValueError(f"unknown texture family {family!r}")


def apply_texture(
    img: np.ndarray,
    style: BackdropStyle,
    palette: np.ndarray,
    rng: np.random.Generator,
    horizon: float | None,
) -> np.ndarray:
    """Return ``img`` (H, W, 3 float in [0, 1]) with the style's surface detail drawn on it.

    ``horizon`` is the wall/floor boundary as a fraction of the height (None for sweeps); the
    floor texture is drawn in perspective below it and blended over a few pixels so the
    horizon stays as soft as the image already has it.
    """
    h = img.shape[0]
    wall = _apply_family(style.wall_texture, img, palette, rng, None)
    if style.layout == "sweep" or horizon is None:
        return np.clip(wall, 0, 1)
    floor = _apply_family(style.floor_texture, img, palette, rng, horizon)
    y = (np.arange(h, dtype=np.float32) + 0.5) / h
    blend = np.clip((y - horizon) / 0.01 + 0.5, 0, 1)[:, None, None]
    return np.clip(wall * (1 - blend) + floor * blend, 0, 1)
