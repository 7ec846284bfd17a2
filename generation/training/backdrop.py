"""Train backdrop-mini on procedural studio scenes.

    python -m generation.training.backdrop --out /tmp/backdrop-train --minutes 90

DDPM training with v-prediction and an EMA of the weights (notes/backdrop-model.md), on
scenes rendered on the fly by ``generation.backdrop.scenes`` (training seeds count up from
0; the benchmarks hold out seeds from ``HELD_OUT_SEED_START``). The loss is taken on the
generated region only. Every ``--checkpoint-minutes`` the run writes ``checkpoint.pt``
(resumable with ``--resume``) and exports the EMA weights as a loadable model folder to
``OUT/model``; the loss goes to ``OUT/loss.csv``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from generation.backdrop.model import build_unet, model_input, sampling_scheduler, training_scheduler
from generation.backdrop.styles import STYLE_NAMES, style_id
from generation.backdrop.resample import product_to_working
from generation.backdrop.scenes import render_scene

logger = logging.getLogger(__name__)

HELD_OUT_SEED_START = 2_000_000_000


def training_example(seed: int, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One example at working resolution: target (3, r, r) in [-1, 1], known mask (r, r),
    palette (3, 3), style id.

    Rendered at 2× and area-downsampled (anti-aliased shadows and silhouettes). The target is
    the backdrop everywhere outside the known mask and the product's mean colour inside it, so
    the network learns to draw clean backdrop right up to the product's edge instead of a
    product/backdrop mix that would bleed as a halo once upsampled.
    """
    scene = render_scene(seed, (2 * resolution, 2 * resolution), detail=False)
    size = (resolution, resolution)
    known, colour = product_to_working(scene.product, scene.coverage, size)
    bg = cv2.resize(scene.background, (resolution, resolution), interpolation=cv2.INTER_AREA)
    target = np.where(known[..., None], colour, bg)
    return (target.transpose(2, 0, 1) * 2 - 1).astype(np.float32), known, scene.palette, style_id(scene.style)


def make_batch(seeds: list[int], resolution: int) -> dict[str, torch.Tensor]:
    xs, ms, ps, cs = zip(*(training_example(s, resolution) for s in seeds))
    return {
        "x0": torch.from_numpy(np.stack(xs)),
        "mask": torch.from_numpy(np.stack(ms)[:, None].astype(np.float32)),
        "palette": torch.from_numpy(np.stack(ps)),
        "style": torch.tensor(cs, dtype=torch.long),
    }


def loss_on_batch(unet, scheduler, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    x0, mask = batch["x0"], batch["mask"]
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator)
    noisy = scheduler.add_noise(x0, noise, t)
    target = scheduler.get_velocity(x0, noise, t)
    pred = unet(model_input(noisy, mask, x0, batch["palette"]), t, class_labels=batch["style"]).sample
    gen = 1.0 - mask  # the product is given, not learned
    return (F.mse_loss(pred, target, reduction="none") * gen).sum() / (gen.sum() * 3).clamp(min=1.0)


def lr_factor(step: int, progress: float, decay_fraction: float) -> float:
    """Warm up over 200 steps; cosine-decay to 10 % over the last ``decay_fraction`` of the
    run's wall-time budget (time, not steps, is what a CPU run is given)."""
    warm = min(1.0, (step + 1) / 200)
    if decay_fraction <= 0 or progress < 1 - decay_fraction:
        return warm
    frac = min(1.0, (progress - (1 - decay_fraction)) / decay_fraction)
    return warm * (0.1 + 0.45 * (1 + np.cos(np.pi * frac)))


def export_model(ema, out: Path, resolution: int, size: str, step: int, elapsed_s: float) -> None:
    """Write a folder ``BackdropPipeline.from_pretrained`` can load."""
    out.mkdir(parents=True, exist_ok=True)
    ema.save_pretrained(out / "unet", safe_serialization=True)
    sampling_scheduler().save_pretrained(out / "scheduler")
    meta = {
        "name": "backdrop-mini",
        "resolution": resolution,
        "model_size": size,
        "presets": list(STYLE_NAMES),  # the key BackdropPipeline.from_pretrained reads
        "train_steps": step,
        "train_seconds": round(elapsed_s, 1),
    }
    (out / "backdrop.json").write_text(json.dumps(meta, indent=2) + "\n")


def train(
    out: Path,
    minutes: float,
    resume: Path | None = None,
    batch_size: int = 16,
    lr: float = 3e-4,
    resolution: int = 32,
    size: str = "base",
    seed: int = 0,
    checkpoint_minutes: float = 5.0,
    max_steps: int | None = None,
    log_every: int = 25,
    decay_fraction: float = 0.3,
) -> dict:
    """Train for ``minutes`` of wall time (or ``max_steps``); return a summary dict."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    ckpt = torch.load(resume, map_location="cpu", weights_only=False) if resume is not None else None
    if ckpt is not None:  # the architecture is the checkpoint's, whatever the flags say
        resolution, size = ckpt["resolution"], ckpt["size"]
    unet = build_unet(resolution, size)
    ema = copy.deepcopy(unet).requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = training_scheduler()
    generator = torch.Generator().manual_seed(seed)
    step, elapsed_before = 0, 0.0
    if ckpt is not None:
        unet.load_state_dict(ckpt["unet"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["opt"])
        generator.set_state(ckpt["generator"])
        step, elapsed_before = ckpt["step"], ckpt["elapsed_s"]
        logger.info("resumed at step %d", step)

    loss_path = out / "loss.csv"
    new_log = not loss_path.exists() or resume is None
    log_file = loss_path.open("w" if new_log else "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(["step", "elapsed_s", "loss"])

    def save(step: int, elapsed: float) -> None:
        ckpt = {"unet": unet.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "generator": generator.get_state(), "step": step, "elapsed_s": elapsed,
                "resolution": resolution, "size": size}
        tmp = out / "checkpoint.pt.tmp"
        torch.save(ckpt, tmp)
        tmp.replace(out / "checkpoint.pt")  # a kill mid-save must not lose the last good one
        export_model(ema, out / "model", resolution, size, step, elapsed)

    start = time.monotonic()
    last_ckpt = start
    running: list[float] = []
    unet.train()
    while True:
        now = time.monotonic()
        if now - start >= minutes * 60 or (max_steps is not None and step >= max_steps):
            break
        # Seeds advance with the step so a resumed run sees new scenes, never a repeat.
        batch = make_batch([step * batch_size + i for i in range(batch_size)], resolution)
        for g in opt.param_groups:
            g["lr"] = lr * lr_factor(step, (now - start) / (minutes * 60), decay_fraction)
        loss = loss_on_batch(unet, scheduler, batch, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - decay)
        step += 1
        running.append(loss.item())
        if step % log_every == 0:
            writer.writerow([step, round(elapsed_before + time.monotonic() - start, 1), round(float(np.mean(running)), 5)])
            log_file.flush()
            running.clear()
        if time.monotonic() - last_ckpt >= checkpoint_minutes * 60:
            save(step, elapsed_before + time.monotonic() - start)
            last_ckpt = time.monotonic()
    elapsed = elapsed_before + time.monotonic() - start
    save(step, elapsed)
    log_file.close()
    return {"steps": step, "elapsed_s": elapsed, "last_loss": float(np.mean(running)) if running else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, required=True, help="wall-time budget of this run")
    parser.add_argument("--resume", type=Path, help="checkpoint.pt to continue from")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--size", choices=("base", "tiny"), default="base")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--decay-fraction", type=float, default=0.3,
                        help="share of the time budget at the end over which the learning rate decays")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    summary = train(args.out, args.minutes, args.resume, args.batch_size, args.lr, args.resolution,
                    args.size, args.seed, args.checkpoint_minutes, args.max_steps,
                    decay_fraction=args.decay_fraction)
    logger.info("done: %s", json.dumps(summary))


if __name__ == "__main__":
    main()
