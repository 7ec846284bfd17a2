"""``sd-inpaint``: Stable Diffusion 1.5 / 2 inpainting checkpoints through diffusers."""

from __future__ import annotations

from typing import ClassVar

import torch
from diffusers import StableDiffusionInpaintPipeline

from ._diffusers import DiffusersInpaintBackend

__all__ = ["StableDiffusionInpaintBackend"]


class StableDiffusionInpaintBackend(DiffusersInpaintBackend):
    """Scenes from a ``StableDiffusionInpaintPipeline`` folder (9-channel inpainting UNet).

    Components (diffusers' own): ``unet``, ``vae``, ``text_encoder``, ``tokenizer``,
    ``scheduler``; fp16 on CUDA. Schedulers: euler, ddim, dpmpp (DPM++ 2M).
    """

    name: ClassVar[str] = "sd-inpaint"
    pipeline_class: ClassVar[type] = StableDiffusionInpaintPipeline
    cuda_dtype: ClassVar[torch.dtype] = torch.float16
    denoiser: ClassVar[str] = "unet"
