"""Loading scene models as a GPU worker would: dtype, CPU offload, what `models pull` fetches,
weight hashes cached by size and mtime. Tiny real pipelines (``pipeline_fixtures``); no GPU.

Django-free: ``pytest -p no:django --noconftest tests/generation/test_gpu_loading.py``.
"""

from __future__ import annotations

import hashlib
import os

import pytest
import torch
from diffusers.utils import logging as diffusers_logging

from generation import models_store
from generation.pipelines.base import OFFLOAD_HEADROOM_BYTES, needs_cpu_offload
from generation.registry import clear_cache, get_backend, load_scene_backend
from tests.generation.pipeline_fixtures import save_flux_fill, save_sd_inpaint

diffusers_logging.set_verbosity_error()
GB = 10**9


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return save_sd_inpaint(tmp_path_factory.mktemp("models") / "sd-inpaint")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_model_loaded_through_the_registry_comes_back_in_the_requested_dtype(sd_folder, dtype, monkeypatch):
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(sd_folder.parent))
    clear_cache()
    try:
        backend = load_scene_backend("sd-inpaint", device="cpu", dtype=dtype)
        # Every module, not just the denoiser: an ignored dtype argument leaves all in fp32.
        for name in ("unet", "vae", "text_encoder"):
            assert getattr(backend.pipe, name).dtype == getattr(torch, dtype), name
        assert backend.describe()["dtype"] == dtype
        assert load_scene_backend("sd-inpaint", device="cpu") is not backend  # fp32 is another entry
    finally:
        clear_cache()


def test_flux_fill_needs_offload_on_a_24_gb_card_and_not_on_an_h200():
    flux_bf16 = 33_600_000_000  # transformer 23.8 GB + T5 9.5 GB + CLIP and VAE, in bf16

    assert needs_cpu_offload(flux_bf16, 24 * 1024**3)
    assert not needs_cpu_offload(flux_bf16, 140 * 1024**3)
    assert needs_cpu_offload(10 * GB, 10 * GB + OFFLOAD_HEADROOM_BYTES - 1)
    assert not needs_cpu_offload(10 * GB, 10 * GB + OFFLOAD_HEADROOM_BYTES)


@pytest.mark.parametrize(("free", "offloaded"), [(1024**2, True), (10**15, False)])
def test_from_folder_on_cuda_offloads_only_when_the_card_is_too_small(tmp_path, monkeypatch, free, offloaded):
    # No CUDA here: the two ways onto the card are recorded instead of run.
    folder = save_flux_fill(tmp_path / "flux-fill")
    cls = get_backend("flux-fill").backend_class()
    calls = []
    monkeypatch.setattr(cls.pipeline_class, "enable_model_cpu_offload", lambda pipe, device=None: calls.append(("offload", device)))
    monkeypatch.setattr(cls.pipeline_class, "to", lambda pipe, device: calls.append(("to", device)))

    backend = cls.from_folder(folder, device="cuda", free_bytes=free)

    assert calls == [("offload", "cuda")] if offloaded else [("to", "cuda")]
    assert backend.cpu_offload is offloaded
    assert backend.pipe.transformer.dtype == torch.bfloat16  # FLUX's CUDA dtype


#: A FLUX.1 Fill-shaped hub listing: diffusers folders, the root single-file checkpoint,
#: fp16 duplicates, pickled duplicates and a folder no component loads.
FLUX_LISTING = [
    ".gitattributes", "README.md", "LICENSE.md", "flux1-fill-dev.safetensors", "model_index.json", "example.png",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors",
    "text_encoder/pytorch_model.bin",
    "text_encoder_2/config.json", "text_encoder_2/model-00001-of-00002.safetensors",
    "text_encoder_2/model-00002-of-00002.safetensors", "text_encoder_2/model.safetensors.index.json",
    "text_encoder_2/model.fp16-00001-of-00002.safetensors", "text_encoder_2/model.safetensors.index.fp16.json",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "tokenizer_2/special_tokens_map.json", "tokenizer_2/spiece.model", "tokenizer_2/tokenizer.json",
    "tokenizer_2/tokenizer_config.json",
    "transformer/config.json", "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
    "transformer/diffusion_pytorch_model-00002-of-00003.safetensors",
    "transformer/diffusion_pytorch_model-00003-of-00003.safetensors",
    "transformer/diffusion_pytorch_model.safetensors.index.json",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_flax_model.msgpack",
    "safety_checker/model.safetensors",
]
FLUX_INDEX = {
    "_class_name": "FluxFillPipeline", "_diffusers_version": "0.32.0.dev0",
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "FluxTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKL"], "safety_checker": [None, None],
}


def test_models_pull_fetches_exactly_the_folders_the_pipeline_loads():
    files = models_store.pipeline_files_to_fetch(FLUX_LISTING, FLUX_INDEX)

    assert files == sorted([
        "model_index.json", "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.safetensors",
        "text_encoder_2/config.json", "text_encoder_2/model-00001-of-00002.safetensors",
        "text_encoder_2/model-00002-of-00002.safetensors", "text_encoder_2/model.safetensors.index.json",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json",
        "tokenizer_2/special_tokens_map.json", "tokenizer_2/spiece.model", "tokenizer_2/tokenizer.json",
        "tokenizer_2/tokenizer_config.json",
        "transformer/config.json", "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
        "transformer/diffusion_pytorch_model-00002-of-00003.safetensors",
        "transformer/diffusion_pytorch_model-00003-of-00003.safetensors",
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    ])


def test_pickled_weights_are_fetched_where_a_folder_has_no_safetensors():
    listing = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin"]

    assert models_store.pipeline_files_to_fetch(listing, {"unet": ["diffusers", "UNet2DConditionModel"]}) == listing


def test_weight_hashes_are_read_once_and_again_only_for_a_changed_file(tmp_path, monkeypatch):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "w.safetensors").write_bytes(b"unet weights")
    (tmp_path / "vae.bin").write_bytes(b"vae weights")
    (tmp_path / "config.json").write_text("{}")
    reads = []
    digest = models_store._digest
    monkeypatch.setattr(models_store, "_digest", lambda path, algorithm: reads.append(path.name) or digest(path, algorithm))

    first = models_store.weight_digests(tmp_path)
    second = models_store.weight_digests(tmp_path)
    assert sorted(reads) == ["vae.bin", "w.safetensors"]
    assert first == second == {
        "unet/w.safetensors": hashlib.sha256(b"unet weights").hexdigest(),
        "vae.bin": hashlib.sha256(b"vae weights").hexdigest(),
    }

    reads.clear()
    changed = tmp_path / "vae.bin"
    changed.write_bytes(b"new vae weight")  # same size: only the mtime tells
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    third = models_store.weight_digests(tmp_path)
    assert reads == ["vae.bin"]
    assert third["vae.bin"] == hashlib.sha256(b"new vae weight").hexdigest()
