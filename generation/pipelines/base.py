"""What every scene backend takes and returns; importable without torch.

A scene backend paints a scene around a product that is already placed on the canvas. It
returns raw scenes: the product region of its output is *not* the product (a VAE round trip
changes it); :mod:`generation.lock` composites the product back afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

__all__ = [
    "SCHEDULERS",
    "GenerationCancelled",
    "LoraSpec",
    "OutOfMemory",
    "SamplingRules",
    "SceneBackend",
    "SceneRequest",
    "StepCallback",
    "check_request",
    "generate_with_oom_retry",
    "is_out_of_memory",
    "needs_cpu_offload",
    "pad_to_multiple",
]

#: Scheduler names a request may ask for, with the title people know them by. Each backend's
#: :class:`SamplingRules` allow some of them (flow-matching models have no DDIM), and each
#: backend maps the ones it allows onto its own scheduler classes.
SCHEDULERS: dict[str, str] = {"euler": "Euler", "ddim": "DDIM", "dpmpp": "DPM++ 2M"}


@dataclass(frozen=True)
class SamplingRules:
    """What one scene backend accepts, and what it uses when nobody says.

    Torch-free, so that the web process refuses a preset at save time with the same rules the
    worker checks each request with. Ranges are inclusive, except that strength must be above
    the low end (strength 0 would paint nothing); a range whose ends are equal fixes the value
    (the backend does not use it).

    Attributes:
        title: how messages name the backend, e.g. ``"FLUX.1 Fill"``.
        schedulers: the names of :data:`SCHEDULERS` the backend can sample with.
        scheduler, steps, guidance, strength: the defaults.
        guidance_kind: what ``guidance`` means to this backend, in words.
        guidance_note: said after a guidance out of range, when the usual mistake needs a word.
    """

    title: str
    schedulers: tuple[str, ...]
    scheduler: str
    steps: int
    guidance: float
    strength: float = 1.0
    steps_range: tuple[int, int] = (1, 150)
    guidance_range: tuple[float, float] = (1.0, 20.0)
    strength_range: tuple[float, float] = (0.0, 1.0)
    guidance_kind: str = "classifier-free guidance"
    guidance_note: str = ""

    def __post_init__(self) -> None:
        unknown = [name for name in self.schedulers if name not in SCHEDULERS]
        if unknown or not self.schedulers:
            raise ValueError(f"{self.title}: schedulers must be some of {', '.join(SCHEDULERS)}, got {self.schedulers}")
        defaults = self.problems(scheduler=self.scheduler, steps=self.steps, guidance=self.guidance, strength=self.strength)
        if defaults:
            raise ValueError(f"{self.title}: the defaults break the rules: {defaults}")

    def problems(self, *, scheduler: str, steps: int, guidance: float, strength: float) -> dict[str, str]:
        """``{field: what is wrong, in words a merchant can act on}``; empty when all is well."""
        found = {}
        if scheduler not in self.schedulers:
            found["scheduler"] = self._scheduler_problem(scheduler)
        low, high = self.steps_range
        if not low <= steps <= high:
            found["steps"] = (
                f"{self.title} takes {low} to {high} steps ({self.steps} is typical); {steps} is outside that range."
            )
        low, high = self.guidance_range
        if low == high and guidance != low:
            found["guidance"] = f"{self.title} does not use guidance; leave it at {low:g} (it is {guidance:g})."
        elif not low <= guidance <= high:
            found["guidance"] = " ".join(filter(None, (
                f"{self.title} uses {self.guidance_kind} between {low:g} and {high:g} ({self.guidance:g} is typical);"
                f" {guidance:g} is outside that range.",
                self.guidance_note,
            )))
        low, high = self.strength_range
        if low == high and strength != low:
            found["strength"] = f"{self.title} always paints the whole scene; leave strength at {low:g} (it is {strength:g})."
        elif low != high and not low < strength <= high:
            found["strength"] = (
                f"{self.title} takes a strength above {low:g} and at most {high:g} ({high:g} repaints everything"
                f" but the product); {strength:g} is outside that range."
            )
        return found

    def _scheduler_problem(self, scheduler: str) -> str:
        if scheduler not in SCHEDULERS:
            return f"There is no scheduler called '{scheduler}'. Choose one of: {', '.join(self.schedulers)}."
        if len(self.schedulers) == 1:
            return f"{self.title} can only sample with {self.schedulers[0]}; choose it instead of {scheduler}."
        return f"{self.title} can sample with {', '.join(self.schedulers)}; {scheduler} is not one of them."


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA adapter: ``path`` is a local folder or a ``.safetensors`` file."""

    name: str
    path: str
    weight: float = 1.0


@dataclass(frozen=True, eq=False)
class SceneRequest:
    """One generation: a canvas, what to keep, what to paint, and how.

    Attributes:
        image: ``uint8 (H, W, 3)``; the canvas with the product already placed. Whatever lies
            outside the product may be anything: it is repainted.
        mask: ``bool (H, W)``; ``True`` is the product (kept), everything else is generated.
        seeds: one variant per seed; the variants run as one batch, each with its own
            generator, so variant ``k`` is the same whether it ran alone or in a batch.
        steps, guidance, strength, scheduler: checked against the backend's
            :class:`SamplingRules`; ``scheduler`` is a name in :data:`SCHEDULERS`.
        style, palette: used by the bundled model (``style`` is its scene class, e.g.
            ``"marble"``); diffusers backends ignore them.
    """

    image: np.ndarray
    mask: np.ndarray
    prompt: str
    negative_prompt: str = ""
    seeds: tuple[int, ...] = (0,)
    steps: int = 30
    guidance: float = 7.0
    strength: float = 1.0
    scheduler: str = "euler"
    loras: tuple[LoraSpec, ...] = ()
    style: str | None = None
    palette: tuple[tuple[int, int, int], ...] = ()


#: ``callback(step_index, num_steps) -> bool | None``, called after each denoising step with
#: ``step_index`` in ``0 .. num_steps - 1``; returning ``True`` cancels the run.
StepCallback = Callable[[int, int], "bool | None"]


class GenerationCancelled(Exception):
    """The step callback asked the backend to stop."""

    def __init__(self, step_index: int, num_steps: int):
        super().__init__(f"cancelled after step {step_index + 1} of {num_steps}")
        self.step_index = step_index
        self.num_steps = num_steps


class OutOfMemory(Exception):
    """The accelerator ran out of memory (normalised from torch's several ways of saying so)."""


class SceneBackend(Protocol):
    """A model that paints scenes around a placed product; ``generate`` refuses a request its
    ``rules`` do not allow (:func:`check_request`)."""

    name: str
    rules: SamplingRules

    def generate(
        self, request: SceneRequest, *, callback: StepCallback | None = None
    ) -> list[np.ndarray]:
        """One ``uint8 (H, W, 3)`` scene per seed, in seed order, at the request's size."""
        ...

    def describe(self) -> dict:
        """Recipe facts for reproducibility: backend, model folder, weight hashes, versions."""
        ...


def check_request(request: SceneRequest, rules: SamplingRules) -> None:
    """Raise ``ValueError`` naming what is wrong with ``request`` for a backend with ``rules``."""
    image, mask = request.image, request.mask
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be a uint8 (H, W, 3) array, got {_describe_array(image)}")
    if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.shape != image.shape[:2]:
        raise ValueError(
            f"mask must be a bool array of the image's shape {image.shape[:2]}, got {_describe_array(mask)}"
        )
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"image must be at least 8x8 pixels, got {image.shape[1]}x{image.shape[0]}")
    if not request.seeds:
        raise ValueError("seeds must name at least one seed (one variant per seed)")
    problems = rules.problems(
        scheduler=request.scheduler, steps=request.steps, guidance=request.guidance, strength=request.strength
    )
    if problems:
        raise ValueError(" ".join(problems.values()))
    names = [lora.name for lora in request.loras]
    if len(set(names)) != len(names):
        raise ValueError(f"LoRA names must be unique within a request, got {names}")


def _describe_array(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {value.shape}"
    return type(value).__name__


def pad_to_multiple(
    image: np.ndarray, mask: np.ndarray, multiple: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``image`` and ``mask`` at the bottom and right up to sizes divisible by ``multiple``.

    Padding rather than resizing keeps the product's pixels on the model's grid; the padded
    strip repeats the edge pixels and is marked *not product*, so it is generated and cropped
    away afterwards.
    """
    height, width = mask.shape
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w:
        return image, mask
    image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    mask = np.pad(mask, ((0, pad_h), (0, pad_w)), mode="constant", constant_values=False)
    return image, mask


def is_out_of_memory(error: BaseException) -> bool:
    """True for torch's out-of-memory errors (``torch.cuda.OutOfMemoryError`` is a RuntimeError)."""
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _empty_accelerator_cache() -> None:
    import sys

    torch = sys.modules.get("torch")  # a backend that ran has imported it; never import it here
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def generate_with_oom_retry(
    backend: SceneBackend,
    request: SceneRequest,
    *,
    callback: StepCallback | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> list[np.ndarray]:
    """Run ``request`` once; on :class:`OutOfMemory` retry once with half-size batches.

    The retry splits the seeds into consecutive batches of ``ceil(len(seeds) / 2)`` (a single
    seed is retried alone, after the cache is emptied). ``on_retry(reason)`` is called before
    the retry; the callback then sees each batch's steps in turn. A second ``OutOfMemory``
    propagates. Because each seed has its own generator, the results equal a single run's.
    """
    try:
        return backend.generate(request, callback=callback)
    except OutOfMemory as error:
        reason = str(error) or "out of memory"
    if on_retry is not None:
        on_retry(reason)
    _empty_accelerator_cache()
    size = math.ceil(len(request.seeds) / 2)
    images: list[np.ndarray] = []
    for start in range(0, len(request.seeds), size):
        part = replace(request, seeds=tuple(request.seeds[start : start + size]))
        images.extend(backend.generate(part, callback=callback))
    return images


#: Room a pipeline needs on the card beyond its weights: activations at 1024² and batch 4,
#: the CUDA context and the allocator's fragmentation.
OFFLOAD_HEADROOM_BYTES = 6 * 1024**3


def needs_cpu_offload(weight_bytes: int, free_bytes: int, *, headroom: int = OFFLOAD_HEADROOM_BYTES) -> bool:
    """Whether a pipeline whose modules hold ``weight_bytes`` must run with model CPU offload
    on a card with ``free_bytes`` free: true unless the weights and the headroom both fit.

    FLUX.1 Fill in bf16 (transformer ~23.8 GB + T5 ~9.5 GB + CLIP and VAE) does not fit a
    24 GB card; with offload only the component running is on the card.
    """
    return weight_bytes + headroom > free_bytes
