"""``sdxl-inpaint``: Stable Diffusion XL inpainting checkpoints through diffusers."""

from __future__ import annotations

from typing import ClassVar

import torch
from diffusers import StableDiffusionXLInpaintPipeline

from ._diffusers import DiffusersInpaintBackend

__all__ = ["StableDiffusionXLInpaintBackend"]


class StableDiffusionXLInpaintBackend(DiffusersInpaintBackend):
    """Scenes from a ``StableDiffusionXLInpaintPipeline`` folder.

    Components: ``unet``, ``vae``, ``text_encoder`` + ``text_encoder_2``, ``tokenizer`` +
    ``tokenizer_2``, ``scheduler``; fp16 on CUDA (the pipeline upcasts the VAE when its config
    asks, as SDXL's fp32-only VAE does). Schedulers: euler, ddim, dpmpp (DPM++ 2M).
    """

    name: ClassVar[str] = "sdxl-inpaint"
    pipeline_class: ClassVar[type] = StableDiffusionXLInpaintPipeline
    cuda_dtype: ClassVar[torch.dtype] = torch.float16
    denoiser: ClassVar[str] = "unet"
