"""Quality of backdrop-mini on held-out procedural scenes, beside two baselines.

    .venv/bin/python bench/backdrop_quality.py [--n 210] [--size 128] [--threads 2]

For each held-out scene (seeds from 2,000,000,000, never used in training; presets in turn)
the product layer and mask of the procedural reference are handed to each method:

- backdrop-mini: the committed weights, 20 DDIM steps, texture pass and grain on;
- random weights: the same pipeline with an untrained UNet (seed 0);
- flat grey: the backdrop filled with RGB 128 (+ the same grain);
- references, other seeds: procedural scenes from different seeds (the metric's floor);
- three damaged copies of the references, to show what the metric notices: + noise
  (σ = 6/255), blurred (σ = 1.5 px), colour-shifted (hue rotated by 30°).

Figures:

- SFD (scene Fréchet distance): Fréchet distance between Gaussians fitted to per-image
  feature vectors of the method's images and of the references. Features, standardised by
  the references: Lab mean/std and 8-bin Lab histograms of the backdrop (wrong colours), the
  radially averaged log power spectrum of the luminance in 10 log-spaced bands (noise raises
  the high bands, blur lowers them) and a log-binned gradient-magnitude histogram (grain,
  banding, blocking). Also reported split into its colour part and its structure part.
- palette ΔE: for each of the two main palette colours, CIE76 ΔE to the nearest of the
  backdrop's 3 dominant colours (k-means in Lab), averaged; presets other than studio-white
  (which is white by design).
- shadows: share of samples whose band under the product's base is darker than the band
  beside it (``scenes.shadow_bands``).
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
import torch
from scipy import linalg

from generation.backdrop.model import build_unet, sampling_scheduler
from generation.backdrop.pipeline import BackdropPipeline
from generation.backdrop.styles import STYLE_NAMES
from generation.backdrop.resample import add_grain_and_quantize
from generation.backdrop.scenes import render_scene, shadow_bands
from generation.registry import load_scene_backend

HELD_OUT_SEED = 2_000_000_000
OTHER_REFERENCE_SEED = 2_100_000_000


def lab(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)


def features(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(colour features, structure features) of one uint8 RGB scene."""
    bg = lab(img)[~mask]
    colour = [bg.mean(0), bg.std(0)]
    for c in range(3):
        hist, _ = np.histogram(bg[:, c], bins=8, range=(0, 256))
        colour.append(hist / max(1, len(bg)))
    lum = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = lum.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    power = np.abs(np.fft.fftshift(np.fft.fft2((lum - lum.mean()) * win))) ** 2
    yy, xx = np.indices((h, w))
    radius = np.hypot(yy - h / 2, xx - w / 2)
    edges = np.geomspace(1, min(h, w) / 2, 11)
    spectrum = [np.log10(power[(radius >= lo) & (radius < hi)].mean() + 1e-6) for lo, hi in zip(edges[:-1], edges[1:])]
    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1)
    grad = np.hypot(gx, gy)[~mask]
    ghist, _ = np.histogram(grad, bins=[0, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 1e9])
    structure = [np.array(spectrum), ghist / max(1, len(grad))]
    return np.concatenate(colour), np.concatenate(structure)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    eye = np.eye(a.shape[1]) * 1e-6
    cov_a, cov_b = np.cov(a, rowvar=False) + eye, np.cov(b, rowvar=False) + eye
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def palette_delta_e(img: np.ndarray, mask: np.ndarray, palette: np.ndarray) -> float:
    bg = lab(img)[~mask].reshape(-1, 1, 3)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(bg.reshape(-1, 3), 3, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    centres = centres * np.array([100 / 255, 1, 1], np.float32) - np.array([0, 128, 128], np.float32)
    wanted = cv2.cvtColor(palette[None, :2].astype(np.float32), cv2.COLOR_RGB2LAB)[0]
    return float(np.mean([np.linalg.norm(centres - c, axis=1).min() for c in wanted]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=210)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    methods = {
        "backdrop-mini": load_scene_backend("backdrop-mini").pipeline,
        "random weights": BackdropPipeline(build_unet(32, "base"), sampling_scheduler(), resolution=32),
    }
    names = ["backdrop-mini", "random weights", "flat grey", "references, other seeds",
             "references + noise", "references blurred", "references colour-shifted"]
    feats: dict[str, list] = {k: [] for k in names + ["reference"]}
    delta_e: dict[str, list[float]] = {k: [] for k in names + ["reference"]}
    shadows: dict[str, list[bool]] = {k: [] for k in names + ["reference"]}
    size = (args.size, args.size)
    start = time.time()
    for i in range(args.n):
        preset = STYLE_NAMES[i % len(STYLE_NAMES)]
        ref = render_scene(HELD_OUT_SEED + i, size, style=preset)
        other = render_scene(OTHER_REFERENCE_SEED + i, size, style=preset)
        grain_rng = np.random.default_rng([i, 7])
        product = add_grain_and_quantize(ref.image, np.random.default_rng([i, 8]), sigma=0)
        images = {
            "reference": (add_grain_and_quantize(ref.image, grain_rng), ref.mask, ref.palette),
            "references, other seeds": (add_grain_and_quantize(other.image, grain_rng), other.mask, other.palette),
        }
        for name, pipe in methods.items():
            out = pipe(product, ref.mask, preset, ref.palette, seeds=[i], num_inference_steps=args.steps).images[0]
            images[name] = (np.asarray(out), ref.mask, ref.palette)
        ref_u8, ref_mask = images["reference"][0], ref.mask
        noisy = np.clip(ref_u8 + np.random.default_rng([i, 9]).normal(0, 6, ref_u8.shape), 0, 255).astype(np.uint8)
        blurred = cv2.GaussianBlur(ref_u8, (0, 0), 1.5)
        hsv = cv2.cvtColor(ref_u8, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(int) + 15) % 180
        shifted = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        for name, img in (("references + noise", noisy), ("references blurred", blurred), ("references colour-shifted", shifted)):
            img[ref_mask] = product[ref_mask]
            images[name] = (img, ref_mask, ref.palette)
        grey = add_grain_and_quantize(np.full(ref.image.shape, 128 / 255, np.float32), np.random.default_rng([i, 7]))
        grey[ref.mask] = product[ref.mask]
        images["flat grey"] = (grey, ref.mask, ref.palette)
        for name, (img, mask, pal) in images.items():
            feats[name].append(features(img, mask))
            if preset != "studio-white":
                delta_e[name].append(palette_delta_e(img, mask, pal))
            under, beside = shadow_bands(img.astype(np.float32) / 255, mask)
            if np.isfinite(under):
                shadows[name].append(under < beside)

    def stack(name: str, part: int | None) -> np.ndarray:
        rows = [np.concatenate(f) if part is None else f[part] for f in feats[name]]
        return np.array(rows, np.float64)

    results = {}
    for part_name, part in (("sfd", None), ("sfd_colour", 0), ("sfd_structure", 1)):
        ref_feats = stack("reference", part)
        mu, sd = ref_feats.mean(0), np.maximum(ref_feats.std(0), 1e-3)
        for name in names:
            results.setdefault(name, {})[part_name] = frechet((stack(name, part) - mu) / sd, (ref_feats - mu) / sd)
    for name in names + ["reference"]:
        results.setdefault(name, {})["palette_delta_e"] = float(np.mean(delta_e[name]))
        results[name]["shadow_rate"] = float(np.mean(shadows[name]))
        results[name]["shadow_n"] = len(shadows[name])

    print(f"{args.n} held-out scenes at {args.size}x{args.size}, {args.steps} DDIM steps, {time.time() - start:.0f} s")
    print("| method | SFD ↓ | colour part ↓ | structure part ↓ | palette ΔE ↓ | shadow under < beside ↑ |")
    print("|---|---|---|---|---|---|")
    for name in names + ["reference"]:
        r = results[name]
        # The references against themselves: 0 by definition, not a measurement.
        sfd = [f"{r[k]:.1f}" if k in r else "—" for k in ("sfd", "sfd_colour", "sfd_structure")]
        print(f"| {name} | {' | '.join(sfd)} | {r['palette_delta_e']:.1f} | {100 * r['shadow_rate']:.0f} % of {r['shadow_n']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
