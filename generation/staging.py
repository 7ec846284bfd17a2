"""`manage.py stage`: cutout + scenes + lock + preflight for photos on disk, no server.

A library function per photo; the management command is a loop with a progress bar. Scenes
go through the same `render` as the generation task, so what `stage` shows is what
Vitrine ships."""
from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from generation.decoding import validate_image
from generation.compose import AS_PHOTO
from generation.imaging import array_sha256
from generation.lock import ProductLayer, SourceRecord, backdrop_fill, estimate_backdrop_color
from generation.pipelines.base import SamplingRules, SceneRequest, check_request
from generation.prompts import build_prompts
from generation.provenance import PNG_COMPRESS_LEVEL
from generation.registry import get_backend, get_model, load_scene_backend
from generation.render import RenderPlan, render
from generation.segmentation import DEFAULT_SEGMENTER, Segmenter, cutout_rgba, lock_mask_image

# The stage command reads any photo the upload rules accept, at full size.
STAGE_MAX_BYTES = 500 * 1024 * 1024
STAGE_MAX_PIXELS = 200_000_000


@dataclass(frozen=True)
class StageOptions:
    """What `manage.py stage` was asked for. ``style`` (the command's ``--preset``) is the
    bundled model's scene class, and words in the prompt for every model."""

    segmenter: str = DEFAULT_SEGMENTER
    model: str = "backdrop-mini"
    style: str | None = None
    prompt: str | None = None
    variants: int = 1
    seed: int = 0
    size: tuple[int, int] | None = None
    channel: str | None = None


class PlainBackdrop:
    """model "none": the lock compositor's own fill, a plain backdrop in one colour. It is not
    in the registry (no folder to load); its rules say it samples nothing."""

    name = "none"
    rules = SamplingRules(
        title="The plain backdrop", schedulers=("ddim",), scheduler="ddim", steps=1, guidance=1.0,
        guidance_range=(1.0, 1.0), strength_range=(1.0, 1.0),
    )

    def __init__(self, colour: tuple[int, int, int]):
        self.colour = colour

    def generate(self, request: SceneRequest, *, callback=None) -> list[np.ndarray]:
        check_request(request, self.rules)
        h, w = request.mask.shape
        return [backdrop_fill(size=(w, h), color=self.colour) for _ in request.seeds]

    def describe(self) -> dict:
        return {"backend": "none", "model": "none", "colour": list(self.colour)}


def decode_photo(path: Path) -> tuple[np.ndarray, dict]:
    """Decode a photo with the upload rules (content allowlist, full decode, EXIF upright,
    sRGB); the pixels and the decode's colour record (for the lock certificate)."""
    with path.open("rb") as fh:
        accepted = validate_image(
            fh, size_bytes=path.stat().st_size, max_bytes=STAGE_MAX_BYTES, max_pixels=STAGE_MAX_PIXELS,
            working_max_side=100_000,
        )
    return np.asarray(Image.open(io.BytesIO(accepted.working_png)).convert("RGB")), accepted.colour


def stage_plan(options: StageOptions) -> RenderPlan:
    backend = "none" if options.model == "none" else get_model(options.model).backend
    rules = PlainBackdrop.rules if backend == "none" else get_backend(backend).rules
    scene = {"prompt": f"{options.style.replace('-', ' ')} product photography scene" if options.style else "studio product photography scene"}
    prompt, negative = build_prompts(preset=scene, brand_kit={}, user_prompt=options.prompt or "", banned_terms=[])
    if options.size is not None:
        channel = f"{options.size[0]}x{options.size[1]}"
        if options.channel:
            channel = options.channel
    else:
        channel = options.channel or AS_PHOTO.name
    return RenderPlan(
        model=options.model, backend=backend, prompt=prompt, negative_prompt=negative or "text, watermark, blurry",
        seeds=tuple(options.seed + k for k in range(options.variants)), channels=(channel,),
        steps=rules.steps, guidance=rules.guidance, strength=rules.strength, scheduler=rules.scheduler,
        style=options.style if backend == "backdrop" else None,
    )


def stage_photo(
    *, path: Path, out_dir: Path, segmenter: Segmenter, options: StageOptions,
    progress: Callable[[str], None] = lambda step: None,
) -> dict:
    """Stage one photo into `out_dir` (created); return the report also written as report.json."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    image, colour = decode_photo(path)
    timings["decode"] = time.perf_counter() - started
    progress("decoded")

    t = time.perf_counter()
    result = segmenter.segment(image)
    timings["segment"] = time.perf_counter() - t
    progress("segmented")

    out_dir.mkdir(parents=True, exist_ok=True)
    cutout_rgba(result).save(out_dir / "cutout.png", compress_level=PNG_COMPRESS_LEVEL)
    lock_mask_image(result).save(out_dir / "mask.png", compress_level=PNG_COMPRESS_LEVEL)

    plan = stage_plan(options)
    t = time.perf_counter()
    backend = PlainBackdrop(estimate_backdrop_color(image, result.alpha)) if options.model == "none" else load_scene_backend(options.model)
    timings["model_load"] = time.perf_counter() - t

    variants = []
    t = time.perf_counter()

    def on_progress(fraction: float, message: str) -> bool:
        progress(message)
        return False

    layer = ProductLayer.from_segmentation(result)
    # stage decodes with no size cap (working_max_side above), so the working copy is full size.
    source = SourceRecord(
        original_sha256=hashlib.sha256(path.read_bytes()).hexdigest(), working_sha256=array_sha256(image), colour_conversion=colour
    )
    for rendered in render(plan=plan, layer=layer, bbox=result.bbox, backend=backend, progress=on_progress, previews=False, source=source):
        (out_dir / f"scene-{rendered.variant}.png").write_bytes(rendered.png)
        variants.append(
            {
                "file": f"scene-{rendered.variant}.png",
                "seed": rendered.seed,
                "channel": rendered.channel,
                "size": [rendered.width, rendered.height],
                "transform": rendered.transform.to_dict(),
                "lock_certificate": rendered.certificate.to_dict(),
                "preflight": rendered.preflight,
                "preflight_passed": rendered.preflight_passed,
            }
        )
    timings["scenes_lock_preflight_write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started

    report = {
        "photo": str(path),
        "settings": {**asdict(options), "size": variants[0]["size"] if variants else None, "prompt_used": plan.prompt},
        "model": options.model,
        "backend": backend.describe(),
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
        "timings_s": {name: round(value, 4) for name, value in timings.items()},
        "variants": variants,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
