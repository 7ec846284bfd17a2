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

import diffusers  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402

from generation.models_store import weight_digests  # noqa: E402
from generation.registry import get_backend  # noqa: E402

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

    ``generate`` runs numbered steps after :func:`check_request`: pad to the model's grid,
    select the scheduler and LoRA adapters, build one generator per seed, call the pipeline
    once for the whole batch, crop back to the request's size. The pipeline stays loaded
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
    ):
        self.pipe = pipe
        self.pipe.set_progress_bar_config(disable=True)
        self.folder = folder
        self.weights_sha256 = dict(weights_sha256 or {})
        self.compiled = compiled
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
    ) -> DiffusersInpaintBackend:
        """Load the pipeline saved in the local folder ``path`` (``save_pretrained`` layout).

        The weights load in ``dtype``; by default ``cuda_dtype`` (fp16, bf16 for FLUX) on
        CUDA and fp32 on CPU (``dtype=``: diffusers 0.42 reads it and deprecates
        ``torch_dtype``; releases before it ignore ``dtype``, so pyproject.toml pins 0.42 as
        the floor). On CUDA, when the weights plus working
        room do not fit the card's free memory (``free_bytes``, default: what CUDA reports),
        the pipeline runs with model CPU offload instead of moving wholesale to the card.
        ``compile`` (default: the ``VITRINE_TORCH_COMPILE`` environment variable) compiles the
        denoiser in place.

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
        offload = False
        if on_cuda:
            if free_bytes is None:
                free_bytes, _total = torch.cuda.mem_get_info(torch.device(device))
            offload = needs_cpu_offload(module_bytes(pipe), free_bytes)
        if offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if compile is None:
            compile = os.environ.get("VITRINE_TORCH_COMPILE", "").lower() in ("1", "true", "yes")
        if compile:
            # nn.Module.compile() keeps the module's class, so LoRA loading still finds it.
            getattr(pipe, cls.denoiser).compile()
        backend = cls(pipe, folder=folder, weights_sha256=weights, compiled=compile)
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

        # 2. Pad to the model's grid; the padding is generated and cropped away in step 7.
        image, keep = pad_to_multiple(request.image, request.mask, self.size_multiple)
        canvas = PIL.Image.fromarray(image, "RGB")
        # diffusers' inpainting masks are white where the model paints: everything but the product.
        repaint = PIL.Image.fromarray(np.where(keep, 0, 255).astype(np.uint8), "L")

        # 3. Scheduler and adapters for this request.
        self._use_scheduler(request.scheduler)
        self._use_loras(request.loras)

        # 4. One generator per seed: variant k depends on seeds[k] only, batched or not.
        device = self.device
        generators = [torch.Generator(device).manual_seed(int(seed)) for seed in request.seeds]
        batch = len(generators)

        # 5. Progress and cancellation.
        def on_step_end(pipe: Any, step_index: int, timestep: Any, tensors: dict) -> dict:
            num_steps = pipe.num_timesteps
            if callback is not None and callback(step_index, num_steps):
                raise GenerationCancelled(step_index, num_steps)
            return {}

        # 6. One pipeline call for the whole batch. Images are passed per variant (not once)
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
            images = self.pipe(**kwargs).images
        except RuntimeError as error:  # torch.OutOfMemoryError is a RuntimeError
            if is_out_of_memory(error):
                raise OutOfMemory(str(error)) from error
            raise

        # 7. Back to uint8 at the request's size.
        return [to_uint8(np.asarray(scene))[:height, :width].copy() for scene in images]

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
        }

