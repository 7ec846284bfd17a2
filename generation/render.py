"""One generation plan in, finished assets out: scenes from a backend, fitted to each channel's
canvas, the product composited and locked at full resolution, checked, encoded once with
the provenance mark. Plain values only; the Django task stores what this yields."""
from __future__ import annotations

import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import cv2
import numpy as np
from PIL import Image

from generation.compose import AS_PHOTO, Placement, compose, plan_placement
from generation.lock import LockCertificate, ProductLayer, SourceRecord, Transform, place_layer, verify_lock
from generation.preflight import ChannelSpec, get_channel
from generation.provenance import decode_png, encode_png, xmp_packet
from generation.registry import BACKENDS
from generation.verify import LOCK_KEYWORD, lock_recipe
#: Threads that finish scenes (at most one per core; each holds a canvas-sized image or two).
FINISH_THREADS = max(1, min(4, os.cpu_count() or 1))
#: The neutral grey behind the product in the backend's input (it is repainted).
NEUTRAL = (128, 128, 128)


@dataclass(frozen=True)
class LoraRef:
    name: str
    path: str
    weight: float
    sha256: str


@dataclass(frozen=True)
class RenderPlan:
    model: str
    backend: str
    prompt: str
    negative_prompt: str
    seeds: tuple[int, ...]
    channels: tuple[str, ...]
    steps: int
    guidance: float
    strength: float
    scheduler: str
    style: str | None = None
    palette: tuple[tuple[int, int, int], ...] = ()
    loras: tuple[LoraRef, ...] = ()
    software: str = "Vitrine"
    #: Only these variants become assets (a replay). The whole batch of `seeds` still runs:
    #: batched kernels round differently from single runs, so an exact replay is the batch.
    keep_variants: tuple[int, ...] | None = None


@dataclass(frozen=True, eq=False)
class RenderedAsset:
    channel: str
    variant: int
    seed: int
    png: bytes
    width: int
    height: int
    certificate: LockCertificate
    preflight: list[dict]
    preflight_passed: bool
    transform: Transform
    native_size: tuple[int, int] | None
    preview: bytes
    #: How the canvas and the product's scale were chosen (compose.plan_placement).
    placement: Placement | None = None
    background_colours: list[tuple[tuple[int, int, int], float]] = field(default_factory=list)
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.png).hexdigest())


# progress(fraction 0..1, message) -> True to cancel
Progress = Callable[[float, str], bool]


CUSTOM_SIZE = re.compile(r"(\d{2,5})x(\d{2,5})")
MAX_SIDE = 4472  # the storefront's limit per side
MAX_MEGAPIXELS = 20.0


def channel_spec(name: str) -> ChannelSpec:
    """A channel by name, "as-photo", or a custom canvas "WIDTHxHEIGHT"."""
    if name == AS_PHOTO.name:
        return AS_PHOTO
    if match := CUSTOM_SIZE.fullmatch(name):
        w, h = int(match.group(1)), int(match.group(2))
        if not (64 <= w <= MAX_SIDE and 64 <= h <= MAX_SIDE) or w * h > MAX_MEGAPIXELS * 1_000_000:
            raise KeyError(f"canvas {name} is outside 64–{MAX_SIDE} px per side and {MAX_MEGAPIXELS:g} MP")
        return ChannelSpec(name=name, title=f"{w}×{h}", width=w, height=h)
    return get_channel(name)


def native_size(backend: str, canvas: tuple[int, int]) -> tuple[int, int]:
    """The size the backend makes a scene at for this canvas: the canvas's aspect at the
    backend's training resolution (its ``native_pixels`` in the registry), in multiples of 64.
    Backends that work at any size (the bundled model; `stage`'s plain backdrop, which is not
    in the registry) make it at the canvas's own size."""
    spec = BACKENDS.get(backend)
    pixels = spec.native_pixels if spec is not None else None
    if pixels is None:
        return canvas
    w, h = canvas
    scale = (pixels / (w * h)) ** 0.5
    return max(64, int(round(w * scale / 64)) * 64), max(64, int(round(h * scale / 64)) * 64)


def _scaled(transform: Transform, ratio: float) -> Transform:
    return Transform(scale=float(f"{transform.scale * ratio:.6f}"), dx=int(round(transform.dx * ratio)), dy=int(round(transform.dy * ratio)))


def render(
    *,
    plan: RenderPlan,
    layer: ProductLayer,
    bbox: tuple[int, int, int, int] | None,
    backend,
    progress: Progress = lambda fraction, message: False,
    on_retry: Callable[[str], None] | None = None,
    previews: bool = True,
    source: SourceRecord = SourceRecord(),
) -> Iterator[RenderedAsset]:
    """Yield one asset per (channel, seed), in order. Raises GenerationCancelled when
    `progress` asks to stop.

    Finishing each scene (fit, lock, checks, PNG encode, certificate) runs on helper threads,
    one variant per thread, while the backend makes the next channel's batch: the accelerator
    does not wait for the CPU work, and the CPU work uses every core (cv2, numpy and zlib
    release the GIL)."""
    from generation.pipelines.base import GenerationCancelled, SceneRequest, generate_with_oom_retry

    photo_size = (layer.rgb.shape[1], layer.rgb.shape[0])
    specs = [channel_spec(name) for name in plan.channels]
    with_model = [spec for spec in specs if not spec.white_background]
    done_steps, total_steps = 0, max(1, len(with_model) * plan.steps)

    with ThreadPoolExecutor(max_workers=FINISH_THREADS, thread_name_prefix="vitrine-finish") as finisher:
        in_flight: list = []
        for spec in specs:
            placement = plan_placement(channel=spec, bbox=bbox, photo_size=photo_size)
            canvas, transform = placement.canvas, placement.transform
            native = None
            if spec.white_background:
                # The channel's rule is pure white around the product: no model is asked.
                scenes = [np.full((canvas[1], canvas[0], 3), 255, np.uint8) for _ in plan.seeds]
            else:
                native = native_size(plan.backend, canvas)
                native_transform = _scaled(transform, native[0] / canvas[0])
                placed = place_layer(layer, native_transform, native)
                init = np.empty((native[1], native[0], 3), np.uint8)
                init[:] = NEUTRAL
                init[placed.mask] = placed.rgb[placed.mask]
                request = SceneRequest(
                    image=init, mask=placed.mask, prompt=plan.prompt, negative_prompt=plan.negative_prompt,
                    seeds=plan.seeds, steps=plan.steps, guidance=plan.guidance, strength=plan.strength,
                    scheduler=plan.scheduler, style=plan.style, palette=plan.palette,
                    loras=tuple(_lora_spec(lora) for lora in plan.loras),
                )
                offset = done_steps

                def step(i: int, n: int, offset=offset, name=spec.title) -> bool:
                    return progress((offset + (i + 1) * plan.steps / max(n, 1)) / total_steps, f"{name}: step {i + 1} of {n}")

                if progress(done_steps / total_steps, f"{spec.title}: generating {len(plan.seeds)} scene(s)"):
                    raise GenerationCancelled(0, plan.steps)
                scenes = generate_with_oom_retry(backend, request, callback=step, on_retry=on_retry)
                done_steps += plan.steps
            for future in in_flight:
                yield future.result()
            in_flight = [
                finisher.submit(
                    _finish, plan=plan, layer=layer, spec=spec, canvas=canvas, transform=transform, native=native,
                    variant=variant, seed=seed, scene=scene, preview=previews, source=source, placement=placement,
                )
                for variant, (seed, scene) in enumerate(zip(plan.seeds, scenes))
                if plan.keep_variants is None or variant in plan.keep_variants
            ]
        for future in in_flight:
            yield future.result()


def _finish(*, plan, layer, spec, canvas, transform, native, variant, seed, scene, preview, source, placement) -> RenderedAsset:
    if scene.shape[:2] != (canvas[1], canvas[0]):
        scene = cv2.resize(scene, canvas, interpolation=cv2.INTER_CUBIC if canvas[0] > scene.shape[1] else cv2.INTER_AREA)
    composed = compose(layer=layer, scene=scene, transform=transform, channel=spec)
    claimed = composed.certificate.with_source(source)
    png = encode_png(
        composed.image,
        xmp=xmp_packet(software=plan.software, extra={"model": plan.model, "seed": str(seed), "channel": spec.name}),
        texts={LOCK_KEYWORD: lock_recipe(certificate=claimed.to_dict(), mask=layer.mask)},
        certificate=claimed.to_dict(), software=plan.software,  # signed with Content Credentials (C2PA)
    )
    # Certify what is delivered: the decoded file, not the array it came from.
    certificate = verify_lock(image=decode_png(png), layer=layer, transform=transform).require().with_source(source)
    if certificate != claimed:
        raise AssertionError("the delivered file's certificate differs from the one embedded in it")
    return RenderedAsset(
        channel=spec.name, variant=variant, seed=seed, png=png, width=canvas[0], height=canvas[1],
        certificate=certificate, preflight=[c.to_dict() for c in composed.preflight],
        preflight_passed=composed.preflight_passed, transform=transform, native_size=native,
        preview=encode_preview(composed.image) if preview else b"", background_colours=composed.background_colours,
        placement=placement,
    )


PREVIEW_SIDE = 768


def encode_preview(image: np.ndarray) -> bytes:
    """A small WebP for galleries (never delivered: the PNG is the asset)."""
    h, w = image.shape[:2]
    scale = min(1.0, PREVIEW_SIDE / max(h, w))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else image
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, format="WEBP", quality=82, method=4)
    return buffer.getvalue()


def _lora_spec(lora: LoraRef):
    from generation.pipelines.base import LoraSpec

    return LoraSpec(name=lora.name, path=lora.path, weight=lora.weight)
