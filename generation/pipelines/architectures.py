"""The three scene models' architectures, built with random weights and no download.

``configs/<backend>.json`` holds each published model's component configs (the UNet or
transformer, the VAE, the text encoders, the scheduler): architecture facts, no weights.
:func:`build_pipeline` instantiates them with random weights, the way diffusers' own fast
tests build their pipelines; speed does not depend on the weights' values, so this is what
``bench/gpu_scenes.py`` measures. ``smoke=True`` shrinks every width and depth (the same
component classes and pipeline, a few thousand parameters) for the CPU smoke run.

Tokenizers are built locally too: CLIP's byte-level BPE from a written ``vocab.json`` +
``merges.txt``, T5's Unigram from an in-memory vocabulary. They tokenize only a few words
well (others fall back to bytes or ``<unk>``); the prompt's length is what costs time, and
the benchmark pads to the models' full lengths (77 and 512 tokens) anyway.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

__all__ = ["CONFIG_DIR", "WORDS", "architecture", "build_pipeline", "clip_tokenizer", "t5_tokenizer"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
WORDS = ("a", "the", "bottle", "on", "marble", "table", "soft", "light", "linen", "studio", "blurry")


def architecture(backend: str) -> dict:
    """The published component configs of ``backend`` (``configs/<backend>.json``)."""
    return json.loads((CONFIG_DIR / f"{backend}.json").read_text())


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 bytes (byte-level BPE's base alphabet)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def clip_tokenizer(folder: Path):
    """A CLIP tokenizer: every byte symbol (bare and word-final) plus merges for a few words."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    merges = []
    for word in WORDS:  # merge each word left to right into one token
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            merged = pieces[0] + pieces[1]
            vocab.setdefault(merged, len(vocab))
            pieces = [merged, *pieces[2:]]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    return CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=77)


def t5_tokenizer():
    """A T5 Unigram tokenizer: specials, the word-start mark, letters and a few whole words."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    pieces += [(f"▁{w}", -1.0) for w in WORDS]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


#: What ``smoke=True`` changes in each component's config: the same blocks, tiny widths.
_TINY_CLIP = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32)
_TINY_VAE = dict(block_out_channels=[8, 16], down_block_types=["DownEncoderBlock2D"] * 2,
                 up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, norm_num_groups=4, sample_size=32)
SMOKE: dict[str, dict[str, dict]] = {
    "sd-inpaint": {
        "unet": dict(block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4, sample_size=16,
                     down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                     up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], cross_attention_dim=32,
                     attention_head_dim=[2, 4]),
        "vae": _TINY_VAE,
        "text_encoder": _TINY_CLIP,
    },
    "sdxl-inpaint": {
        "unet": dict(block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4, sample_size=16,
                     down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                     up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], cross_attention_dim=64,
                     attention_head_dim=[2, 4], transformer_layers_per_block=[1, 1], addition_time_embed_dim=8,
                     projection_class_embeddings_input_dim=6 * 8 + 32),
        "vae": _TINY_VAE,
        "text_encoder": _TINY_CLIP,
        "text_encoder_2": _TINY_CLIP,
    },
    "flux-fill": {
        # in_channels: packed (2×2) noisy and masked-image latents plus the packed mask (the
        # VAE's 8×8 pixels per latent, 2×2 of them): (2 + 2)·4 + 2·2·4 = 32 here; FLUX's
        # (16 + 16)·4 + 8·8·4 = 384.
        "transformer": dict(in_channels=32, out_channels=8, num_layers=1, num_single_layers=1,
                            attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                            pooled_projection_dim=32, axes_dims_rope=[4, 4, 8]),
        "vae": {**_TINY_VAE, "latent_channels": 2},
        "text_encoder": _TINY_CLIP,
        "text_encoder_2": dict(d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=1, relative_attention_num_buckets=8),
    },
}


def build_pipeline(backend: str, *, smoke: bool = False, device: str = "cpu", dtype: torch.dtype = torch.float32, workdir: Path):
    """A diffusers pipeline of ``backend``'s architecture with random weights (seeded), on
    ``device`` in ``dtype``. ``workdir`` receives the CLIP tokenizer's vocabulary files."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    config = architecture(backend)
    shrink = SMOKE[backend] if smoke else {}

    def part(name: str) -> dict:
        return {**config[name], **shrink.get(name, {})}

    tokenizer = clip_tokenizer(workdir / f"{backend}-tokenizer")

    def clip(name: str, cls):
        settings = part(name)
        settings.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
        settings["vocab_size"] = max(settings["vocab_size"] if not smoke else 0, len(tokenizer))
        return cls(CLIPTextConfig(**settings))

    torch.manual_seed(0)
    with torch.device(device):
        vae = diffusers.AutoencoderKL(**part("vae"))
        if backend == "flux-fill":
            components = dict(
                transformer=diffusers.FluxTransformer2DModel(**part("transformer")),
                text_encoder=clip("text_encoder", CLIPTextModel),
                text_encoder_2=T5EncoderModel(T5Config(**{**part("text_encoder_2"), **(
                    {"vocab_size": len(t5_tokenizer())} if smoke else {})})),
                tokenizer=tokenizer, tokenizer_2=t5_tokenizer(),
            )
        else:
            components = dict(
                unet=diffusers.UNet2DConditionModel(**part("unet")),
                text_encoder=clip("text_encoder", CLIPTextModel),
                tokenizer=tokenizer,
            )
            if backend == "sdxl-inpaint":
                components.update(text_encoder_2=clip("text_encoder_2", CLIPTextModelWithProjection), tokenizer_2=tokenizer)
    # Schedulers keep their tables on the CPU; they are made outside the device context.
    scheduler_class = diffusers.FlowMatchEulerDiscreteScheduler if backend == "flux-fill" else diffusers.EulerDiscreteScheduler
    components["scheduler"] = scheduler_class(**config["scheduler"])
    pipeline_class = getattr(diffusers, config["pipeline"])
    extra = {}
    if backend == "sd-inpaint":
        extra = dict(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    elif backend == "sdxl-inpaint":
        extra = dict(requires_aesthetics_score=config["requires_aesthetics_score"])
    pipe = pipeline_class(vae=vae, **components, **extra)
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
