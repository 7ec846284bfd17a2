"""BackdropPipeline: studio scenes around a locked product with backdrop-mini, on CPU."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import torch
from diffusers import DDIMScheduler, UNet2DModel

from generation.pipelines.base import GenerationCancelled, StepCallback

from .model import model_input
from .styles import STYLE_NAMES, STYLES, normalize_palette, style_id
from .resample import (
    add_grain_and_quantize,
    estimate_horizon,
    fill_behind,
    product_to_working,
    upsample_smooth,
    upsample_with_horizon,
    working_size,
)
from .textures import apply_texture

def resize_product_layer(image: np.ndarray, mask: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a uint8 product layer and its bool mask, averaging over product pixels only so
    that whatever lies outside the mask never tints the product's edge."""
    cov = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    prem = cv2.resize(image.astype(np.float32) * mask[..., None], (width, height), interpolation=cv2.INTER_AREA)
    colour = np.rint(prem / np.maximum(cov, 1e-6)[..., None])
    return np.clip(colour, 0, 255).astype(np.uint8), cov > 0.5


@dataclass
class BackdropPipelineOutput:
    """One RGB scene per seed, at the output size, in seed order."""

    images: list[PIL.Image.Image]


class BackdropPipeline:
    """Inpaint a studio scene around a product with the backdrop-mini model.

    The network (a small pixel-space ``UNet2DModel``) samples the scene at its working
    resolution (32 px short side) with DDIM, conditioned on the style (class label) and the
    brand palette (input channels), the product's pixels held fixed at every step. The result is
    upsampled smoothly, the style's surface texture is drawn procedurally on top (the network
    is too small to draw veins or threads), film grain dithers it, and the caller's product
    pixels are composited back exactly.

    Components: ``unet`` and ``scheduler``; ``resolution`` is the working short side.
    """

    def __init__(self, unet: UNet2DModel, scheduler: DDIMScheduler, resolution: int = 32):
        self.unet = unet.eval().requires_grad_(False)
        self.scheduler = scheduler
        self.resolution = resolution

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> BackdropPipeline:
        """Load from a local model folder (``unet/``, ``scheduler/``, ``backdrop.json``)."""
        folder = Path(folder)
        meta = json.loads((folder / "backdrop.json").read_text())
        # "presets" is the key's name from before the word was "style"; kept so that model
        # folders already exported still load.
        if tuple(meta["presets"]) != STYLE_NAMES:
            raise ValueError(f"{folder} was trained for styles {meta['presets']}, this code has {STYLE_NAMES}")
        unet = UNet2DModel.from_pretrained(folder / "unet")
        scheduler = DDIMScheduler.from_pretrained(folder / "scheduler")
        return cls(unet=unet, scheduler=scheduler, resolution=int(meta["resolution"]))

    def check_inputs(self, image, mask, style, palette, seeds, height, width, num_inference_steps) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
        if style not in STYLE_NAMES:
            raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLE_NAMES)}")
        normalize_palette(palette)  # raises with the reason
        if len(seeds) == 0:
            raise ValueError("need at least one seed")
        if height < 8 or width < 8:
            raise ValueError(f"output size {width}x{height} is too small")
        if num_inference_steps < 1:
            raise ValueError("num_inference_steps must be >= 1")

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray | PIL.Image.Image,
        mask: np.ndarray | PIL.Image.Image,
        style: str,
        palette: Sequence[Sequence[float]] | np.ndarray,
        seeds: Sequence[int] = (0,),
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 20,
        texture: bool = True,
        callback: StepCallback | None = None,
    ) -> BackdropPipelineOutput:
        """Generate one scene per seed.

        ``image`` is the product layer (RGB, already placed on the canvas) and ``mask`` its hard
        mask (nonzero = product, kept exactly). The output is ``height`` × ``width``, by default
        the image's size; if it differs, the product layer is resized to it first, and the
        resized product pixels are the ones kept. Variants run as one batch; each has its own
        seeded ``torch.Generator`` so a batch equals the same seeds run one at a time.
        """
        image = np.asarray(image.convert("RGB") if isinstance(image, PIL.Image.Image) else image)
        mask = np.asarray(mask.convert("L") if isinstance(mask, PIL.Image.Image) else mask)
        height = image.shape[0] if height is None else height
        width = image.shape[1] if width is None else width
        seeds = list(seeds)
        self.check_inputs(image, mask, style, palette, seeds, height, width, num_inference_steps)

        # 1. The product layer at output size (the pixels that will be locked) and at working size.
        hard = mask > 0
        product_u8 = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        if image.shape[:2] != (height, width):
            product_u8, hard = resize_product_layer(product_u8, hard, height, width)
        wh, ww = working_size(height, width, self.resolution)
        known_lr, colour_lr = product_to_working(product_u8.astype(np.float32) / 255.0, hard, (wh, ww))

        # 2. Conditioning: known pixels, mask, palette channels and the style class, per variant.
        batch = len(seeds)
        pal = normalize_palette(palette)
        known = torch.from_numpy(colour_lr.transpose(2, 0, 1) * 2 - 1)[None].expand(batch, -1, -1, -1)
        known_mask = torch.from_numpy(known_lr.astype(np.float32))[None, None].expand(batch, -1, -1, -1)
        palette_t = torch.from_numpy(pal)[None].expand(batch, -1, -1)
        labels = torch.full((batch,), style_id(style), dtype=torch.long)
        dtype = self.unet.dtype

        # 3. Initial noise, one generator per variant so a variant depends only on its seed.
        noise = torch.cat([
            torch.randn((1, 3, wh, ww), generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32)
            for s in seeds
        ]).to(dtype)

        # 4. Denoise. The known region is replaced at every step by the product noised to the
        #    next step's level (with the variant's own noise), so sampling never alters it.
        self.scheduler.set_timesteps(num_inference_steps)
        timesteps = self.scheduler.timesteps
        latents = known_mask * self.scheduler.add_noise(known, noise, timesteps[:1]) + (1 - known_mask) * noise
        for i, t in enumerate(timesteps):
            v = self.unet(model_input(latents, known_mask, known, palette_t), t, class_labels=labels).sample
            latents = self.scheduler.step(v, t, latents).prev_sample
            if i + 1 < len(timesteps):
                held = self.scheduler.add_noise(known, noise, timesteps[i + 1 : i + 2])
            else:
                held = known
            latents = known_mask * held + (1 - known_mask) * latents
            if callback is not None and callback(i, len(timesteps)):
                raise GenerationCancelled(i, len(timesteps))

        # 5. Back to output resolution: fill behind the product, upsample, texture, grain.
        scenes = ((latents.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
        spec = STYLES[style_id(style)]
        images = []
        for scene, seed in zip(scenes, seeds):
            plate_lr = fill_behind(scene, known_lr)
            horizon = estimate_horizon(plate_lr, np.zeros_like(known_lr)) if spec.layout != "sweep" else None
            if horizon is None:
                plate = upsample_smooth(plate_lr, height, width)
            else:
                # Table edges are crisp, a studio's wall/floor corner a little softer.
                softness = 0.004 if spec.layout == "table_top" else 0.012
                plate = upsample_with_horizon(plate_lr, horizon, height, width, softness)
            rng = np.random.default_rng([int(seed), 7])
            if texture:
                plate = apply_texture(plate, spec, pal, rng, horizon)
            out = add_grain_and_quantize(plate, rng)
            # 6. Pixel lock: the caller's product pixels, exactly.
            out[hard] = product_u8[hard]
            images.append(PIL.Image.fromarray(out))
        return BackdropPipelineOutput(images=images)
