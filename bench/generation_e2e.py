"""End to end on CPU with the bundled model: one 1024×1024 product photo → cutout + 4 locked
scene variants + preflight + files written, model warm.

    .venv/bin/python bench/generation_e2e.py [--runs 5] [--size 1024] [--variants 4] [--threads 2]

Runs the same code as `manage.py stage` (decode, segment, render: model → fit → lock →
preflight → PNG with XMP → certify the decoded file; write), timing the model's own calls
separately so the share of the job spent outside them is known. Prints per-run figures
and medians as JSON. Targets: median ≤ 6 s end to end; time outside model calls ≤ 25 %.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.segmentation import CASES, make_case  # noqa: E402
from generation.registry import load_scene_backend  # noqa: E402
from generation.segmentation import get_segmenter  # noqa: E402
from generation.staging import StageOptions, stage_photo  # noqa: E402


class TimedBackend:
    """Wraps the warm backend and adds up the wall time of its generate() calls."""

    def __init__(self, backend):
        self.backend, self.name, self.seconds = backend, backend.name, 0.0

    def generate(self, request, *, callback=None):
        started = time.perf_counter()
        try:
            return self.backend.generate(request, callback=callback)
        finally:
            self.seconds += time.perf_counter() - started

    def describe(self):
        return self.backend.describe()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    photo, _ = make_case(CASES[0], (args.size, args.size))
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
    path = workdir / "bottle.png"
    Image.fromarray(photo).save(path)

    import generation.staging as staging

    timed = TimedBackend(load_scene_backend("backdrop-mini"))
    staging.load_scene_backend = lambda name: timed  # the warm model, timed
    segmenter = get_segmenter("studio")
    options = StageOptions(model="backdrop-mini", preset="marble", variants=args.variants, seed=1)

    stage_photo(path=path, out_dir=workdir / "warm", segmenter=segmenter, options=options)  # warm-up
    runs = []
    for run in range(args.runs):
        timed.seconds = 0.0
        started = time.perf_counter()
        report = stage_photo(path=path, out_dir=workdir / f"run{run}", segmenter=segmenter, options=options)
        total = time.perf_counter() - started
        assert all(v["lock_certificate"]["changed_pixels"] == 0 for v in report["variants"])
        runs.append({
            "total_s": round(total, 3),
            "model_s": round(timed.seconds, 3),
            "outside_model_share": round(1 - timed.seconds / total, 3),
            "segment_s": report["timings_s"]["segment"],
            "decode_s": report["timings_s"]["decode"],
        })
        print(json.dumps(runs[-1]), file=sys.stderr)
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}",
        "photo": f"{args.size}x{args.size}",
        "variants": args.variants,
        "median_total_s": statistics.median(r["total_s"] for r in runs),
        "median_model_s": statistics.median(r["model_s"] for r in runs),
        "median_outside_model_share": statistics.median(r["outside_model_share"] for r in runs),
        "median_segment_s": statistics.median(r["segment_s"] for r in runs),
        "runs": runs,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
