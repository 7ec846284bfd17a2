"""Small array/PIL helpers shared by the imaging core.

Everything in ``generation`` works on plain values: ``uint8`` RGB arrays of shape
``(H, W, 3)``, ``float32`` alpha arrays in ``[0, 1]`` of shape ``(H, W)`` and ``bool``
masks of shape ``(H, W)``. These helpers convert at the edges (PIL in, PIL out) and hash
arrays in one documented way.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "as_rgb_array",
    "array_sha256",
    "downscale_to_pixels",
    "bbox_of_mask",
]


def as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """Return ``image`` as a C-contiguous ``uint8`` array of shape ``(H, W, 3)``.

    PIL images are converted to RGB (an alpha channel is dropped, palette images are
    expanded); arrays must already be ``uint8`` with 3 channels, or 2-D greyscale.
    """
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"))
    else:
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise TypeError(f"expected a uint8 image array, got {arr.dtype}")
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB array, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def array_sha256(arr: np.ndarray) -> str:
    """Hex sha256 of an array's raw bytes, prefixed by its dtype and shape.

    Precisely: ``sha256(f"{dtype}:{d0}x{d1}x...:".encode("ascii") + C-order bytes)``.
    The header makes two arrays with the same bytes but different shapes hash apart
    (a 100x300 and a 300x100 image are different images).
    """
    arr = np.ascontiguousarray(arr)
    header = f"{arr.dtype.str}:{'x'.join(str(d) for d in arr.shape)}:".encode("ascii")
    digest = hashlib.sha256(header)
    digest.update(arr.tobytes())
    return digest.hexdigest()


def downscale_to_pixels(image: np.ndarray, max_pixels: int) -> tuple[np.ndarray, float]:
    """Shrink ``image`` (area resampling) so that it has at most ``max_pixels`` pixels.

    Returns ``(small, factor)`` where ``factor = small_side / full_side`` (``1.0`` when the
    image is already small enough; the array is then returned as is, not copied).
    """
    h, w = image.shape[:2]
    if h * w <= max_pixels:
        return image, 1.0
    factor = (max_pixels / float(h * w)) ** 0.5
    sw, sh = max(1, int(round(w * factor))), max(1, int(round(h * factor)))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    return small, sw / float(w)


def bbox_of_mask(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight bounding box ``(x0, y0, x1, y1)`` of a boolean mask, exclusive ends.

    Returns ``None`` for an empty mask.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
