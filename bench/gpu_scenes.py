"""Scene models on a GPU, with no download: plain diffusers defaults against Vitrine's setup.

    .venv/bin/python bench/gpu_scenes.py [--backends sdxl-inpaint,flux-fill] [--batch 4]
                                         [--no-compile] [--repeats 2] [--json out.json]
    .venv/bin/python bench/gpu_scenes.py --smoke      # CPU: tiny models, 2 steps, 64² (make test runs it)

Builds SD 1.5 inpainting, SDXL inpainting and FLUX.1 Fill from their published architecture
configs (``generation/pipelines/configs/*.json``) with random weights: speed does not depend
on the values. For each backend, three configurations in the same process:

* ``diffusers defaults``: the pipeline as ``from_pretrained`` gives it (fp32), moved to the
  device, called directly through the backend without buckets or any setting;
* ``diffusers half``: the same in the backend's CUDA dtype (fp16; bf16 for FLUX), still no
  settings: what a user gets from passing ``torch_dtype`` alone;
* ``vitrine``: ``DiffusersInpaintBackend.from_pipeline`` — :func:`optimise_for_device` (TF32,
  channels_last, fused QKV, compile unless ``--no-compile``; for SDXL an fp16-safe VAE of
  SDXL's VAE architecture, as the fp16-fix VAE is), canvas buckets, fixed batch — warmed up
  on every bucket as a GPU worker is at start.

Measured per configuration: compile/warm-up time (the first call; for ``vitrine`` the whole
``warm_up``), seconds per image of a batch of ``--batch`` at the backend's 1:1 bucket (1024²
SDXL/FLUX, 512² SD 1.5; SDXL and SD 30 steps with CFG 7, FLUX 28 steps at guidance 30),
images per hour, peak GPU memory (``torch.cuda.max_memory_allocated``); and for ``vitrine`` a
whole job through ``generation.render.render`` — 4 variants × 3 channels (square-2048,
portrait-4x5, landscape-1.91) with the CPU finishing — and the share of its wall time spent
inside model calls (CUDA events around each pipeline call): the GPU-busy share.

``--smoke`` runs the same code on the CPU with the tiny architectures of
:data:`generation.pipelines.architectures.SMOKE`, 2 steps, a 64² canvas and 64-pixel buckets
of batch 2; GPU settings do not apply on a CPU (``optimise_for_device`` leaves a CPU pipeline
alone), so its figures say that the path works, not how fast a GPU is.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers.utils import logging as diffusers_logging  # noqa: E402

from generation.lock import ProductLayer  # noqa: E402
from generation.pipelines.architectures import build_pipeline  # noqa: E402
from generation.pipelines.base import SceneRequest  # noqa: E402
from generation.pipelines.buckets import Bucket  # noqa: E402
from generation.registry import get_backend  # noqa: E402

diffusers_logging.set_verbosity_error()

JOB_CHANNELS = ("square-2048", "portrait-4x5", "landscape-1.91")
JOB_VARIANTS = 4


@dataclass
class Setting:
    """What one backend is measured at."""

    canvas: tuple[int, int]
    steps: int
    guidance: float
    batch: int
    buckets: tuple[Bucket, ...] | None = None  # None: the backend's own (BUCKETS)


FULL = {
    "sd-inpaint": Setting(canvas=(512, 512), steps=30, guidance=7.0, batch=4),
    "sdxl-inpaint": Setting(canvas=(1024, 1024), steps=30, guidance=7.0, batch=4),
    "flux-fill": Setting(canvas=(1024, 1024), steps=28, guidance=30.0, batch=4),
}
#: The real ladder's aspects (1, 0.78, 1.29, 0.6, 1.67) at 64 px; multiples of 8.
_SMOKE_BUCKETS = (Bucket(64, 64, 2), Bucket(56, 72, 2), Bucket(72, 56, 2), Bucket(48, 80, 2), Bucket(80, 48, 2))
#: The job's channels in the smoke run: custom canvases of the real channels' aspects.
SMOKE_CHANNELS = ("64x64", "64x80", "120x64")
SMOKE = {
    name: Setting(canvas=(64, 64), steps=2, guidance=s.guidance, batch=2, buckets=_SMOKE_BUCKETS)
    for name, s in FULL.items()
}


@dataclass
class Row:
    backend: str
    configuration: str
    dtype: str
    ran_at: str
    steps: int
    warmup_s: float
    seconds_per_image: float
    images_per_hour: float
    peak_memory_gb: float | None
    job_wall_s: float | None = None
    job_model_share: float | None = None
    job_assets: int | None = None
    call_sizes: list[list[int]] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


class CallTimer:
    """Wraps a backend's pipeline calls: the time inside each (CUDA events on a GPU) and the
    size (height, width, batch) the pipeline made its images at."""

    def __init__(self, backend, cuda: bool):
        self.seconds: list[float] = []
        self.sizes: list[tuple[int, int, int]] = []
        real = backend._call

        def timed(*args, **kwargs):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                images = real(*args, **kwargs)
                end.record()
                end.synchronize()
                self.seconds.append(start.elapsed_time(end) / 1000)
            else:
                started = time.perf_counter()
                images = real(*args, **kwargs)
                self.seconds.append(time.perf_counter() - started)
            self.sizes.append((*np.asarray(images[0]).shape[:2], len(images)))
            return images

        backend._call = timed


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _request(name: str, setting: Setting, seeds: tuple[int, ...]) -> SceneRequest:
    width, height = setting.canvas
    image = np.full((height, width, 3), 128, np.uint8)
    mask = np.zeros((height, width), bool)
    mask[height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = True
    image[mask] = (40, 160, 90)
    rules = get_backend(name).rules
    return SceneRequest(
        image=image, mask=mask, prompt="a bottle on a marble table, soft light", seeds=seeds,
        steps=setting.steps, guidance=setting.guidance, strength=rules.strength, scheduler=rules.scheduler,
        negative_prompt="blurry",
    )


def _memory_reset(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _memory_peak(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None


def _job(name: str, backend, setting: Setting, timer: CallTimer, smoke: bool) -> tuple[float, float, int]:
    """4 variants (2 in the smoke run) × 3 channels through render(): wall seconds, the share
    of it inside model calls, and the number of assets made."""
    from generation.imaging import bbox_of_mask
    from generation.render import RenderPlan, render

    photo = 256 if smoke else 1500
    rgb = np.full((photo, photo, 3), 235, np.uint8)
    mask = np.zeros((photo, photo), bool)
    mask[photo // 4 : 3 * photo // 4, photo // 3 : 2 * photo // 3] = True
    rgb[mask] = (40, 160, 90)
    layer = ProductLayer(rgb=rgb, alpha=mask.astype(np.float32), mask=mask)
    rules = get_backend(name).rules
    plan = RenderPlan(
        model=name, backend=name, prompt="a bottle on a marble table", negative_prompt="",
        seeds=tuple(range(2 if smoke else JOB_VARIANTS)), channels=SMOKE_CHANNELS if smoke else JOB_CHANNELS,
        steps=setting.steps, guidance=setting.guidance, strength=rules.strength, scheduler=rules.scheduler,
    )
    before = len(timer.seconds)
    started = time.perf_counter()
    assets = list(render(plan=plan, layer=layer, bbox=bbox_of_mask(mask), backend=backend, previews=False))
    wall = time.perf_counter() - started
    return wall, sum(timer.seconds[before:]) / wall, len(assets)


def _fp16_vae(name: str, smoke: bool, workdir: Path) -> Path:
    """A folder standing in for madebyollin/sdxl-vae-fp16-fix: SDXL's VAE architecture (the fix
    keeps it, retrained to stay in fp16 range) with ``force_upcast`` off; random weights."""
    from diffusers import AutoencoderKL

    from generation.pipelines.architectures import SMOKE, architecture

    folder = workdir / f"{name}-vae-fp16-fix"
    if not folder.is_dir():
        config = {**architecture(name)["vae"], **(SMOKE[name]["vae"] if smoke else {}), "force_upcast": False}
        torch.manual_seed(0)
        AutoencoderKL(**config).save_pretrained(folder)
    return folder


def measure(name: str, configuration: str, setting: Setting, *, device: str, smoke: bool, compile: bool,
            repeats: int, workdir: Path) -> Row:
    cls = get_backend(name).backend_class()
    cuda = device.startswith("cuda")
    half = cls.cuda_dtype if cuda else torch.bfloat16
    dtype = torch.float32 if configuration == "diffusers defaults" else half
    _memory_reset(device)
    if cuda:  # torch's defaults for the plain rows; the vitrine row sets its own
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True
    pipe = build_pipeline(name, smoke=smoke, device=device if cuda else "cpu", dtype=dtype, workdir=workdir)
    if cuda:  # the peak of running, not of building in fp32 and converting
        torch.cuda.reset_peak_memory_stats()
    seeds = tuple(range(setting.batch))
    started = time.perf_counter()
    if configuration == "vitrine":
        fp16_vae = _fp16_vae(name, smoke, workdir) if name == "sdxl-inpaint" else None
        backend = cls.from_pipeline(pipe, device, compile=compile and cuda, buckets=setting.buckets, fixed_batch=True,
                                    fp16_vae=fp16_vae)
        timer = CallTimer(backend, cuda)
        backend.warm_up()  # one call per bucket, as a GPU worker does at start
    else:
        backend = cls(pipe.to(device))
        timer = CallTimer(backend, cuda)
        backend.generate(_request(name, setting, seeds))
    _sync(device)
    warmup = time.perf_counter() - started
    timer.seconds.clear()
    timer.sizes.clear()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        scenes = backend.generate(_request(name, setting, seeds))
        _sync(device)
        times.append(time.perf_counter() - started)
        assert [s.shape[:2] for s in scenes] == [setting.canvas[::-1]] * setting.batch
    sizes = [list(size) for size in timer.sizes]
    per_image = min(times) / setting.batch
    row = Row(
        backend=name, configuration=configuration, dtype=str(backend.dtype).removeprefix("torch."),
        ran_at=" ".join(sorted({f"{w}x{h}x{b}" for h, w, b in timer.sizes})), steps=setting.steps,
        warmup_s=warmup, seconds_per_image=per_image, images_per_hour=3600 / per_image,
        peak_memory_gb=_memory_peak(device), call_sizes=sizes,
        settings=backend.describe().get("optimisations", {}) if configuration == "vitrine" else {},
    )
    if configuration == "vitrine":
        row.job_wall_s, row.job_model_share, row.job_assets = _job(name, backend, setting, timer, smoke)
        row.call_sizes = [list(size) for size in timer.sizes]  # the job's calls too
    del backend, pipe
    _memory_reset(device)
    return row


def _fmt(value, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def table(rows: list[Row], *, machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| backend | configuration | dtype | ran at (w×h×batch) | steps | warm-up s | s/image | images/h "
        "| peak GPU GB | job wall s | model-call share of job |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.backend} | {r.configuration} | {r.dtype} | {r.ran_at} | {r.steps} | {r.warmup_s:.2f} "
            f"| {r.seconds_per_image:.3f} | {r.images_per_hour:,.0f} | {_fmt(r.peak_memory_gb, '.1f')} "
            f"| {_fmt(r.job_wall_s, '.2f')} | {_fmt(r.job_model_share, '.0%')} |"
        )
    if rows and rows[0].peak_memory_gb is None:
        lines.append("\nOn a CPU no GPU setting applies and the models are tiny: these rows check the path, not speed.")
    by = {(r.backend, r.configuration): r for r in rows}
    for name in dict.fromkeys(r.backend for r in rows):
        plain, ours = by.get((name, "diffusers defaults")), by.get((name, "vitrine"))
        if plain and ours:
            lines.append(f"\n{name}: vitrine is {plain.seconds_per_image / ours.seconds_per_image:.2f}× diffusers defaults "
                         f"(s/image); settings: {json.dumps(ours.settings)}")
    return "\n".join(lines)


def machine_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s), {platform.processor() or platform.machine()} (torch {torch.__version__})"


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU (the make-test run)")
    parser.add_argument("--backends", default="sd-inpaint,sdxl-inpaint,flux-fill")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    if args.smoke:
        torch.set_num_threads(1)  # tiny models: a second thread only adds synchronisation
    elif device == "cpu":
        parser.error("no CUDA device: run with --smoke on a CPU")
    settings = SMOKE if args.smoke else FULL
    repeats = args.repeats or (1 if args.smoke else 2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backends.split(","):
            setting = settings[name]
            if args.batch:
                setting = Setting(**{**setting.__dict__, "batch": args.batch})
            for configuration in ("diffusers defaults", "diffusers half", "vitrine"):
                rows.append(measure(name, configuration, setting, device=device, smoke=args.smoke,
                                    compile=not args.no_compile, repeats=repeats, workdir=Path(tmp)))
                print(f"measured {name} / {configuration}", file=sys.stderr, flush=True)
    print(table(rows, machine=machine_name(device)))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    return rows


if __name__ == "__main__":
    main()
