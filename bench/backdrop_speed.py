"""Sampling speed of backdrop-mini: 4 variants at 1024×1024, model warm.

    .venv/bin/python bench/backdrop_speed.py [--threads 2] [--runs 7] [--steps 20]

Prints each run's wall time and the median. Target: median ≤ 3 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from generation.backdrop.scenes import render_scene
from generation.registry import load_scene_backend

HELD_OUT_SEED = 2_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--variants", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = load_scene_backend("backdrop-mini").pipeline
    times: dict[str, list[float]] = {}
    for preset in ("studio-colour", "marble", "linen"):
        scene = render_scene(HELD_OUT_SEED, (args.size, args.size), style=preset)
        product = np.rint(scene.image * 255).astype(np.uint8)
        seeds = list(range(args.variants))
        pipe(product, scene.mask, preset, scene.palette, seeds=seeds, num_inference_steps=args.steps)  # warm-up
        times[preset] = []
        for _ in range(args.runs):
            start = time.perf_counter()
            out = pipe(product, scene.mask, preset, scene.palette, seeds=seeds, num_inference_steps=args.steps)
            times[preset].append(time.perf_counter() - start)
        assert len(out.images) == args.variants and out.images[0].size == (args.size, args.size)
        print(f"{preset:14s} runs: {', '.join(f'{t:.2f}' for t in times[preset])} s; median {statistics.median(times[preset]):.2f} s")
    every = [t for ts in times.values() for t in ts]
    print(f"all presets: median {statistics.median(every):.2f} s, max {max(every):.2f} s "
          f"({args.variants} variants, {args.size}x{args.size}, {args.steps} DDIM steps, {args.threads} threads)")


if __name__ == "__main__":
    main()
