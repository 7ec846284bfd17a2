"""Soft mattes and colour decontamination for boundary bands.

The graphcut segmenter knows, for every boundary pixel, a good estimate of the background
colour behind it (the smooth background model, or the nearby background including any shadow)
and of the product colour in front of it (nearby interior pixels). With both known, the
compositing equation ``I = a F + (1 - a) B`` has a least-squares solution per pixel in closed
form (:func:`known_background_alpha`); no general matting solver (such as closed-form matting,
which estimates ``F`` and ``B`` too) is run. ``bench/matting.py`` measures that choice against
``pymatting.estimate_alpha_cf``; ``docs/benchmarks.md`` has the figures. The known-background
solution is exact where ``F`` and ``B`` differ. Where they do not (white on white) the alpha is
ill-conditioned, and :func:`guided_filter` snaps the coarse mask to the image's own edges
instead. :func:`decontaminate` inverts the same equation for the colours, so the old
background does not rim the product.

All functions take and return ``float32`` arrays; colours are in ``0..255``.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "decontaminate",
    "guided_filter",
    "known_background_alpha",
    "normalized_blur",
    "snap_alpha",
]


def normalized_blur(values: np.ndarray, weights: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted local mean (normalized convolution) of ``values`` with a Gaussian of ``sigma``.

    Returns ``(mean, support)``: ``support`` is the blurred weight, near 0 where no weighted
    pixel is close; ``mean`` there is 0 and must not be trusted.
    """
    w = weights.astype(np.float32)
    support = cv2.GaussianBlur(w, (0, 0), sigma)
    weighted = values * (w[:, :, None] if values.ndim == 3 else w)
    total = cv2.GaussianBlur(weighted, (0, 0), sigma)
    denom = np.maximum(support, 1e-6)
    mean = total / (denom[:, :, None] if values.ndim == 3 else denom)
    return mean.astype(np.float32), support


def known_background_alpha(
    image: np.ndarray, foreground: np.ndarray, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel alpha from known ``F`` and ``B``: ``((I - B) . (F - B)) / |F - B|^2``.

    Returns ``(alpha, contrast)``; ``alpha`` is clipped to ``[0, 1]`` and ``contrast`` is
    ``|F - B|`` in colour levels, the conditioning of the estimate (noise in ``alpha`` is
    about ``noise / contrast``).
    """
    d = foreground - background
    d2 = np.einsum("ijc,ijc->ij", d, d)
    num = np.einsum("ijc,ijc->ij", image - background, d)
    alpha = np.clip(num / np.maximum(d2, 1e-3), 0.0, 1.0)
    return alpha.astype(np.float32), np.sqrt(d2).astype(np.float32)


def snap_alpha(alpha: np.ndarray, low: float, high: float) -> np.ndarray:
    """Stretch ``[low, high]`` to ``[0, 1]``: noise around 0 and 1 becomes exactly 0 and 1.

    Without this, sensor noise leaves solid product pixels at 0.97 and they would not be
    locked, and leaves background pixels at 0.02, which tints the new scene.
    """
    return np.clip((alpha - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a single-channel guide (box filters, O(1) per pixel).

    ``guide`` and ``src`` are ``float32 (H, W)`` in ``[0, 1]``; the output follows ``src``
    where the guide is flat and snaps to the guide's edges where it is not.
    """
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, ksize, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    mean_p = box(src)
    cov_ip = box(guide * src) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return (box(a) * guide + box(b)).astype(np.float32)


def decontaminate(
    image: np.ndarray,
    alpha: np.ndarray,
    background: np.ndarray,
    fallback: np.ndarray,
    *,
    min_alpha: float = 0.05,
    trust_alpha: float = 0.5,
) -> np.ndarray:
    """Product colours with the background removed: ``F = (I - (1 - a) B) / a``.

    Division by a small ``a`` amplifies noise, so the estimate is blended toward ``fallback``
    (the nearby interior colour) as ``a`` falls from ``trust_alpha`` to ``min_alpha``.
    Returns ``float32 (H, W, 3)`` clipped to ``0..255``.
    """
    a = alpha[:, :, None]
    direct = (image - (1.0 - a) * background) / np.maximum(a, min_alpha)
    t = np.clip((a - min_alpha) / (trust_alpha - min_alpha), 0.0, 1.0)
    return np.clip(direct * t + fallback * (1.0 - t), 0.0, 255.0).astype(np.float32)
