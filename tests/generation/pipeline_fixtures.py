"""Tiny real diffusers pipelines with random weights, saved as model folders.

Built from configs the way diffusers' own fast tests build theirs (``get_dummy_components``),
only smaller: a few thousand parameters per model, 32-48 px images. Tokenizers come from
:mod:`generation.pipelines.architectures` (no hub): CLIP's byte-level BPE from a written
``vocab.json`` + ``merges.txt``, and T5's Unigram from an in-memory vocabulary (transformers 5
builds ``T5Tokenizer`` on ``tokenizers``, so no sentencepiece model is needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxFillPipeline,
    FluxTransformer2DModel,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLInpaintPipeline,
    UNet2DConditionModel,
)
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig, get_peft_model_state_dict
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
)

# The tokenizers are the ones bench/gpu_scenes.py builds its architectures with.
from generation.pipelines.architectures import WORDS, clip_tokenizer, t5_tokenizer  # noqa: E402, F401


def clip_text_config(tokenizer: CLIPTokenizer, **overrides) -> CLIPTextConfig:
    settings = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        projection_dim=32,
    )
    settings.update(overrides)
    return CLIPTextConfig(**settings)


def tiny_vae(**overrides) -> AutoencoderKL:
    settings = dict(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=32,
    )
    settings.update(overrides)
    torch.manual_seed(0)
    return AutoencoderKL(**settings)


def sd_scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"
    )


def tiny_unet(**overrides) -> UNet2DConditionModel:
    """A 9-channel inpainting UNet (4 noisy latents + 1 mask + 4 masked-image latents)."""
    settings = dict(
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=16,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
    )
    settings.update(overrides)
    torch.manual_seed(0)
    return UNet2DConditionModel(**settings)


def save_sd_inpaint(folder: Path) -> Path:
    """A tiny ``StableDiffusionInpaintPipeline`` saved to ``folder``."""
    tokenizer = clip_tokenizer(folder.parent / f"{folder.name}-tokenizer-src")
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer))
    pipe = StableDiffusionInpaintPipeline(
        unet=tiny_unet(),
        vae=tiny_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def save_sdxl_inpaint(folder: Path) -> Path:
    """A tiny ``StableDiffusionXLInpaintPipeline`` (two text encoders, text-time conditioning)."""
    tokenizer = clip_tokenizer(folder.parent / f"{folder.name}-tokenizer-src")
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer))
    torch.manual_seed(1)
    text_encoder_2 = CLIPTextModelWithProjection(clip_text_config(tokenizer))
    unet = tiny_unet(
        cross_attention_dim=64,  # both encoders' hidden states, concatenated
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 size/crop ids + pooled text
    )
    pipe = StableDiffusionXLInpaintPipeline(
        unet=unet,
        vae=tiny_vae(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=sd_scheduler(),
        requires_aesthetics_score=False,
    )
    pipe.save_pretrained(folder)
    return folder


def save_flux_fill(folder: Path) -> Path:
    """A tiny ``FluxFillPipeline``: CLIP + T5 encoders, a one-block-each transformer."""
    tokenizer = clip_tokenizer(folder.parent / f"{folder.name}-tokenizer-src")
    tokenizer_2 = t5_tokenizer()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer))
    torch.manual_seed(0)
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=1,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    torch.manual_seed(0)
    # in_channels: 8 packed noisy latents + 8 packed masked-image latents + 4 packed mask.
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=20,
        out_channels=8,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    vae = tiny_vae(
        block_out_channels=(4,),
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        latent_channels=2,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    pipe = FluxFillPipeline(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )
    pipe.save_pretrained(folder)
    return folder


SAVERS = {"sd-inpaint": save_sd_inpaint, "sdxl-inpaint": save_sdxl_inpaint, "flux-fill": save_flux_fill}


def save_lora(backend: str, model_folder: Path, out: Path, *, seed: int = 0) -> Path:
    """A LoRA on the denoiser's attention projections, saved as diffusers would save it.

    ``init_lora_weights=False`` gives both LoRA matrices random values, so the adapter changes
    the output (peft's default starts B at zero: a no-op adapter).
    """
    config = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    torch.manual_seed(seed)
    if backend == "flux-fill":
        model = FluxTransformer2DModel.from_pretrained(model_folder / "transformer")
        model.add_adapter(config)
        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(model))
        FluxFillPipeline.save_lora_weights(out, transformer_lora_layers=layers)
    else:
        pipeline_class = {"sd-inpaint": StableDiffusionInpaintPipeline, "sdxl-inpaint": StableDiffusionXLInpaintPipeline}[backend]
        model = UNet2DConditionModel.from_pretrained(model_folder / "unet")
        model.add_adapter(config)
        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(model))
        pipeline_class.save_lora_weights(out, unet_lora_layers=layers)
    return out


def product_canvas(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A canvas with a green product in the middle on a magenta background, and its mask."""
    image = np.empty((height, width, 3), np.uint8)
    image[...] = (255, 0, 255)
    mask = np.zeros((height, width), bool)
    mask[height // 4 : height - height // 4, width // 3 : width - width // 3] = True
    image[mask] = (17, 201, 90)
    return image, mask
