"""Segmentation benchmark for the ``graphcut`` segmenter, on synthetic and on real photos.

Two kinds of evaluation set:

* ``--set dev`` / ``heldout`` / ``all`` (synthetic, built here, offline): real photographed
  textures from scikit-image's bundled data (coffee, chelsea, astronaut, rocket, brick,
  gravel, ...) are cut with known synthetic silhouettes (bottle, box, jar, mug with a handle
  hole, tube, ellipse), shaded, and composited with an anti-aliased alpha onto synthetic
  studio backgrounds (white, grey sweep, pastel, diagonal gradient) with a soft contact
  shadow, sensor noise and a JPEG round trip. The true matte is therefore known exactly.
  Cases include white-on-white and a dark product.
* ``--set real --real-dir DIR``: the real-object set (48 photos of 8 real objects on 6 studio
  setups, each with its true alpha; see that folder's README). Measure on it; never tune on it.

For each photo it reports IoU (``alpha >= 0.5`` against the true ``alpha >= 0.5``), boundary
F-measure (boundary pixels matched within 0.3 % of the diagonal), mean absolute alpha error,
the lock's coverage of the truly solid product and the locked pixels that are not truly solid
(with the least true alpha among them), milliseconds per megapixel, and the segmenter's own
confidence. Peak memory is measured in a fresh subprocess per size (the kernel's VmHWM, reset
after loading, minus the resident size before segmenting).

The lock compositor is not scored here: :func:`generation.lock.composite_locked` raises
rather than return an image with a changed locked pixel, so "0 changed pixels" cannot come out
otherwise; ``tests/generation/test_lock.py`` tests it.

Run::

    .venv/bin/python bench/segmentation.py --megapixels 12 --memory-megapixels 12 24
    .venv/bin/python bench/segmentation.py --set heldout --megapixels 12 --memory-megapixels
    .venv/bin/python bench/segmentation.py --set real --real-dir shared/data/real-objects --memory-megapixels
    .venv/bin/python bench/segmentation.py --set real all --real-dir ../shared/data/real-objects --megapixels 2

``--set studio`` renders synthetic studio setups (a wall meeting a table, a light's hot spot,
coloured paper, black velvet, a glossy floor with a reflection): the confident flag's rules
were set on the synthetic sets, where the cause of every failure is known.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from generation.lock import contact_shadow  # noqa: E402
from generation.segmentation import get_segmenter  # noqa: E402


@dataclass(frozen=True)
class Case:
    """One evaluation photo: a silhouette, a texture, a backdrop and a treatment."""

    name: str
    shape: str
    texture: str
    background: str
    tone: str = "normal"  # "normal", "white", "dark"
    shadow: float = 0.45
    reflection: float = 0.0  # opacity of a mirrored reflection under the product (glossy floor)
    edge_blur: float = 0.0  # a soft (defocused) outline: Gaussian sigma as a share of the short side


CASES: tuple[Case, ...] = (
    Case("bottle-coffee-white", "bottle", "coffee", "white"),
    Case("box-chelsea-grey", "box", "chelsea", "grey-sweep"),
    Case("jar-astronaut-pastel", "jar", "astronaut", "pastel"),
    Case("mug-rocket-gradient", "mug", "rocket", "gradient"),
    Case("tube-brick-white", "tube", "brick", "white"),
    Case("ellipse-gravel-grey", "ellipse", "gravel", "grey-sweep"),
    Case("box-white-on-white", "box", "page", "white", tone="white"),
    Case("bottle-white-on-white", "bottle", "camera", "white", tone="white"),
    Case("jar-dark-grey", "jar", "grass", "grey-sweep", tone="dark"),
    Case("mug-dark-white", "mug", "coins", "white", tone="dark"),
    Case("bottle-coffee-gradient-no-shadow", "bottle", "coffee", "gradient", shadow=0.0),
    Case("box-chelsea-white-strong-shadow", "box", "chelsea", "white", shadow=0.6),
)


#: Cases never looked at while the segmenter was developed: other textures, other backdrops
#: (mint, warm grey, a dark studio backdrop, a radial vignette). Run with ``--set heldout``.
HELDOUT_CASES: tuple[Case, ...] = (
    Case("bottle-cat-mint", "bottle", "cat", "mint"),
    Case("box-colorwheel-warm-grey", "box", "colorwheel", "warm-grey"),
    Case("jar-retina-dark-backdrop", "jar", "retina", "dark", shadow=0.3),
    Case("mug-immunohistochemistry-white", "mug", "immunohistochemistry", "white", shadow=0.5),
    Case("tube-hubble-vignette", "tube", "hubble_deep_field", "vignette"),
    Case("ellipse-clock-pastel", "ellipse", "clock", "pastel"),
    Case("box-text-white-on-white", "box", "text", "white", tone="white"),
    Case("bottle-moon-dark-warm-grey", "bottle", "moon", "warm-grey", tone="dark"),
)


#: Synthetic studio setups modelled on what studio backdrops do (not on any photo of the real
#: set): a wall meeting a table top (a horizon behind the product), a light's hot spot on warm
#: paper, saturated coloured paper, a dark velvet backdrop, a glossy floor with a reflection,
#: and three products whose outline is soft (out of focus), where the true edge is mid-ramp.
#: The confident flag's rules are checked here, on failures whose cause is known. ``--set studio``.
STUDIO_CASES: tuple[Case, ...] = (
    Case("bottle-coffee-wall-table", "bottle", "coffee", "wall-table"),
    Case("box-chelsea-wall-table", "box", "chelsea", "wall-table"),
    Case("jar-grass-wall-table-dark", "jar", "grass", "wall-table", tone="dark"),
    Case("mug-rocket-hotspot", "mug", "rocket", "hotspot"),
    Case("jar-astronaut-hotspot", "jar", "astronaut", "hotspot"),
    Case("tube-brick-red-paper", "tube", "brick", "red-paper"),
    Case("ellipse-gravel-blue-paper", "ellipse", "gravel", "blue-paper"),
    Case("box-page-black-velvet", "box", "page", "black-velvet", shadow=0.0),
    Case("bottle-coffee-glossy", "bottle", "coffee", "white", shadow=0.2, reflection=0.3),
    Case("mug-coins-glossy", "mug", "coins", "white", shadow=0.2, reflection=0.3),
    Case("box-page-black-velvet-soft", "box", "page", "black-velvet", shadow=0.0, edge_blur=0.004),
    Case("tube-brick-red-paper-soft", "tube", "brick", "red-paper", edge_blur=0.004),
    Case("bottle-coffee-white-soft", "bottle", "coffee", "white", edge_blur=0.004),
)


def _texture(name: str, w: int, h: int) -> np.ndarray:
    import skimage.data

    arr = getattr(skimage.data, name)()
    if arr.ndim == 2:
        arr = np.dstack([arr] * 3)
    arr = arr[:, :, :3].astype(np.uint8)
    return cv2.resize(arr, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)


def _silhouette(shape: str, w: int, h: int) -> np.ndarray:
    """Anti-aliased alpha (float32 in [0, 1]) of ``shape`` on a ``w x h`` canvas.

    Polygons are drawn with 8 bits of sub-pixel precision and cv2's anti-aliasing, so the true
    matte has real fractional edge pixels.
    """
    canvas = np.zeros((h, w), np.uint8)
    cx, base = w / 2, h * 0.86
    S = 256  # 8-bit fixed point

    def poly(points: list[tuple[float, float]]) -> None:
        pts = np.array([[int(x * S), int(y * S)] for x, y in points], np.int32)
        cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=8)

    def ellipse(centre: tuple[float, float], axes: tuple[float, float], color: int) -> None:
        cv2.ellipse(canvas, (int(centre[0] * S), int(centre[1] * S)),
                    (int(axes[0] * S), int(axes[1] * S)), 0, 0, 360, color, -1,
                    lineType=cv2.LINE_AA, shift=8)

    if shape == "bottle":
        bw, nw = w * 0.14, w * 0.05
        top, shoulder = h * 0.12, h * 0.40
        pts = [(cx - nw, top), (cx + nw, top), (cx + nw, shoulder - h * 0.08),
               (cx + bw, shoulder), (cx + bw, base), (cx - bw, base), (cx - bw, shoulder),
               (cx - nw, shoulder - h * 0.08)]
        poly(pts)
    elif shape == "box":
        poly([(cx - w * 0.22, h * 0.25), (cx + w * 0.2, h * 0.22), (cx + w * 0.23, base),
              (cx - w * 0.21, base)])
    elif shape == "jar":
        poly([(cx - w * 0.17, h * 0.35), (cx + w * 0.17, h * 0.35), (cx + w * 0.17, base),
              (cx - w * 0.17, base)])
        ellipse((cx, h * 0.35), (w * 0.17, h * 0.05), 255)
        ellipse((cx, base), (w * 0.17, h * 0.03), 255)
    elif shape == "mug":
        poly([(cx - w * 0.16, h * 0.30), (cx + w * 0.10, h * 0.30), (cx + w * 0.10, base),
              (cx - w * 0.16, base)])
        # Handle: a ring whose hole shows the background.
        ring = np.zeros_like(canvas)
        hc = (int((cx + w * 0.10) * S), int(h * 0.55 * S))
        cv2.ellipse(ring, hc, (int(w * 0.11 * S), int(h * 0.15 * S)), 0, 0, 360, 255, -1,
                    lineType=cv2.LINE_AA, shift=8)
        cv2.ellipse(ring, hc, (int(w * 0.06 * S), int(h * 0.09 * S)), 0, 0, 360, 0, -1,
                    lineType=cv2.LINE_AA, shift=8)
        canvas = np.maximum(canvas, ring)
    elif shape == "tube":
        poly([(cx - w * 0.08, h * 0.14), (cx + w * 0.08, h * 0.14), (cx + w * 0.06, base),
              (cx - w * 0.06, base)])
    elif shape == "ellipse":
        ellipse((cx, h * 0.55), (w * 0.25, h * 0.3), 255)
    else:
        raise ValueError(shape)
    return canvas.astype(np.float32) / 255.0


def _background(kind: str, w: int, h: int) -> np.ndarray:
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    if kind == "white":
        return np.full((h, w, 3), 250.0, np.float32) + 0 * x
    if kind == "grey-sweep":
        return (np.array([190, 190, 194], np.float32) + 45 * y) + 0 * x
    if kind == "pastel":
        return np.array([232, 214, 236], np.float32) + 6 * y + 0 * x
    if kind == "mint":
        return np.array([212, 236, 222], np.float32) + 4 * y + 0 * x
    if kind == "warm-grey":
        return np.array([200, 194, 186], np.float32) + 30 * y + 0 * x
    if kind == "dark":
        return np.array([62, 62, 68], np.float32) + 20 * y + 0 * x
    if kind == "vignette":
        r2 = (x - 0.5) ** 2 + (y - 0.45) ** 2
        return np.array([246, 244, 240], np.float32) * (1.0 - 0.35 * r2)
    if kind == "wall-table":
        # A grey wall meets a lighter table top at 55 % of the height (a 2 px soft horizon);
        # the table falls off in brightness away from the light.
        wall = np.array([196, 192, 186], np.float32) + 12 * y
        table = np.array([236, 232, 224], np.float32) - 28 * (y - 0.55)
        t = np.clip((y - 0.55) * h / 2.0 + 0.5, 0.0, 1.0)
        return wall * (1 - t) + table * t + 0 * x
    if kind == "hotspot":
        spot = np.exp(-((x - 0.72) ** 2 + (y - 0.16) ** 2) / 0.012)
        return np.minimum(np.array([226, 210, 186], np.float32) * (0.92 + 0.06 * y) + 40 * spot, 255)
    if kind == "red-paper":
        return np.array([196, 38, 44], np.float32) + 14 * y + 0 * x
    if kind == "blue-paper":
        return np.array([40, 70, 170], np.float32) + 18 * y + 0 * x
    if kind == "black-velvet":
        return np.array([16, 15, 18], np.float32) + 4 * y + 0 * x
    if kind == "gradient":
        a, b = np.array([235, 225, 205], np.float32), np.array([200, 215, 235], np.float32)
        t = 0.5 * (x + y)
        return a * (1 - t) + b * t
    raise ValueError(kind)


def make_case(case: Case, size: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render ``case`` at ``size = (w, h)``; return ``(photo uint8, true alpha float32)``."""
    w, h = size
    rng = np.random.default_rng(seed)
    alpha = _silhouette(case.shape, w, h)
    if case.edge_blur > 0:
        alpha = np.clip(cv2.GaussianBlur(alpha, (0, 0), case.edge_blur * min(w, h)), 0.0, 1.0)
    ys, xs = np.nonzero(alpha > 0)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    product = np.zeros((h, w, 3), np.float32)
    tex = _texture(case.texture, x1 - x0, y1 - y0)
    # Cylinder-like shading across the product: real products are lit, not flat.
    u = np.linspace(-1.0, 1.0, x1 - x0, dtype=np.float32)
    shade = (0.78 + 0.22 * np.sqrt(np.clip(1 - u * u, 0, 1)))[None, :, None]
    if case.tone == "white":
        tex = 244.0 - 0.06 * (255.0 - tex)  # faint print on white stock
        shade = 0.9 + 0.1 * (shade - 0.78) / 0.22
    elif case.tone == "dark":
        tex = 0.22 * tex
    product[y0:y1, x0:x1] = tex * shade
    bg = _background(case.background, w, h)
    if case.shadow > 0:
        mask = alpha > 0.5
        shadow = contact_shadow(mask=mask, opacity=case.shadow, height_ratio=0.12, softness=0.4)
        bg = bg * shadow[:, :, None]
    if case.reflection > 0:
        # A glossy floor mirrors the product about its base, fading with distance from it.
        base = int(round(y1))
        depth = min(h - base, y1 - y0)
        if depth > 0:
            mirrored_a = alpha[base - depth:base][::-1]
            mirrored_p = product[base - depth:base][::-1]
            fade = case.reflection * np.linspace(1.0, 0.0, depth, dtype=np.float32)[:, None, None]
            a = mirrored_a[:, :, None] * fade
            bg[base:base + depth] = a * mirrored_p + (1 - a) * bg[base:base + depth]
    photo = alpha[:, :, None] * product + (1 - alpha[:, :, None]) * bg
    photo += rng.normal(0.0, 2.0, photo.shape).astype(np.float32)
    photo = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=92)
    photo = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return photo, alpha


def boundary_f(pred: np.ndarray, true: np.ndarray, tol: int) -> float:
    """Boundary F-measure: boundary pixels of each mask matched within ``tol`` pixels."""
    k = np.ones((3, 3), np.uint8)

    def edge(m: np.ndarray) -> np.ndarray:
        m8 = m.astype(np.uint8)
        return (m8 - cv2.erode(m8, k)).astype(bool)

    bp, bt = edge(pred), edge(true)
    if not bp.any() or not bt.any():
        return 0.0
    kt = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    near_t = cv2.dilate(bt.astype(np.uint8), kt).astype(bool)
    near_p = cv2.dilate(bp.astype(np.uint8), kt).astype(bool)
    precision = (bp & near_t).sum() / bp.sum()
    recall = (bt & near_p).sum() / bt.sum()
    return float(2 * precision * recall / max(precision + recall, 1e-9))


def score(photo: np.ndarray, alpha_true: np.ndarray, name: str) -> dict:
    """Segment ``photo`` with ``graphcut`` and score it against ``alpha_true`` (float in [0, 1])."""
    segmenter = get_segmenter("graphcut")
    h, w = alpha_true.shape
    t0 = time.perf_counter()
    result = segmenter.segment(photo)
    elapsed = time.perf_counter() - t0
    pred, true = result.alpha >= 0.5, alpha_true >= 0.5
    iou = float((pred & true).sum() / max((pred | true).sum(), 1))
    tol = max(2, int(round(0.003 * np.hypot(w, h))))
    mp = w * h / 1e6
    # Where the mask is wrong: within 4 px of the true outline (where the edge sits) or
    # farther (whole regions: a shadow, a gap, a reflection), each as a share of the union.
    outline = cv2.morphologyEx(true.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    near = cv2.distanceTransform((outline == 0).astype(np.uint8), cv2.DIST_L2, 3) <= 4.0
    wrong, union = pred ^ true, max(int((pred | true).sum()), 1)
    return {
        "case": name,
        "iou": round(iou, 4),
        "boundary_f": round(boundary_f(pred, true, tol), 4),
        "alpha_mae": round(float(np.abs(result.alpha - alpha_true).mean()), 5),
        "locked_not_solid": int((result.mask & (alpha_true < 0.98)).sum()),
        # Locked pixels the true matte calls background: the lock's worst mistake.
        "locked_background": int((result.mask & ~true).sum()),
        # The least product any locked pixel truly contains (1.0 = every locked pixel solid).
        "locked_min_true_alpha": round(float(alpha_true[result.mask].min()), 3)
        if result.mask.any() else None,
        "locked": int(result.mask.sum()),
        # Share of the truly solid product (true alpha 1) that the lock certifies.
        "lock_coverage": round(float((result.mask & (alpha_true >= 1.0)).sum())
                               / max(int((alpha_true >= 1.0).sum()), 1), 4),
        "error_near_outline": round(float((wrong & near).sum()) / union, 4),
        "error_far_from_outline": round(float((wrong & ~near).sum()) / union, 4),
        "ms_per_mp": round(1000 * elapsed / mp, 1),
        "edge_confidence": round(result.edge_confidence, 3),
        "confident": result.confident,
        "notes": list(result.notes),
    }


def evaluate(case: Case, size: tuple[int, int]) -> dict:
    """Render ``case`` at ``size`` and score the segmenter on it."""
    photo, alpha_true = make_case(case, size)
    return score(photo, alpha_true, case.name)


def evaluate_real(folder: Path, stem: str) -> dict:
    """Score the segmenter on one photo of the real-object set (``<stem>.jpg`` + ``.alpha.png``)."""
    photo = np.asarray(Image.open(folder / f"{stem}.jpg").convert("RGB"))
    alpha_true = np.asarray(Image.open(folder / f"{stem}.alpha.png").convert("L"), np.float32) / 255.0
    return score(photo, alpha_true, stem)


def measure_memory(megapixels: float) -> dict:
    """Peak resident memory of segmenting one photo, in a fresh interpreter.

    The photo is rendered here and handed over as a ``.npy`` file, so the child's peak is
    loading + segmenting only; ``segment_peak_over_baseline_mb`` subtracts the child's
    resident size after imports and loading, i.e. what segmentation itself adds.
    """
    import tempfile

    photo, _ = make_case(CASES[0], _size(megapixels))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "photo.npy")
        np.save(path, photo)
        del photo
        code = (
            "import resource, sys, time; sys.path.insert(0, '.');"
            "import numpy as np;"
            "from generation.segmentation import get_segmenter;"
            "seg = get_segmenter('graphcut'); seg.segment(np.full((64, 64, 3), 200, np.uint8));"
            f"photo = np.load({path!r});"
            "hwm = lambda: int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]);"
            # ru_maxrss survives fork+exec (it would report the parent's peak); reset the
            # kernel's high-water mark instead and read VmHWM.
            "open('/proc/self/clear_refs', 'w').write('5');"
            "rss = hwm();"
            "t = time.perf_counter(); r = seg.segment(photo); dt = time.perf_counter() - t;"
            "peak = hwm();"
            "print(rss, peak, dt)"
        )
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                             text=True, check=True).stdout.split()
    rss_before, peak, dt = int(out[0]), int(out[1]), float(out[2])
    return {
        "megapixels": megapixels,
        "peak_rss_mb": round(peak / 1024, 1),
        "rss_before_mb": round(rss_before / 1024, 1),
        "segment_peak_over_baseline_mb": round((peak - rss_before) / 1024, 1),
        "ms_per_mp": round(1000 * dt / megapixels, 1),
    }


def _size(megapixels: float) -> tuple[int, int]:
    """A 3:2 landscape frame of about ``megapixels``."""
    h = int(round((megapixels * 1e6 / 1.5) ** 0.5))
    return int(round(h * 1.5)), h


def summarize(rows: list[dict], set_name: str, size: tuple[int, int] | None) -> dict:
    """Mean and worst IoU, false-lock share, the confident flag's calibration, speed."""
    confident = [r for r in rows if r["confident"]]
    below = [r for r in rows if r["iou"] < 0.9]
    summary = {
        "set": set_name,
        "photos": len(rows),
        "size": list(size) if size else "as stored",
        "mean_iou": round(statistics.mean(r["iou"] for r in rows), 4),
        "median_iou": round(statistics.median(r["iou"] for r in rows), 4),
        "lowest_iou": min((r["iou"], r["case"]) for r in rows),
        "median_boundary_f": round(statistics.median(r["boundary_f"] for r in rows), 4),
        "median_alpha_mae": round(statistics.median(r["alpha_mae"] for r in rows), 5),
        # Mean share of the union wrong near the true outline / far from it (see score()).
        "mean_error_near_outline": round(statistics.mean(r["error_near_outline"] for r in rows), 4),
        "mean_error_far_from_outline": round(statistics.mean(r["error_far_from_outline"] for r in rows), 4),
        "median_ms_per_mp": round(statistics.median(r["ms_per_mp"] for r in rows), 1),
        "ms_per_mp_range": [min(r["ms_per_mp"] for r in rows), max(r["ms_per_mp"] for r in rows)],
        "median_lock_coverage": round(statistics.median(r["lock_coverage"] for r in rows), 4),
        "locked_total": sum(r["locked"] for r in rows),
        "locked_not_solid_total": sum(r["locked_not_solid"] for r in rows),
        "locked_background_total": sum(r["locked_background"] for r in rows),
        "iou_at_least_0.97": f"{sum(r['iou'] >= 0.97 for r in rows)}/{len(rows)}",
        # Photos where more than 1 % of the certified (locked) pixels are truly background.
        "locked_background_over_1pct": f"{sum(r['locked_background'] > 0.01 * r['locked'] for r in rows)}/{len(rows)}",
        "confident": f"{len(confident)}/{len(rows)}",
        # Calibration targets: of masks under 0.9 IoU at most 1 in 20 confident; of confident
        # masks at least 19 in 20 at 0.95 IoU or better.
        "confident_among_iou_below_0.9": f"{sum(r['confident'] for r in below)}/{len(below)}",
        "iou_at_least_0.95_among_confident": f"{sum(r['iou'] >= 0.95 for r in confident)}/{len(confident)}",
        # Locked pixels outside the true product as a share of the locked region, per photo.
        "mean_false_lock_share": round(statistics.mean(r["locked_background"] / max(r["locked"], 1)
                                                        for r in rows), 4),
        "mean_false_lock_share_confident": round(statistics.mean(
            r["locked_background"] / max(r["locked"], 1) for r in confident), 4) if confident else None,
        "mean_iou_confident": round(statistics.mean(r["iou"] for r in confident), 4) if confident else None,
        "mean_iou_not_confident": round(statistics.mean(r["iou"] for r in rows if not r["confident"]), 4)
        if len(confident) < len(rows) else None,
        # Which notes withheld confidence, and how often (a mask can have several).
        "notes": {note: sum(note in r["notes"] for r in rows)
                  for note in sorted({n for r in rows for n in r["notes"]})},
    }
    if set_name == "real":
        # The real set is 8 objects x 6 setups: how each setup fares across the objects.
        setups = sorted({r["case"].split("--", 1)[1] for r in rows})
        summary["mean_iou_by_setup"] = {
            setup: round(statistics.mean(r["iou"] for r in rows if r["case"].endswith("--" + setup)), 4)
            for setup in setups
        }
        objects = sorted({r["case"].split("--", 1)[0] for r in rows})
        summary["mean_iou_by_object"] = {
            obj: round(statistics.mean(r["iou"] for r in rows if r["case"].startswith(obj + "--")), 4)
            for obj in objects
        }
    return summary


def print_rows(rows: list[dict]) -> None:
    """One Markdown table row per photo."""
    header = ("| case | IoU | boundary F | alpha MAE | locked px | lock coverage | locked not solid "
              "(min true alpha) | locked background | wrong near / far from outline | ms/MP | "
              "edge conf | confident (notes) |")
    print(header)
    print("|" + "---|" * 12)
    for r in rows:
        notes = f" ({', '.join(r['notes'])})" if r["notes"] else ""
        print(f"| {r['case']} | {r['iou']:.4f} | {r['boundary_f']:.4f} | {r['alpha_mae']:.5f} | "
              f"{r['locked']} | {r['lock_coverage']:.4f} | {r['locked_not_solid']} "
              f"({r['locked_min_true_alpha']}) | {r['locked_background']} | "
              f"{r['error_near_outline']:.4f} / {r['error_far_from_outline']:.4f} | {r['ms_per_mp']} | "
              f"{r['edge_confidence']} | {r['confident']}{notes} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megapixels", type=float, default=12.0,
                        help="size of the synthetic photos (the real set keeps its own sizes)")
    parser.add_argument("--memory-megapixels", type=float, nargs="*", default=[24.0])
    parser.add_argument("--cases", nargs="*", default=None)
    parser.add_argument("--set", nargs="+", choices=["dev", "heldout", "studio", "all", "real"],
                        default=["dev"], dest="sets",
                        help="one or more of: dev (the synthetic cases the segmenter was developed "
                             "on), heldout (unseen synthetic ones), studio (synthetic studio setups: "
                             "horizon, hot spot, coloured paper, velvet, glossy floor), all (the "
                             "three), real (the real-object set in --real-dir); each gets a summary")
    parser.add_argument("--real-dir", type=Path, default=None,
                        help="folder of the real-object set (index.json, <stem>.jpg, <stem>.alpha.png)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if "real" in args.sets and args.real_dir is None:
        parser.error("--set real needs --real-dir")

    # The first call pays one-off set-up (OpenCV's thread pool, page faults): not the photo's.
    get_segmenter("graphcut").segment(np.full((64, 64, 3), 200, np.uint8))
    results = {}
    for set_name in args.sets:
        if set_name == "real":
            stems = json.loads((args.real_dir / "index.json").read_text())
            rows = [evaluate_real(args.real_dir, stem) for stem in stems
                    if args.cases is None or stem in args.cases]
            size = None
        else:
            size = _size(args.megapixels)
            cases = {"dev": CASES, "heldout": HELDOUT_CASES, "studio": STUDIO_CASES,
                     "all": CASES + HELDOUT_CASES + STUDIO_CASES}[set_name]
            rows = [evaluate(c, size) for c in cases if args.cases is None or c.name in args.cases]
        if not rows:
            continue
        results[set_name] = {"rows": rows, "summary": summarize(rows, set_name, size)}
    memory = [measure_memory(mp) for mp in args.memory_megapixels]
    machine = {
        "threads": cv2.getNumThreads(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name")), "unknown"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    for set_name, result in results.items():
        print(f"\n## set: {set_name}\n")
        print_rows(result["rows"])
        print(json.dumps(result["summary"], indent=2))
    print(json.dumps({"memory": memory, "machine": machine}, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"sets": results, "memory": memory, "machine": machine}, fh, indent=2)


if __name__ == "__main__":
    main()
