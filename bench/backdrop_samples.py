"""Sample grids of backdrop-mini, one PNG per preset, for the model card.

    .venv/bin/python bench/backdrop_samples.py --out generation/weights/backdrop-mini/samples

Each grid has four held-out silhouettes and palettes (columns) and three rows:
1. the procedural reference scene for that silhouette and palette;
2. what the network makes: its 32 px scene, upsampled, grain, no texture pass;
3. the pipeline's full output: the same plus the preset's procedural texture pass.
The product pixels in rows 2 and 3 are the reference's, locked.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from generation.backdrop.styles import STYLE_NAMES
from generation.backdrop.resample import add_grain_and_quantize
from generation.backdrop.scenes import render_scene
from generation.registry import load_scene_backend

HELD_OUT_SEED = 2_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tile", type=int, default=160)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    pipe = load_scene_backend("backdrop-mini").pipeline
    size = (args.tile, args.tile)
    for p, preset in enumerate(STYLE_NAMES):
        rows: list[list[np.ndarray]] = [[], [], []]
        for k in range(4):
            seed = HELD_OUT_SEED + 500 + 10 * p + k
            ref = render_scene(seed, size, style=preset)
            product = add_grain_and_quantize(ref.image, np.random.default_rng([seed, 7]))
            rows[0].append(product)
            for row, texture in ((1, False), (2, True)):
                out = pipe(product, ref.mask, preset, ref.palette, seeds=[k], num_inference_steps=args.steps, texture=texture)
                rows[row].append(np.asarray(out.images[0]))
        grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
        PIL.Image.fromarray(grid).save(args.out / f"{preset}.png", optimize=True)
        print(args.out / f"{preset}.png")


if __name__ == "__main__":
    main()
