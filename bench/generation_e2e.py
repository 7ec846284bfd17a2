"""End to end on CPU with the bundled model: one 1024×1024 product photo → cutout + 4 locked
scene variants + preflight + files written, model warm.

    .venv/bin/python bench/generation_e2e.py [--runs 5] [--size 1024] [--variants 4] [--threads 2] [--compare] [--lock-only]

Runs the same code as `manage.py stage` (generation.staging.stage_photo: decode, segment,
render: model → fit → lock → preflight → PNG with XMP → certify the decoded file; write),
timing the model's own calls separately so the share of the job spent outside them is known.
Prints per-run figures and medians as JSON. Targets: median ≤ 6 s end to end; time outside
model calls ≤ 25 %.

With ``--compare`` it also runs, in turn with the shipped settings (A B C A B C ...), the two
settings the shipped ones replaced, and prints each one's medians and its time over the
shipped one's, pair by pair:

* ``png-level-6``: scenes encoded at zlib level 6 instead of
  :data:`generation.provenance.PNG_COMPRESS_LEVEL` (1);
* ``finish-in-sequence``: one finishing thread (:data:`generation.render.FINISH_THREADS` = 1)
  instead of one per core.

Then the lock, counted by the independent verifier (``generation.verify.verify_asset``: the
delivered PNG against the original file's bytes, with its own placement code, not the
compositor's check): the photo at ``--size`` and at a quarter of it staged on every channel
(one variant each), so the pixel-identical path (scale 1), the downscaled and the enlarged
paths are all measured; each scene's declared kind and scale, the verifier's verdict, locked
and changed pixels. A control flips one product pixel of one scene and must read 1 changed.
``--lock-only`` runs only this part.
"""
from __future__ import annotations

import argparse
import base64
import functools
import io
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

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import generation.render as render_module  # noqa: E402
import generation.staging as staging  # noqa: E402
from bench.segmentation import CASES, make_case  # noqa: E402
from generation.provenance import encode_png  # noqa: E402
from generation.registry import load_scene_backend  # noqa: E402
from generation.segmentation import get_segmenter  # noqa: E402
from generation.preflight import CHANNELS  # noqa: E402
from generation.staging import StageOptions, stage_photo  # noqa: E402
from generation.verify import LOCK_KEYWORD, read_lock_recipe, verify_asset  # noqa: E402


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


SETTINGS = {
    "shipped": {},
    "png-level-6": {"encode_png": functools.partial(encode_png, compress_level=6)},
    "finish-in-sequence": {"FINISH_THREADS": 1},
}


def run_once(setting: str, *, path: Path, out_dir: Path, segmenter, options, timed) -> dict:
    """One staged photo under ``setting`` (module attributes of generation.render patched)."""
    saved = {name: getattr(render_module, name) for name in SETTINGS[setting]}
    for name, value in SETTINGS[setting].items():
        setattr(render_module, name, value)
    try:
        timed.seconds = 0.0
        started = time.perf_counter()
        report = stage_photo(path=path, out_dir=out_dir, segmenter=segmenter, options=options)
        total = time.perf_counter() - started
    finally:
        for name, value in saved.items():
            setattr(render_module, name, value)
    return {
        "total_s": round(total, 3),
        "model_s": round(timed.seconds, 3),
        "outside_model_s": round(total - timed.seconds, 3),
        "outside_model_share": round(1 - timed.seconds / total, 3),
        "segment_s": round(report["timings_s"]["segment"], 3),
        "decode_s": round(report["timings_s"]["decode"], 3),
        "scene_bytes": sum((out_dir / v["file"]).stat().st_size for v in report["variants"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare", action="store_true", help="also run the replaced settings, interleaved")
    parser.add_argument("--lock-only", action="store_true", help="only the lock counted by the verifier")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    photo, _ = make_case(CASES[0], (args.size, args.size))
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
    path = workdir / "bottle.png"
    Image.fromarray(photo).save(path)

    timed = TimedBackend(load_scene_backend("backdrop-mini"))
    staging.load_scene_backend = lambda name: timed  # the warm model, timed
    segmenter = get_segmenter("graphcut")
    options = StageOptions(model="backdrop-mini", style="marble", variants=args.variants, seed=1)
    settings = list(SETTINGS) if args.compare else ["shipped"]

    if args.lock_only:
        print(json.dumps({"lock": lock_by_verifier(workdir, segmenter, args.size)}, indent=2))
        return
    stage_photo(path=path, out_dir=workdir / "warm", segmenter=segmenter, options=options)  # warm-up
    runs: dict[str, list[dict]] = {name: [] for name in settings}
    for run in range(args.runs):
        for name in settings:
            row = run_once(name, path=path, out_dir=workdir / f"{name}-{run}", segmenter=segmenter,
                           options=options, timed=timed)
            runs[name].append(row)
            print(json.dumps({"setting": name, **row}), file=sys.stderr)

    def medians(rows: list[dict]) -> dict:
        return {f"median_{key}": statistics.median(r[key] for r in rows) for key in rows[0]}

    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "photo": f"{args.size}x{args.size}",
        "variants": args.variants,
        "runs": args.runs,
        **medians(runs["shipped"]),
    }
    for name in settings[1:]:
        summary[name] = {
            **medians(runs[name]),
            # Pair by pair, so a drift in the machine's speed cancels out.
            "median_total_over_shipped": round(statistics.median(
                b["total_s"] / a["total_s"] for a, b in zip(runs["shipped"], runs[name])), 3),
            "median_outside_model_over_shipped": round(statistics.median(
                b["outside_model_s"] / a["outside_model_s"] for a, b in zip(runs["shipped"], runs[name])), 3),
        }
    summary["lock"] = lock_by_verifier(workdir, segmenter, args.size)
    print(json.dumps(summary, indent=2))


def lock_by_verifier(workdir: Path, segmenter, size: int) -> dict:
    """Every channel's scene for a photo at `size` and at a quarter of it, each checked by
    the independent verifier against the original file (see the module doc)."""
    rows, control = [], None
    for side in (size, max(64, size // 4)):
        photo, _ = make_case(CASES[0], (side, side))
        path = workdir / f"lock-{side}.png"
        Image.fromarray(photo).save(path)
        original = path.read_bytes()
        for channel in ("as-photo", *CHANNELS):
            out = workdir / f"lock-{side}-{channel}"
            report = stage_photo(path=path, out_dir=out, segmenter=segmenter, options=StageOptions(
                model="backdrop-mini", style="marble", variants=1, seed=1, channel=channel))
            variant = report["variants"][0]
            png = (out / variant["file"]).read_bytes()
            verdict = verify_asset(png, original)
            rows.append({
                "photo": f"{side}x{side}", "channel": channel, "canvas": variant["size"],
                "kind": variant["lock_certificate"]["kind"], "scale": variant["transform"]["scale"],
                "verdict": verdict.verdict, "locked_pixels": verdict.locked_pixels, "changed_pixels": verdict.changed_pixels,
            })
            print(json.dumps(rows[-1]), file=sys.stderr)
            if control is None and variant["transform"]["scale"] != 1.0:
                # The counter can count: one product pixel flipped in a resampled scene.
                recipe = read_lock_recipe(png)
                pixels = np.array(Image.open(io.BytesIO(png)).convert("RGB"))
                shape = recipe["mask"]["shape"]
                bits = np.frombuffer(base64.b64decode(recipe["mask"]["bits"]), np.uint8)
                mask = np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)
                inside = np.argwhere(mask)
                my, mx = inside[len(inside) // 2]  # a pixel in the middle of the product
                t = recipe["certificate"]["transform"]
                y, x = int(t["dy"] + my * t["scale"]), int(t["dx"] + mx * t["scale"])
                pixels[y, x, 0] ^= 0xFF
                tampered = encode_png(pixels, xmp="", texts={LOCK_KEYWORD: json.dumps(recipe)})
                check = verify_asset(tampered, original)
                control = {"channel": channel, "photo": f"{side}x{side}", "verdict": check.verdict, "changed_pixels": check.changed_pixels}
    return {
        "scenes": rows,
        "changed_pixels_total": sum(r["changed_pixels"] for r in rows),
        "pixel_identical": sum(r["kind"] == "pixel-identical" for r in rows),
        "resampled": sum(r["kind"] == "resampled" for r in rows),
        "all_verified": all(r["verdict"] in ("identical", "resampled-as-declared") for r in rows),
        "control_one_pixel_flipped": control,
    }


if __name__ == "__main__":
    main()
