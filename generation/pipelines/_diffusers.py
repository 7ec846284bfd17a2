"""What the diffusers inpainting backends share: loading, scheduling, LoRA, batching, errors.

Each backend module (``sd_inpaint``, ``sdxl_inpaint``, ``flux_fill``) is a small subclass of
:class:`DiffusersInpaintBackend` that names its diffusers pipeline class, its dtype on CUDA,
its scheduler classes and the keyword arguments its pipeline takes. What a request may ask of
each backend (schedulers, steps, guidance, strength) is its
:class:`~generation.pipelines.base.SamplingRules` in :mod:`generation.registry`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

# Weights only ever come from local folders; this keeps huggingface_hub from reaching out even
# for metadata, when it is imported here first. ``local_files_only=True`` below is what makes
# it hold regardless of import order.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2  # noqa: E402
import diffusers  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402

from generation.models_store import weight_digests  # noqa: E402
from generation.registry import get_backend  # noqa: E402

from .buckets import Bucket, Placement, buckets_for, nearest_bucket, place_in_bucket  # noqa: E402
from .optimise import Optimisations, optimise_for_device, wants_compile  # noqa: E402
from .base import (  # noqa: E402
    GenerationCancelled,
    LoraSpec,
    OutOfMemory,
    SamplingRules,
    SceneRequest,
    StepCallback,
    check_request,
    is_out_of_memory,
    needs_cpu_offload,
    pad_to_multiple,
)

__all__ = ["DiffusersInpaintBackend", "default_device", "module_bytes", "require_model_folder"]

def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def require_model_folder(folder: Path, backend: str) -> None:
    """Raise ``FileNotFoundError`` unless ``folder`` holds a diffusers pipeline."""
    if not (folder / "model_index.json").is_file():
        state = "has no model_index.json" if folder.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"{backend} model folder {folder} {state}; fetch the weights with "
            f"`python manage.py models pull {folder.name}` (models are never downloaded at run time)"
        )


def module_bytes(pipe: diffusers.DiffusionPipeline) -> int:
    """Bytes of every parameter and buffer of the pipeline's modules, as loaded."""
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(t.numel() * t.element_size() for t in (*component.parameters(), *component.buffers()))
    return total


def to_uint8(images: np.ndarray) -> np.ndarray:
    """diffusers' ``output_type="np"`` floats in ``[0, 1]`` to uint8, rounded as it rounds for PIL."""
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


class DiffusersInpaintBackend:
    """A scene backend around one loaded diffusers inpainting pipeline.

    ``generate`` runs numbered steps after :func:`check_request`: onto the model's grid (into
    the bucket of the nearest aspect when the backend has buckets, else padded to a multiple),
    select the scheduler and LoRA adapters, build one generator per seed, call the pipeline
    once for the whole batch (or in calls of the bucket's fixed batch), crop (and resize)
    back to the request's size. The pipeline stays loaded
    across requests (see :func:`generation.registry.load_scene_backend`); scheduler and adapters are
    set on every request so that nothing from one request leaks into the next. One request at
    a time per backend: the pipeline's scheduler and adapters are shared state.

    Subclasses set ``name``, ``pipeline_class``, ``cuda_dtype``, ``denoiser`` (the attribute
    that ``torch.compile`` compiles), ``schedulers`` and :meth:`pipeline_kwargs`; ``name`` is
    the backend's name in :data:`generation.registry.BACKENDS`, whose rules it checks.
    """

    name: ClassVar[str]
    pipeline_class: ClassVar[type[diffusers.DiffusionPipeline]]
    cuda_dtype: ClassVar[torch.dtype] = torch.float16
    denoiser: ClassVar[str] = "unet"
    #: request scheduler name → (diffusers scheduler class, config overrides); exactly the
    #: names the backend's rules allow.
    schedulers: ClassVar[dict[str, tuple[type, dict[str, Any]]]] = {
        "euler": (diffusers.EulerDiscreteScheduler, {}),
        "ddim": (diffusers.DDIMScheduler, {}),
        "dpmpp": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    }
    #: extra factor on the VAE's downsampling that input sizes must be divisible by
    latent_multiple: ClassVar[int] = 1
    #: LoRA adapters kept loaded between requests; beyond this the least recently used go.
    max_loaded_loras: int = 8

    def __init__(
        self,
        pipe: diffusers.DiffusionPipeline,
        *,
        folder: Path | None = None,
        weights_sha256: dict[str, str] | None = None,
        compiled: bool = False,
        buckets: tuple[Bucket, ...] = (),
        fixed_batch: bool = False,
        optimisations: Optimisations | None = None,
    ):
        self.pipe = pipe
        self.pipe.set_progress_bar_config(disable=True)
        self.folder = folder
        self.weights_sha256 = dict(weights_sha256 or {})
        self.compiled = compiled
        #: The sizes the pipeline runs at (:mod:`.buckets`); ``()``: each request at its own size.
        self.buckets = tuple(buckets)
        #: Pad every call to its bucket's batch (a compiled denoiser then never sees a new shape).
        self.fixed_batch = fixed_batch
        #: Halved after an out-of-memory error, so the retry's halves are not padded back up.
        self._batch_cap: int | None = None
        self.optimisations = optimisations or Optimisations()
        # Every request's scheduler is built from the folder's own config, never from the
        # previous request's scheduler, so swaps do not accumulate overrides.
        self._scheduler_config = pipe.scheduler.config
        self._loras: dict[str, str] = {}  # adapter name → path it was loaded from
        #: Model CPU offload: components move to the card one at a time (slower, less memory).
        self.cpu_offload = False

    @classmethod
    def from_folder(
        cls,
        path: str | os.PathLike[str],
        device: str | None = None,
        *,
        compile: bool | None = None,
        dtype: torch.dtype | str | None = None,
        free_bytes: int | None = None,
        buckets: tuple[Bucket, ...] | None = None,
        fixed_batch: bool | None = None,
        fp16_vae: str | os.PathLike[str] | None = None,
    ) -> DiffusersInpaintBackend:
        """Load the pipeline saved in the local folder ``path`` (``save_pretrained`` layout).

        The weights load in ``dtype``; by default ``cuda_dtype`` (fp16, bf16 for FLUX) on
        CUDA and fp32 on CPU (``dtype=``: diffusers 0.42 reads it and deprecates
        ``torch_dtype``; releases before it ignore ``dtype``, so pyproject.toml pins 0.42 as
        the floor). :func:`~.optimise.optimise_for_device` then sets the pipeline up for the
        device (TF32, ``channels_last``, fused QKV, the fp16-safe VAE from ``fp16_vae`` on
        CUDA; the compile anywhere). On CUDA, when the weights plus working
        room do not fit the card's free memory (``free_bytes``, default: what CUDA reports),
        the pipeline runs with model CPU offload instead of moving wholesale to the card.
        ``compile`` (default: the ``VITRINE_TORCH_COMPILE`` environment variable) compiles the
        denoiser in place. ``buckets`` (default: the backend's :data:`~.buckets.BUCKETS` on
        CUDA unless ``VITRINE_GPU_BUCKETS=0``, none on CPU) are the sizes it runs at;
        ``fixed_batch`` (default: when compiled) pads each call to its bucket's batch.

        Raises:
            FileNotFoundError: the folder, or its ``model_index.json``, is missing; the message
                names the folder and the command that fetches it.
        """
        folder = Path(path)
        require_model_folder(folder, cls.name)
        device = device or default_device()
        on_cuda = torch.device(device).type == "cuda"
        if dtype is None:
            dtype = cls.cuda_dtype if on_cuda else torch.float32
        elif isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        weights = weight_digests(folder)
        pipe = cls.pipeline_class.from_pretrained(folder, dtype=dtype, local_files_only=True)
        return cls.from_pipeline(
            pipe, device, compile=compile, free_bytes=free_bytes, buckets=buckets, fixed_batch=fixed_batch,
            fp16_vae=fp16_vae, folder=folder, weights_sha256=weights,
        )

    @classmethod
    def from_pipeline(
        cls,
        pipe: diffusers.DiffusionPipeline,
        device: str,
        *,
        compile: bool | None = None,
        free_bytes: int | None = None,
        buckets: tuple[Bucket, ...] | None = None,
        fixed_batch: bool | None = None,
        fp16_vae: str | os.PathLike[str] | None = None,
        folder: Path | None = None,
        weights_sha256: dict[str, str] | None = None,
    ) -> DiffusersInpaintBackend:
        """A backend around ``pipe`` (loaded, in its dtype, still on the CPU), set up for
        ``device`` as :meth:`from_folder` describes; ``bench/gpu_scenes.py`` passes pipelines
        built from the architecture configs (:mod:`.architectures`)."""
        on_cuda = torch.device(device).type == "cuda"
        if compile is None:
            compile = wants_compile()
        done = optimise_for_device(pipe, device, denoiser=cls.denoiser, compile=compile, fp16_vae=fp16_vae)
        offload = False
        if on_cuda:
            if free_bytes is None:
                free_bytes, _total = torch.cuda.mem_get_info(torch.device(device))
            offload = needs_cpu_offload(module_bytes(pipe), free_bytes)
        if offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if buckets is None:
            wanted = os.environ.get("VITRINE_GPU_BUCKETS", "").lower() not in ("0", "false", "no")
            buckets = buckets_for(cls.name) if on_cuda and wanted else ()
        if fixed_batch is None:
            fixed_batch = bool(compile)
        backend = cls(
            pipe, folder=folder, weights_sha256=weights_sha256, compiled=compile, buckets=buckets,
            fixed_batch=fixed_batch, optimisations=done,
        )
        backend.cpu_offload = offload
        return backend

    # -- the request ---------------------------------------------------------------------

    def generate(
        self, request: SceneRequest, *, callback: StepCallback | None = None
    ) -> list[np.ndarray]:
        """One ``uint8 (H, W, 3)`` scene per seed, in seed order, at the request's size.

        Raises:
            ValueError: a malformed request, or settings the backend's rules do not allow.
            GenerationCancelled: ``callback`` returned a true value.
            OutOfMemory: the accelerator ran out of memory.
            FileNotFoundError: a requested LoRA is missing.
        """
        # 1. Check inputs.
        check_request(request, self.rules)
        height, width = request.mask.shape

        # 2. Onto the model's grid: into the bucket of the nearest aspect (scaled to fit and
        # padded), else padded to a multiple of the grid. Padding is generated and cropped
        # away in step 7.
        placement = self.placement(width, height)
        if placement is None:
            image, keep = pad_to_multiple(request.image, request.mask, self.size_multiple)
        else:
            image, keep = _into_bucket(request.image, request.mask, placement)
        canvas = PIL.Image.fromarray(image, "RGB")
        # diffusers' inpainting masks are white where the model paints: everything but the product.
        repaint = PIL.Image.fromarray(np.where(keep, 0, 255).astype(np.uint8), "L")

        # 3. Scheduler and adapters for this request.
        self._use_scheduler(request.scheduler)
        self._use_loras(request.loras)

        # 4. Calls of a fixed batch when the bucket says so (short ones padded with
        # throw-away variants), else the whole request in one call.
        seeds = [int(seed) for seed in request.seeds]
        per_call = len(seeds)
        if placement is not None and self.fixed_batch:
            per_call = min(placement.bucket.batch, self._batch_cap or placement.bucket.batch)
        images: list[np.ndarray] = []
        for start in range(0, len(seeds), per_call):
            part = seeds[start : start + per_call]
            padded = part + [part[0]] * (per_call - len(part)) if placement is not None and self.fixed_batch else part
            images.extend(self._call(request, canvas, repaint, padded, callback)[: len(part)])

        # 7. Back to uint8 at the request's size.
        scenes = [to_uint8(np.asarray(scene)) for scene in images]
        if placement is None:
            return [scene[:height, :width].copy() for scene in scenes]
        return [_out_of_bucket(scene, placement, (width, height)) for scene in scenes]

    def _call(
        self, request: SceneRequest, canvas: PIL.Image.Image, repaint: PIL.Image.Image, seeds: list[int],
        callback: StepCallback | None,
    ) -> list[np.ndarray]:
        """One pipeline call for ``seeds`` (``output_type="np"`` floats)."""
        # 4. One generator per seed: variant k depends on seeds[k] only, batched or not.
        device = self.device
        generators = [torch.Generator(device).manual_seed(seed) for seed in seeds]
        batch = len(generators)

        # 5. Progress and cancellation.
        def on_step_end(pipe: Any, step_index: int, timestep: Any, tensors: dict) -> dict:
            num_steps = pipe.num_timesteps
            if callback is not None and callback(step_index, num_steps):
                raise GenerationCancelled(step_index, num_steps)
            return {}

        slicing_above = self.optimisations.vae_slicing_above
        vae = getattr(self.pipe, "vae", None)
        if slicing_above is not None and vae is not None:
            if batch > slicing_above:
                vae.enable_slicing()
            else:
                vae.disable_slicing()

        # 6. One pipeline call for the batch. Images are passed per variant (not once)
        # so that the VAE encodes sample k with generator k, exactly as a single run would.
        kwargs = self.pipeline_kwargs(request, batch)
        kwargs.update(
            image=[canvas] * batch,
            mask_image=[repaint] * batch,
            height=canvas.height,
            width=canvas.width,
            num_inference_steps=request.steps,
            guidance_scale=request.guidance,
            strength=request.strength,
            generator=generators,
            num_images_per_prompt=1,
            output_type="np",
            callback_on_step_end=on_step_end,
        )
        try:
            return list(self.pipe(**kwargs).images)
        except RuntimeError as error:  # torch.OutOfMemoryError is a RuntimeError
            if is_out_of_memory(error):
                # The retry (generate_with_oom_retry) runs halves: do not pad them back up.
                self._batch_cap = max(1, batch // 2)
                raise OutOfMemory(str(error)) from error
            raise

    def placement(self, width: int, height: int) -> Placement | None:
        """Where a ``width × height`` request runs: its bucket, or ``None`` (its own size)."""
        bucket = nearest_bucket(self.buckets, width, height)
        return None if bucket is None else place_in_bucket(bucket, width, height)

    def warm_up(self, *, steps: int = 2, buckets: tuple[Bucket, ...] | None = None) -> list[tuple[Bucket, float]]:
        """One small call per bucket (``buckets``, default the backend's own; on a backend
        without buckets, the registry's for its kind), so that loading, kernel selection and
        the compile happen now and not in the first job. Returns ``(bucket, seconds)`` each."""
        import time

        rules = self.rules
        timings = []
        for bucket in buckets or self.buckets or buckets_for(self.name):
            width, height = bucket.size
            image = np.full((height, width, 3), 128, np.uint8)
            mask = np.zeros((height, width), bool)
            mask[height // 4 : height - height // 4, width // 4 : width - width // 4] = True
            request = SceneRequest(
                image=image, mask=mask, prompt="warm-up", seeds=tuple(range(bucket.batch if self.fixed_batch else 1)),
                steps=max(steps, rules.steps_range[0]), guidance=rules.guidance, strength=rules.strength,
                scheduler=rules.scheduler,
            )
            started = time.perf_counter()
            self.generate(request)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            timings.append((bucket, time.perf_counter() - started))
        return timings

    def pipeline_kwargs(self, request: SceneRequest, batch: int) -> dict[str, Any]:
        """Prompt arguments for the pipeline call (one prompt per variant)."""
        return {
            "prompt": [request.prompt] * batch,
            "negative_prompt": [request.negative_prompt] * batch,
        }

    # -- state set per request -----------------------------------------------------------

    def _use_scheduler(self, name: str) -> None:
        scheduler_class, overrides = self.schedulers[name]
        self.pipe.scheduler = scheduler_class.from_config(self._scheduler_config, **overrides)

    def _use_loras(self, loras: tuple[LoraSpec, ...]) -> None:
        if loras and self.optimisations.fused_qkv:
            # An adapter wraps to_q/to_k/to_v one by one; fused attention would read the fused
            # to_qkv and skip it. Unfused for good: the adapters stay loaded for later requests.
            getattr(self.pipe, self.denoiser).unfuse_qkv_projections()
            self.optimisations.fused_qkv = False
        for lora in loras:
            if self._loras.get(lora.name) == lora.path:
                continue
            if lora.name in self._loras:  # same name, new file: replace the adapter
                self.pipe.delete_adapters(lora.name)
                del self._loras[lora.name]
            path = Path(lora.path)
            if not path.exists():
                raise FileNotFoundError(f"LoRA {lora.name!r} not found at {path}")
            if path.is_file():
                self.pipe.load_lora_weights(
                    str(path.parent), weight_name=path.name, adapter_name=lora.name, local_files_only=True
                )
            else:
                self.pipe.load_lora_weights(str(path), adapter_name=lora.name, local_files_only=True)
            self._loras[lora.name] = lora.path
        for lora in loras:  # most recently used last
            self._loras[lora.name] = self._loras.pop(lora.name)
        requested = {lora.name for lora in loras}
        stale = [name for name in self._loras if name not in requested]
        for name in stale[: max(0, len(self._loras) - self.max_loaded_loras)]:
            self.pipe.delete_adapters(name)
            del self._loras[name]
        # Adapters stay loaded for the next request that wants them, but only the requested
        # ones are active; with none requested the base weights run untouched.
        if loras:
            self.pipe.enable_lora()
            self.pipe.set_adapters([lora.name for lora in loras], adapter_weights=[lora.weight for lora in loras])
        elif self._loras:
            self.pipe.disable_lora()

    # -- facts ---------------------------------------------------------------------------

    @property
    def rules(self) -> SamplingRules:
        return get_backend(self.name).rules

    @property
    def device(self) -> torch.device:
        # With CPU offload the denoiser waits on the CPU; the pipeline still runs on the card.
        return torch.device(self.pipe._execution_device)

    @property
    def dtype(self) -> torch.dtype:
        return getattr(self.pipe, self.denoiser).dtype

    @property
    def size_multiple(self) -> int:
        """Input sizes are padded to a multiple of this (at least 8)."""
        return math.lcm(8, int(self.pipe.vae_scale_factor) * self.latent_multiple)

    def describe(self) -> dict:
        """Recipe facts: backend, pipeline class, model folder, weight sha256s, versions, dtype."""
        return {
            "backend": self.name,
            "pipeline": type(self.pipe).__name__,
            "model_folder": str(self.folder) if self.folder is not None else None,
            "weights_sha256": dict(self.weights_sha256),
            "diffusers": diffusers.__version__,
            "torch": torch.__version__,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "compiled": self.compiled,
            "cpu_offload": self.cpu_offload,
            "schedulers": sorted(self.schedulers),
            "buckets": [str(bucket) for bucket in self.buckets],
            "optimisations": self.optimisations.to_dict(),
        }



def _into_bucket(image: np.ndarray, mask: np.ndarray, placement: Placement) -> tuple[np.ndarray, np.ndarray]:
    """``image`` and ``mask`` scaled to ``placement.scaled`` and padded (bottom, right) to its
    bucket: the padding repeats the edge and is marked *not product*, so it is generated."""
    width, height = placement.scaled
    if (width, height) != (mask.shape[1], mask.shape[0]):
        shrink = width < mask.shape[1]
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    pad_h, pad_w = placement.bucket.height - height, placement.bucket.width - width
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        mask = np.pad(mask, ((0, pad_h), (0, pad_w)), mode="constant", constant_values=False)
    return image, mask


def _out_of_bucket(scene: np.ndarray, placement: Placement, size: tuple[int, int]) -> np.ndarray:
    """The bucket-sized ``scene`` cropped to the placed request and resized to ``size``."""
    width, height = placement.scaled
    scene = scene[:height, :width]
    if (width, height) == size:
        return scene.copy()
    grow = size[0] > width
    return cv2.resize(scene, size, interpolation=cv2.INTER_CUBIC if grow else cv2.INTER_AREA)
