"""What a loaded diffusers pipeline gets on the device it runs on: the GPU settings, in one place.

On CUDA (:func:`optimise_for_device`):

* TF32 matmuls and convolutions (``torch.backends.cuda.matmul.allow_tf32``, cuDNN's): the
  fp32 parts left (the SDXL VAE when it must upcast, schedulers) run on tensor cores;
* ``channels_last`` for every component with 2-D convolutions (the UNet, the VAE): cuDNN's
  fast convolution layout. FLUX's transformer is all linear layers; the layout means nothing
  to it and it is left alone;
* fused QKV projections in the denoiser (one matmul instead of three). A LoRA adapter
  targets ``to_q``/``to_k``/``to_v`` separately, so the backend unfuses before it loads the
  first adapter (:meth:`DiffusersInpaintBackend._use_loras`);
* the fp16-safe SDXL VAE (``madebyollin/sdxl-vae-fp16-fix``) in place of the folder's own,
  when its folder is installed (registry: ``ModelSpec.fp16_vae``): SDXL's own VAE overflows in
  fp16, so the pipeline otherwise upcasts it to fp32 for every decode;
* ``torch.compile`` of the denoiser when asked (``VITRINE_TORCH_COMPILE``), in place, with
  ``VITRINE_TORCH_COMPILE_MODE`` (default ``max-autotune-no-cudagraphs``: CUDA graphs would
  pin the LoRA adapters and the scheduler's tensors). Buckets keep its shapes fixed.

VAE slicing for batches above :data:`VAE_SLICING_ABOVE` is switched per call by the backend.
On CPU nothing that changes results is done: only the compile, when asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = ["VAE_SLICING_ABOVE", "Optimisations", "compile_mode", "optimise_for_device", "wants_compile"]

#: Decode the VAE one image at a time above this batch (the decode's activations at 1024²
#: batch 8 are several GB; one at a time costs a few percent of the decode).
VAE_SLICING_ABOVE = 4
DEFAULT_COMPILE_MODE = "max-autotune-no-cudagraphs"


@dataclass
class Optimisations:
    """What :func:`optimise_for_device` did (the recipe's ``describe()`` and the logs say it)."""

    tf32: bool = False
    channels_last: list[str] = field(default_factory=list)
    fused_qkv: bool = False
    fp16_vae: str | None = None
    compiled: str | None = None  # the compile mode, when compiled
    vae_slicing_above: int | None = None

    def to_dict(self) -> dict:
        return {
            "tf32": self.tf32,
            "channels_last": list(self.channels_last),
            "fused_qkv": self.fused_qkv,
            "fp16_vae": self.fp16_vae,
            "compiled": self.compiled,
            "vae_slicing_above": self.vae_slicing_above,
        }


def wants_compile() -> bool:
    return os.environ.get("VITRINE_TORCH_COMPILE", "").lower() in ("1", "true", "yes")


def compile_mode() -> str:
    return os.environ.get("VITRINE_TORCH_COMPILE_MODE") or DEFAULT_COMPILE_MODE


def _has_conv2d(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in module.modules())


def optimise_for_device(
    pipe,
    device: str | torch.device,
    *,
    denoiser: str,
    compile: bool = False,
    fp16_vae: str | os.PathLike[str] | None = None,
    fuse_qkv: bool = True,
) -> Optimisations:
    """Set up ``pipe`` (already in its dtype) for ``device``; returns what was done.

    ``device`` decides: ``"cuda"`` applies the list in the module's docstring, anything else
    only the compile (when ``compile``). Call it before the pipeline moves to the device (the
    VAE swap loads on the CPU in the pipeline's dtype). ``fp16_vae`` is a local folder holding
    an ``AutoencoderKL``; it is used only on CUDA in fp16 and only when it exists.
    """
    done = Optimisations()
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        done.tf32 = True
        vae = getattr(pipe, "vae", None)
        if fp16_vae is not None and vae is not None and vae.dtype == torch.float16 and (Path(fp16_vae) / "config.json").is_file():
            from diffusers import AutoencoderKL

            fixed = AutoencoderKL.from_pretrained(fp16_vae, dtype=torch.float16, local_files_only=True)
            # The fix's config already says force_upcast False; say it here too, since the
            # pipeline reads the flag from the VAE it has.
            fixed.register_to_config(force_upcast=False)
            pipe.register_modules(vae=fixed)
            done.fp16_vae = str(fp16_vae)
        for name in (denoiser, "vae"):
            module = getattr(pipe, name, None)
            if isinstance(module, torch.nn.Module) and _has_conv2d(module):
                module.to(memory_format=torch.channels_last)
                done.channels_last.append(name)
        model = getattr(pipe, denoiser)
        if fuse_qkv and hasattr(model, "fuse_qkv_projections"):
            try:
                model.fuse_qkv_projections()
                done.fused_qkv = True
            except ValueError:  # added KV projections (IP-adapter style): not fusable
                done.fused_qkv = False
        done.vae_slicing_above = VAE_SLICING_ABOVE
    if compile:
        mode = compile_mode()
        # nn.Module.compile() keeps the module's class, so LoRA loading still finds it.
        getattr(pipe, denoiser).compile(mode=mode)
        done.compiled = mode
    return done
