"""Moving between output resolution and the network's working resolution.

Down: the product layer is area-averaged over product pixels only, so the known pixels at
working resolution carry no trace of whatever was behind the product in the caller's image.

Up: the network's low-resolution scene is a smooth field (backdrop, light, soft shadows).
Nearest or bilinear upsampling by 32× would show the pixel grid as blocks or diamond-shaped
kinks, so the field is first filled in behind the product, upsampled ×4, low-passed and
only then upsampled to the output size; a horizon is kept a line by upsampling wall and
floor separately (``upsample_with_horizon``). Film grain
is added before 8-bit quantisation so that large flat gradients dither instead of banding.
"""

from __future__ import annotations

import cv2
import numpy as np

FILM_GRAIN_SIGMA = 1.2 / 255  # about one 8-bit level: enough to dither, too little to see


def working_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """Working (h, w): short side ``resolution``, long side rounded to a multiple of 4 (the
    UNet downsamples twice)."""
    if height <= width:
        return resolution, max(resolution, int(round(resolution * width / height / 4)) * 4)
    return max(resolution, int(round(resolution * height / width / 4)) * 4), resolution


def product_to_working(product: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Known mask (h, w) bool and known colours (h, w, 3) at working ``size`` = (h, w).

    ``product`` is (H, W, 3) float in [0, 1], ``mask`` (H, W) float coverage or bool. A working
    pixel is known when the product covers more than half of it; its colour is the mean of the
    product pixels inside it.
    """
    h, w = size
    cov = mask.astype(np.float32)
    cov_lr = cv2.resize(cov, (w, h), interpolation=cv2.INTER_AREA)
    prem = cv2.resize(product.astype(np.float32) * cov[..., None], (w, h), interpolation=cv2.INTER_AREA)
    colour = prem / np.maximum(cov_lr, 1e-6)[..., None]
    known = cov_lr > 0.5
    return known, np.clip(np.where(known[..., None], colour, 0.0), 0, 1).astype(np.float32)


def fill_behind(img: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Replace the known (product) pixels of a low-res scene by the surrounding backdrop.

    Normalised convolution at growing scales: each hole pixel takes the Gaussian-weighted
    mean of backdrop pixels at the smallest scale that reaches any. The product itself is
    composited back at output resolution, so this only keeps product colour from bleeding
    into the upsampled backdrop around its edges.
    """
    if not known.any():
        return img
    weight = (~known).astype(np.float32)
    out = img.copy()
    todo = known.copy()
    for sigma in (0.7, 1.4, 2.8, 5.6, 11.2, 22.4):
        num = cv2.GaussianBlur(img * weight[..., None], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        den = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        take = todo & (den > 0.05)
        out[take] = num[take] / den[take][:, None]
        todo &= ~take
        if not todo.any():
            break
    if todo.any():  # product covers nearly everything: fall back to the backdrop mean
        out[todo] = img[~known].mean(axis=0) if (~known).any() else 0.5
    return out


def upsample_smooth(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Upsample a smooth low-res field without blocks, kinks or ringing.

    Bilinear ×4, a Gaussian that removes the ×4 stage's kinks, then bilinear to the output.
    Bilinear throughout because it reproduces gradients exactly; OpenCV's cubic kernel
    (a = -0.75) does not and leaves a periodic ripple in the slope of a ramp at ×8.
    """
    h, w = img.shape[:2]
    mid = cv2.resize(img, (4 * w, 4 * h), interpolation=cv2.INTER_LINEAR)
    mid = cv2.GaussianBlur(mid, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT)
    if (height, width) == mid.shape[:2]:
        return mid
    shrink = height < mid.shape[0] or width < mid.shape[1]
    return cv2.resize(mid, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def estimate_horizon(img: np.ndarray, known: np.ndarray) -> float | None:
    """Wall/floor boundary of a low-res scene as a fraction of the height, or None.

    The strongest jump between consecutive row means of the backdrop (product excluded) in
    the middle of the frame, refined to sub-pixel by a parabola through its neighbours.
    """
    h = img.shape[0]
    weight = (~known).astype(np.float32)
    rows = (img * weight[..., None]).sum(axis=1) / np.maximum(weight.sum(axis=1), 1)[:, None]
    jump = np.linalg.norm(np.diff(rows, axis=0), axis=1)
    lo, hi = int(0.2 * h), int(0.85 * h)
    i = lo + int(np.argmax(jump[lo:hi]))
    if jump[i] < 0.03:
        return None
    a, b, c = jump[max(i - 1, 0)], jump[i], jump[min(i + 1, len(jump) - 1)]
    denom = a - 2 * b + c
    off = 0.5 * (a - c) / denom if abs(denom) > 1e-8 else 0.0
    return float((i + 1 + np.clip(off, -0.5, 0.5)) / h)


def add_grain_and_quantize(img: np.ndarray, rng: np.random.Generator, sigma: float = FILM_GRAIN_SIGMA) -> np.ndarray:
    """Monochrome film grain then 8-bit quantisation; returns uint8 (H, W, 3)."""
    grain = rng.standard_normal(img.shape[:2], dtype=np.float32) * sigma
    return np.clip((img + grain[..., None]) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def upsample_with_horizon(img: np.ndarray, horizon: float, height: int, width: int, softness: float) -> np.ndarray:
    """Upsample a low-res wall/floor scene keeping its horizon a line, not a 32× blur.

    The rows that straddle the horizon at working resolution are mixtures of wall and floor.
    Wall and floor are each extended over them from their own side, upsampled separately, and
    joined at output resolution with a ramp ``softness``·height wide (smoothstep).
    """
    h = img.shape[0]
    k = int(np.clip(round(horizon * h), 2, h - 2))  # boundary between rows k-1 and k
    wall = img.copy()
    wall[k - 1 :] = img[k - 2]
    floor = img.copy()
    floor[: k + 1] = img[min(k + 1, h - 1)]
    wall_up = upsample_smooth(wall, height, width)
    floor_up = upsample_smooth(floor, height, width)
    y = (np.arange(height, dtype=np.float32) + 0.5) / height
    t = np.clip((y - horizon) / max(softness, 1e-4) + 0.5, 0, 1)
    t = (t * t * (3 - 2 * t))[:, None, None]
    return wall_up * (1 - t) + floor_up * t
