"""Closed-form matting (pymatting) against the graphcut segmenter's own matte, on one photo.

    .venv/bin/python bench/matting.py [--megapixels 0.79] [--band 7] [--runs 3]

The graphcut segmenter does not run a general matting solver: it knows the background behind
each boundary pixel and solves the compositing equation per pixel
(:func:`generation.matting.known_background_alpha`). This is the measurement behind that
choice. On the ``bottle-coffee-white`` case of ``bench/segmentation.py`` (synthetic, so the
true alpha is known) it times and scores:

* ``pymatting.estimate_alpha_cf`` (closed-form matting, Levin et al.) over the whole frame,
  given a trimap made from the *true* alpha with an unknown band of ``--band`` px either side
  of the outline (an advantage the segmenter does not get);
* the whole ``graphcut`` segmentation of the same photo, which finds the outline itself.

Prints the median wall time of ``--runs`` calls (after one warm-up call, which for pymatting
includes its numba compilation, reported separately), ms per megapixel and the mean absolute
alpha error over the frame.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.segmentation import CASES, _size, make_case  # noqa: E402
from generation.segmentation import get_segmenter  # noqa: E402


def trimap(alpha: np.ndarray, band: int) -> np.ndarray:
    """1 = product, 0 = background, 0.5 = unknown within ``band`` px of the true outline."""
    solid = (alpha >= 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    out = np.full(alpha.shape, 0.5)
    out[cv2.erode(solid, k).astype(bool)] = 1.0
    out[~cv2.dilate(solid, k).astype(bool)] = 0.0
    return out


def timed(fn, runs: int) -> tuple[float, float, object]:
    """(first call's seconds, median of ``runs`` further calls, last result)."""
    t = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megapixels", type=float, default=0.79)
    parser.add_argument("--band", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from pymatting import estimate_alpha_cf

    size = _size(args.megapixels)
    photo, alpha_true = make_case(CASES[0], size)
    mp = size[0] * size[1] / 1e6
    image = photo.astype(np.float64) / 255.0
    tri = trimap(alpha_true, args.band)

    cf_first, cf_s, cf_alpha = timed(lambda: estimate_alpha_cf(image, tri), args.runs)
    segmenter = get_segmenter("graphcut")
    gc_first, gc_s, result = timed(lambda: segmenter.segment(photo), args.runs)

    summary = {
        "photo": f"{CASES[0].name}, {size[0]}x{size[1]} ({mp:.2f} MP)",
        "runs": args.runs,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "closed_form_cf": {
            "given": f"trimap from the true alpha, unknown band {args.band} px",
            "unknown_pixels": int((tri == 0.5).sum()),
            "first_call_s": round(cf_first, 2),
            "median_s": round(cf_s, 3),
            "ms_per_mp": round(1000 * cf_s / mp, 1),
            "alpha_mae": round(float(np.abs(np.clip(cf_alpha, 0, 1) - alpha_true).mean()), 5),
        },
        "graphcut_segmenter": {
            "given": "the photo only",
            "first_call_s": round(gc_first, 2),
            "median_s": round(gc_s, 3),
            "ms_per_mp": round(1000 * gc_s / mp, 1),
            "alpha_mae": round(float(np.abs(result.alpha - alpha_true).mean()), 5),
        },
    }
    summary["time_cf_over_graphcut"] = round(cf_s / gc_s, 2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
