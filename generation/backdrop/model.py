"""The backdrop-mini network: a small pixel-space ``UNet2DModel`` plus its input layout.

Input channels, in order: the noisy image (3), the known-region mask (1, 1 = product), the
known pixels (3, zero outside the mask) and the brand palette as nine constant channels
(three RGB colours). The style is a class label (``num_class_embeds``) added to the timestep
embedding. All pixel values are in [-1, 1]. The network predicts v (v-prediction).
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

from .styles import STYLE_NAMES

IMAGE_CHANNELS = 3
IN_CHANNELS = 3 + 1 + 3 + 9

# Scheduler settings shared by training (DDPM) and sampling (DDIM); notes/backdrop-model.md:
# the cosine schedule with v-prediction gave clean 32 px samples where ε-prediction was grainy.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    "clip_sample": False,
}


def unet_config(resolution: int = 32, size: str = "base") -> dict[str, Any]:
    """UNet2DModel config; ``tiny`` exists for tests of the training loop."""
    if size == "tiny":
        blocks, attn_heads = (8, 16), 4
        down, up = ("DownBlock2D", "AttnDownBlock2D"), ("AttnUpBlock2D", "UpBlock2D")
        groups = 4
    elif size == "base":
        # notes/backdrop-model.md run A's block widths at run B's 32 px: ~1.8 M parameters,
        # ~0.25 s per batch-16 step on one CPU thread, so ~20 k steps fit in 90 minutes.
        blocks, attn_heads = (32, 64, 96), 8
        down = ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D")
        up = ("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")
        groups = 8
    else:
        raise ValueError(f"unknown model size {size!r}")
    return {
        "sample_size": resolution,
        "in_channels": IN_CHANNELS,
        "out_channels": IMAGE_CHANNELS,
        "layers_per_block": 1,
        "block_out_channels": blocks,
        "down_block_types": down,
        "up_block_types": up,
        "attention_head_dim": attn_heads,
        "norm_num_groups": groups,
        "num_class_embeds": len(STYLE_NAMES),
    }


def build_unet(resolution: int = 32, size: str = "base") -> UNet2DModel:
    return UNet2DModel(**unet_config(resolution, size))


def training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SCHEDULER_CONFIG)


def sampling_scheduler() -> DDIMScheduler:
    # "trailing" spacing starts sampling at the last training timestep, which matters with
    # few steps: leading spacing would begin from a not-quite-pure-noise level.
    return DDIMScheduler(**SCHEDULER_CONFIG, timestep_spacing="trailing")


def model_input(noisy: torch.Tensor, mask: torch.Tensor, known: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Concatenate the network input.

    noisy (B, 3, H, W) and known (B, 3, H, W) in [-1, 1]; mask (B, 1, H, W) in {0, 1};
    palette (B, 3, 3) sRGB in [0, 1].
    """
    b, _, h, w = noisy.shape
    pal = (palette.reshape(b, 9, 1, 1) * 2 - 1).expand(b, 9, h, w)
    return torch.cat([noisy, mask, known * mask, pal.to(noisy.dtype)], dim=1)
