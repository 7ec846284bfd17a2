"""PNG zlib level 1 (shipped) against level 6 on the scenes backdrop-mini makes.

    .venv/bin/python bench/png_level.py [--size 1024] [--runs 5] [--threads 2]

Stages the ``bottle-coffee-white`` photo of ``bench/segmentation.py`` at ``--size`` once per
style (studio-colour, marble, linen) with the bundled model, as ``manage.py stage`` does
(20 DDIM steps, texture pass and film grain on), decodes each scene, then encodes it with
:func:`generation.provenance.encode_png` at both levels, in turn (1, 6, 1, 6, ...), ``--runs``
times. Prints, per level, the median encode time per image and the total size, the ratios
level 6 / level 1 (time: median of the pair-by-pair ratios), and whether both files decode to
the scene's pixels exactly.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.segmentation import CASES, make_case  # noqa: E402
from generation.provenance import encode_png, xmp_packet  # noqa: E402
from generation.segmentation import get_segmenter  # noqa: E402
from generation.staging import StageOptions, stage_photo  # noqa: E402

STYLES = ("studio-colour", "marble", "linen")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
    path = workdir / "bottle.png"
    Image.fromarray(make_case(CASES[0], (args.size, args.size))[0]).save(path)
    segmenter = get_segmenter("graphcut")
    scenes = []
    for style in STYLES:
        options = StageOptions(model="backdrop-mini", style=style, variants=1, seed=1)
        report = stage_photo(path=path, out_dir=workdir / style, segmenter=segmenter, options=options)
        scenes.append(np.asarray(Image.open(workdir / style / report["variants"][0]["file"]).convert("RGB")))
    xmp = xmp_packet(software="bench")

    times: dict[int, list[float]] = {1: [], 6: []}
    sizes: dict[int, int] = {}
    exact: dict[int, bool] = {}
    for level in (1, 6):  # warm-up, and the sizes and pixel check
        pngs = [encode_png(img, xmp=xmp, compress_level=level) for img in scenes]
        sizes[level] = sum(len(p) for p in pngs)
        exact[level] = all(np.array_equal(np.asarray(Image.open(io.BytesIO(p)).convert("RGB")), img)
                           for p, img in zip(pngs, scenes))
    for _ in range(args.runs):
        for level in (1, 6):
            started = time.perf_counter()
            for img in scenes:
                encode_png(img, xmp=xmp, compress_level=level)
            times[level].append((time.perf_counter() - started) / len(scenes))

    summary = {
        "scenes": f"{len(scenes)} x {args.size}x{args.size} ({', '.join(STYLES)})",
        "runs": args.runs,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    for level in (1, 6):
        summary[f"level_{level}"] = {
            "median_encode_s_per_image": round(statistics.median(times[level]), 4),
            "encode_s_range": [round(min(times[level]), 4), round(max(times[level]), 4)],
            "total_bytes": sizes[level],
            "decodes_to_same_pixels": exact[level],
        }
    summary["time_level6_over_level1"] = round(statistics.median(b / a for a, b in zip(times[1], times[6])), 2)
    summary["size_level1_over_level6"] = round(sizes[1] / sizes[6], 3)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
