"""`manage.py stage`: cutout + scenes + lock + preflight for photos on disk, no server.

A library function per photo; the management command is a loop with a progress bar."""
from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from catalog.uploads import validate_image
from generation.compose import AS_PHOTO, compose, fill_for, fit_transform
from generation.lock import ProductLayer, Transform, backdrop_fill, estimate_backdrop_color
from generation.preflight import get_channel
from generation.segmentation import Segmenter, cutout_rgba, lock_mask_image

# The stage command reads any photo the upload rules accept, at full size.
STAGE_MAX_BYTES = 500 * 1024 * 1024
STAGE_MAX_PIXELS = 200_000_000


@dataclass(frozen=True)
class StageOptions:
    segmenter: str = "studio"
    model: str = "none"
    preset: str | None = None
    prompt: str | None = None
    variants: int = 1
    seed: int = 0
    size: tuple[int, int] | None = None
    channel: str | None = None


class SceneSource:
    """Where the scene behind the product comes from. `none`: the lock compositor's own plain
    backdrop in the photo's background colour (no model)."""

    name = "none"

    def scenes(self, *, image: np.ndarray, alpha: np.ndarray, canvas: tuple[int, int], options: StageOptions) -> list[np.ndarray]:
        colour = estimate_backdrop_color(image, alpha)
        return [backdrop_fill(size=canvas, color=colour) for _ in range(options.variants)]


def decode_photo(path: Path) -> np.ndarray:
    """Decode a photo with the upload rules (content allowlist, full decode, EXIF upright)."""
    with path.open("rb") as fh:
        size = path.stat().st_size
        accepted = validate_image(
            fh, size_bytes=size, max_bytes=STAGE_MAX_BYTES, max_pixels=STAGE_MAX_PIXELS, working_max_side=100_000
        )
    return np.asarray(Image.open(io.BytesIO(accepted.working_png)).convert("RGB"))


def stage_photo(
    *, path: Path, out_dir: Path, segmenter: Segmenter, scenes: SceneSource, options: StageOptions,
    progress: Callable[[str], None] = lambda step: None,
) -> dict:
    """Stage one photo into `out_dir` (created); return the report also written as report.json."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    image = decode_photo(path)
    timings["decode"] = time.perf_counter() - started
    progress("decoded")

    t = time.perf_counter()
    result = segmenter.segment(image)
    timings["segment"] = time.perf_counter() - t
    progress("segmented")

    out_dir.mkdir(parents=True, exist_ok=True)
    cutout_rgba(result).save(out_dir / "cutout.png")
    lock_mask_image(result).save(out_dir / "mask.png")
    photo_size = (image.shape[1], image.shape[0])
    canvas = options.size or photo_size
    channel = get_channel(options.channel) if options.channel else AS_PHOTO
    transform = (
        Transform()
        if options.size is None
        else fit_transform(bbox=result.bbox, photo_size=photo_size, canvas_size=canvas, fill=fill_for(channel))
    )

    t = time.perf_counter()
    backgrounds = scenes.scenes(image=image, alpha=result.alpha, canvas=canvas, options=options)
    timings["scenes"] = time.perf_counter() - t
    progress("scenes")

    layer = ProductLayer.from_segmentation(result)
    variants = []
    t = time.perf_counter()
    for k, scene in enumerate(backgrounds):
        composed = compose(layer=layer, scene=scene, transform=transform, channel=channel)
        Image.fromarray(composed.image).save(out_dir / f"scene-{k}.png")
        variants.append(
            {
                "file": f"scene-{k}.png",
                "seed": options.seed + k,
                "lock_certificate": composed.certificate.to_dict(),
                "preflight": [check.to_dict() for check in composed.preflight],
                "preflight_passed": composed.preflight_passed,
            }
        )
    timings["compose_lock_preflight_write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started

    report = {
        "photo": str(path),
        "settings": {**asdict(options), "size": list(canvas), "model": scenes.name},
        "model": scenes.name,
        "cutout": {
            "backend": result.backend,
            "version": result.version,
            "bbox": list(result.bbox) if result.bbox else None,
            "locked_pixels": int(result.mask.sum()),
            "coverage": round(result.coverage, 6),
            "edge_confidence": round(result.edge_confidence, 6),
            "confident": result.confident,
            "notes": list(result.notes),
        },
        "transform": transform.to_dict(),
        "timings_s": {name: round(value, 4) for name, value in timings.items()},
        "variants": variants,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
