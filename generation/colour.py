"""Colour arithmetic the checks and the brand tools share: sRGB ↔ CIELAB (D65), the
CIEDE2000 colour difference, and the dominant colours of an image.

Plain numpy; no colour-management library is needed for sRGB, whose transfer curve and
matrix are fixed by IEC 61966-2-1."""
from __future__ import annotations

import numpy as np

# sRGB (linear) → XYZ, D65 white (IEC 61966-2-1).
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    """'#rrggbb' → (r, g, b). Raises ValueError for anything else."""
    text = value.strip().lstrip("#")
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(f"{value!r} is not a colour written as #rrggbb")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def rgb_to_hex(rgb) -> str:
    r, g, b = (int(round(float(c))) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def srgb_to_lab(rgb) -> np.ndarray:
    """8-bit sRGB values of shape (..., 3) → CIELAB (D65) floats of the same shape."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE_D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e_2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 difference between CIELAB colours (broadcasting over leading axes);
    kL = kC = kH = 1. Follows Sharma, Wu & Dalal (2005), whose test pairs the tests use."""
    lab1, lab2 = np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dLp = L2 - L1
    dCp = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dHp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    L_bar = (L1 + L2) / 2
    cp_bar = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = np.where(
        c1p * c2p == 0,
        h_sum,
        np.where(np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)),
    )
    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_bar**7 / (cp_bar**7 + 25.0**7))
    s_l = 1 + 0.015 * (L_bar - 50) ** 2 / np.sqrt(20 + (L_bar - 50) ** 2)
    s_c = 1 + 0.045 * cp_bar
    s_h = 1 + 0.015 * cp_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt((dLp / s_l) ** 2 + (dCp / s_c) ** 2 + (dHp / s_h) ** 2 + r_t * (dCp / s_c) * (dHp / s_h))


def dominant_colours(
    rgb: np.ndarray, *, mask: np.ndarray | None = None, k: int = 5, samples: int = 20_000, seed: int = 0
) -> list[tuple[tuple[int, int, int], float]]:
    """The `k` main colours of an image's pixels (those where `mask` is true, if given), as
    [((r, g, b), share of the pixels), ...] with the largest share first.

    k-means in CIELAB on a fixed-seed sample of at most `samples` pixels, so that distances
    are perceptual and the answer is the same on every run. Fewer colours come back when the
    pixels hold fewer distinct ones; none when no pixel is selected."""
    pixels = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3) if mask is None else np.asarray(rgb, dtype=np.uint8)[np.asarray(mask, dtype=bool)]
    if len(pixels) == 0:
        return []
    rng = np.random.default_rng(seed)
    if len(pixels) > samples:
        pixels = pixels[rng.choice(len(pixels), samples, replace=False)]
    distinct = np.unique(pixels, axis=0)
    k = max(1, min(k, len(distinct)))
    lab = srgb_to_lab(pixels)
    # k-means++ seeding, then Lloyd iterations.
    centres = [lab[rng.integers(len(lab))]]
    for _ in range(1, k):
        d2 = np.min(((lab[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        if d2.sum() == 0:
            break
        centres.append(lab[rng.choice(len(lab), p=d2 / d2.sum())])
    centres = np.array(centres)
    for _ in range(30):
        labels = np.argmin(((lab[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        moved = np.array([lab[labels == i].mean(axis=0) if np.any(labels == i) else centres[i] for i in range(len(centres))])
        if np.allclose(moved, centres, atol=1e-3):
            break
        centres = moved
    labels = np.argmin(((lab[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    result = []
    for i in range(len(centres)):
        members = pixels[labels == i]
        if len(members):
            # The members' mean in sRGB: a colour that exists in the image's own terms.
            mean = members.astype(np.float64).mean(axis=0)
            result.append((tuple(int(round(c)) for c in mean), len(members) / len(pixels)))
    return sorted(result, key=lambda item: -item[1])
