"""``flux-fill``: FLUX.1 Fill through diffusers."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline

from ._diffusers import DiffusersInpaintBackend
from .base import SceneRequest

__all__ = ["FluxFillBackend"]


class FluxFillBackend(DiffusersInpaintBackend):
    """Scenes from a ``FluxFillPipeline`` folder.

    Components: ``transformer``, ``vae``, ``text_encoder`` (CLIP) + ``tokenizer``,
    ``text_encoder_2`` (T5) + ``tokenizer_2``, ``scheduler``; bf16 on CUDA (FLUX overflows in
    fp16). FLUX.1 Fill is guidance-distilled: ``guidance`` is the embedded guidance (the model
    card uses 30) and there is no negative prompt, so ``negative_prompt`` is ignored. It is a
    flow-matching model: only the flow-matching Euler scheduler applies (``"euler"``); DDIM and
    DPM++ are defined for noise-prediction models and are refused.
    """

    name: ClassVar[str] = "flux-fill"
    pipeline_class: ClassVar[type] = FluxFillPipeline
    cuda_dtype: ClassVar[torch.dtype] = torch.bfloat16
    denoiser: ClassVar[str] = "transformer"
    schedulers: ClassVar[dict[str, tuple[type, dict[str, Any]]]] = {
        "euler": (FlowMatchEulerDiscreteScheduler, {}),
    }
    # FLUX packs 2x2 latent patches into one token.
    latent_multiple: ClassVar[int] = 2
    #: T5 prompt length; 512 is what FLUX.1 was trained with.
    max_sequence_length: ClassVar[int] = 512

    def pipeline_kwargs(self, request: SceneRequest, batch: int) -> dict[str, Any]:
        return {"prompt": [request.prompt] * batch, "max_sequence_length": self.max_sequence_length}
