"""Touch-up job benchmark at 24 MP: time and peak memory of what the cpu worker does.

Builds a synthetic 6000 × 4000 studio photo (graded backdrop with sensor noise, a textured
product with a soft 3-pixel rim), its stored cutout (RGBA PNG + L mask PNG, as
``studio.work._cutout_store`` writes them) and a brushed mask as the browser uploads it (an
opaque RGBA PNG from a canvas: a band erased across the product, a patch added). Then it runs
the steps of ``studio.work.cutout_touch_up`` on those bytes, storage and database left out:

1. decode the uploaded mask (``generation.decoding.decode_mask_png``);
2. decode the base revision and the photo's working copy (as ``studio.selectors.cutout_result``
   and ``photo_rgb`` do);
3. ``generation.segmentation.touch_up.touch_up``;
4. encode the new revision's two PNGs and the mask hash (as ``_cutout_store`` does).

Prints the median of ``--runs`` runs per step and in total, and the peak resident memory of
one run in a fresh subprocess (the kernel's VmHWM, reset after the input bytes are loaded,
minus the resident size then).

The test suite checks the touch-up job end to end at small sizes; the 24 MP case lives here
because through the database and storage it takes over 15 s on a 2-core machine.

Run::

    .venv/bin/python bench/touch_up.py [--width 6000 --height 4000] [--runs 5] [--snap-edges]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation.decoding import decode_mask_png  # noqa: E402
from generation.provenance import PNG_COMPRESS_LEVEL  # noqa: E402
from generation.segmentation import SegmentationResult, cutout_rgba, lock_mask_image  # noqa: E402
from generation.segmentation.base import result_from_alpha  # noqa: E402
from generation.segmentation.touch_up import touch_up  # noqa: E402

INPUTS = ("working.png", "cutout.png", "mask.png", "upload.png")


def _png(image: Image.Image, level: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def make_inputs(width: int, height: int, folder: Path) -> dict:
    """Write the four stored files a touch-up job reads; return what they hold."""
    rng = np.random.default_rng(7)
    photo = np.empty((height, width, 3), np.uint8)
    photo[...] = np.linspace(238, 252, height, dtype=np.float32).astype(np.uint8)[:, None, None]
    x0, y0, x1, y1 = width // 3, height // 5, 2 * width // 3, 4 * height // 5
    yy = np.arange(y1 - y0, dtype=np.float32)[:, None]
    xx = np.arange(x1 - x0, dtype=np.float32)[None, :]
    label = (np.sin(xx / 37.0) * np.cos(yy / 23.0) * 40).astype(np.float32)
    photo[y0:y1, x0:x1, 0] = np.clip(170 + label, 0, 255).astype(np.uint8)
    photo[y0:y1, x0:x1, 1] = np.clip(40 + label / 2, 0, 255).astype(np.uint8)
    photo[y0:y1, x0:x1, 2] = 30
    photo = np.clip(photo.astype(np.int16) + rng.integers(-2, 3, photo.shape, dtype=np.int16), 0, 255).astype(np.uint8)

    hard = np.zeros((height, width), np.uint8)
    hard[y0:y1, x0:x1] = 255
    alpha = cv2.GaussianBlur(hard, (7, 7), 0).astype(np.float32) / 255.0  # a soft rim ~3 px wide
    base = result_from_alpha(image=photo, alpha=alpha, foreground=photo, edge_confidence=0.9, backend="graphcut", version="bench")

    brushed = base.mask.copy()
    brushed[height // 2 - 100 : height // 2 + 100, :] = False  # erase a 200 px band across the product
    brushed[100:500, 100:500] = True  # add a patch in the backdrop
    upload = np.zeros((height, width, 4), np.uint8)
    upload[..., 3] = 255
    upload[brushed, :3] = 255

    (folder / "working.png").write_bytes(_png(Image.fromarray(photo), 1))  # as the upload stores it
    (folder / "cutout.png").write_bytes(_png(cutout_rgba(base), PNG_COMPRESS_LEVEL))
    (folder / "mask.png").write_bytes(_png(lock_mask_image(base), PNG_COMPRESS_LEVEL))
    (folder / "upload.png").write_bytes(_png(Image.fromarray(upload, "RGBA"), 6))  # a browser's default level
    return {"added": int((brushed & ~base.mask).sum()), "removed": int((base.mask & ~brushed).sum()), "locked": int(brushed.sum())}


def _decode_base(cutout_png: bytes, mask_png: bytes) -> SegmentationResult:
    """What ``studio.selectors.cutout_result`` does with a revision's two files."""
    rgba = np.asarray(Image.open(io.BytesIO(cutout_png)).convert("RGBA"))
    mask = np.asarray(Image.open(io.BytesIO(mask_png)).convert("L")) >= 128
    alpha = rgba[:, :, 3].astype(np.float32) / 255.0
    alpha[mask] = 1.0
    return SegmentationResult(
        alpha=alpha, mask=mask, foreground=np.ascontiguousarray(rgba[:, :, :3]), bbox=None, coverage=0.0,
        edge_confidence=0.9, confident=False, backend="graphcut", version="bench",
    )


def run_once(data: dict[str, bytes], size: tuple[int, int], snap_edges: bool = False) -> tuple[dict[str, float], int]:
    """One touch-up; returns seconds per step and the new revision's locked pixel count."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    mask = decode_mask_png(data=data["upload.png"], size=size)
    times["decode_mask"] = time.perf_counter() - t

    t = time.perf_counter()
    previous = _decode_base(data["cutout.png"], data["mask.png"])
    image = np.asarray(Image.open(io.BytesIO(data["working.png"])).convert("RGB"))
    times["decode_base_and_photo"] = time.perf_counter() - t

    t = time.perf_counter()
    result = touch_up(previous=previous, image=image, mask=mask, snap_edges=snap_edges)
    times["touch_up"] = time.perf_counter() - t
    del previous, image, mask

    t = time.perf_counter()
    _png(cutout_rgba(result), PNG_COMPRESS_LEVEL)
    _png(lock_mask_image(result), PNG_COMPRESS_LEVEL)
    hashlib.sha256(result.mask.tobytes()).hexdigest()
    times["encode_revision"] = time.perf_counter() - t
    times["total"] = sum(times.values())
    return times, int(result.mask.sum())


def _load(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in INPUTS}


def peak_memory(folder: Path, size: tuple[int, int], snap_edges: bool = False) -> dict:
    """One run in a fresh interpreter, so nothing of the timing runs is counted."""
    code = (
        "import sys, json; from pathlib import Path;"
        f"sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['touch_up'];"
        "import bench.touch_up as b;"
        "hwm = lambda key: int([l for l in open('/proc/self/status') if l.startswith(key)][0].split()[1]);"
        f"data = b._load(Path({str(folder)!r}));"
        # ru_maxrss would carry the parent's peak over fork+exec: reset the kernel's
        # high-water mark instead and read VmHWM.
        "open('/proc/self/clear_refs', 'w').write('5');"
        "before = hwm('VmRSS');"
        f"b.run_once(data, {size!r}, {snap_edges!r});"
        "print(json.dumps([before, hwm('VmHWM')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    before, peak = json.loads(out.stdout.strip().splitlines()[-1])
    return {"peak_rss_mb": round(peak / 1024, 1), "rss_before_mb": round(before / 1024, 1), "work_over_baseline_mb": round((peak - before) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--snap-edges", action="store_true", help="as the editor sends by default: strokes snapped to edges (a graph cut)")
    args = parser.parse_args()
    size = (args.width, args.height)

    with tempfile.TemporaryDirectory(prefix="vitrine-touch-up-") as tmp:
        folder = Path(tmp)
        brushed = make_inputs(args.width, args.height, folder)
        data = _load(folder)
        runs = []
        for _ in range(args.runs):
            times, locked = run_once(data, size, args.snap_edges)
            if not args.snap_edges:  # snapping may trim the strokes
                assert locked == brushed["locked"], (locked, brushed["locked"])
            runs.append(times)
        memory = peak_memory(folder, size, args.snap_edges)

    megapixels = args.width * args.height / 1e6
    report = {
        "photo": f"{args.width}x{args.height} ({megapixels:.0f} MP)",
        "runs": args.runs,
        "snap_edges": args.snap_edges,
        "input_bytes": {name: len(value) for name, value in data.items()},
        "brushed": brushed,
        "median_s": {step: round(statistics.median(r[step] for r in runs), 3) for step in runs[0]},
        "min_total_s": round(min(r["total"] for r in runs), 3),
        **memory,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
