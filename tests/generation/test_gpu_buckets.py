"""Canvas buckets, fixed batches, the device settings and the warm-up: what a GPU worker runs
at, checked on tiny real pipelines on the CPU (``pipeline_fixtures``). No GPU here, so the
CUDA branch of ``optimise_for_device`` is checked by what it sets on a CPU pipeline told it
is on "cuda"; whether it is faster is ``bench/gpu_scenes.py``'s business, on a GPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import FusedAttnProcessor2_0
from diffusers.utils import logging as diffusers_logging

from generation.pipelines.architectures import architecture
from generation.pipelines.base import OutOfMemory, SceneRequest, generate_with_oom_retry
from generation.pipelines.buckets import (
    BUCKETS,
    MAX_ASPECT_ERROR,
    Bucket,
    aspect_error,
    nearest_bucket,
    place_in_bucket,
)
from generation.pipelines.optimise import optimise_for_device
from generation.preflight import CHANNELS
from generation.registry import BACKENDS, clear_cache, get_backend, load_scene_backend
from generation.render import native_size
from tests.generation.pipeline_fixtures import product_canvas, save_lora, save_sd_inpaint, tiny_vae

diffusers_logging.set_verbosity_error()
DIFFUSERS = ("sd-inpaint", "sdxl-inpaint", "flux-fill")
TINY = (Bucket(64, 64, 2), Bucket(56, 72, 2), Bucket(72, 56, 2))


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def keep_tf32_flags():
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return save_sd_inpaint(tmp_path_factory.mktemp("models") / "sd-inpaint")


def _backend(folder, **options):
    cls = get_backend("sd-inpaint").backend_class()
    return cls.from_folder(folder, device="cpu", **options)


def _request(height: int, width: int, seeds=(1,), **changes) -> SceneRequest:
    image, mask = product_canvas(height, width)
    rules = get_backend("sd-inpaint").rules
    fields = dict(image=image, mask=mask, prompt="a bottle on a marble table", steps=2, seeds=seeds,
                  scheduler=rules.scheduler, guidance=rules.guidance, strength=1.0)
    fields.update(changes)
    return SceneRequest(**fields)


class Calls:
    """Records each pipeline call's size and batch (and runs it)."""

    def __init__(self, monkeypatch, backend):
        self.calls: list[tuple[int, int, int]] = []
        real = type(backend.pipe).__call__

        def call(pipe, **kwargs):
            self.calls.append((kwargs["height"], kwargs["width"], len(kwargs["generator"])))
            return real(pipe, **kwargs)

        monkeypatch.setattr(type(backend.pipe), "__call__", call)


# -- the bucket table ----------------------------------------------------------------------


def _grid(backend: str) -> int:
    """Pixels the model's input must be divisible by, from its published architecture: the
    VAE's downsampling, times the UNet's (it halves the latents once per block but the last)
    or FLUX's 2×2 latent packing."""
    config = architecture(backend)
    vae = 2 ** (len(config["vae"]["block_out_channels"]) - 1)
    if "unet" in config:
        return vae * 2 ** (len(config["unet"]["block_out_channels"]) - 1)
    return vae * 2


@pytest.mark.parametrize("backend", DIFFUSERS)
def test_every_bucket_is_on_the_models_grid_at_about_its_training_area(backend):
    grid = _grid(backend)
    native = BACKENDS[backend].native_pixels
    assert {"sd-inpaint": 64, "sdxl-inpaint": 32, "flux-fill": 16}[backend] == grid
    for bucket in BUCKETS[backend]:
        assert bucket.width % grid == 0 and bucket.height % grid == 0, bucket
        assert 0.9 <= bucket.width * bucket.height / native <= 1.1, bucket
        assert bucket.batch >= 1
    assert len(set(BUCKETS[backend])) == len(BUCKETS[backend]) <= 5  # few shapes: few compiles


@pytest.mark.parametrize("backend", DIFFUSERS)
@pytest.mark.parametrize("channel", [c for c in CHANNELS.values() if not c.white_background], ids=lambda c: c.name)
def test_every_channel_maps_onto_a_bucket_of_each_backend(backend, channel):
    assert channel.width and channel.height  # every channel a model paints has a fixed canvas
    request = native_size(backend, (channel.width, channel.height))

    bucket = nearest_bucket(BUCKETS[backend], *request)

    assert bucket is not None and bucket in BUCKETS[backend]
    assert aspect_error(*request, bucket) <= 0.1
    placement = place_in_bucket(bucket, *request)
    assert placement.padding_share <= 0.1


@pytest.mark.parametrize("backend", DIFFUSERS)
def test_the_aspect_error_is_bounded_over_the_ladder_and_beyond_it_nothing_is_bucketed(backend):
    buckets = BUCKETS[backend]
    aspects = [b.aspect for b in buckets]
    low, high = min(aspects), max(aspects)
    worst = 0.0
    for aspect in np.exp(np.linspace(math.log(low), math.log(high), 200)):
        width, height = round(1000 * aspect**0.5), round(1000 / aspect**0.5)
        bucket = nearest_bucket(buckets, width, height)
        assert bucket is not None
        worst = max(worst, aspect_error(width, height, bucket))
        # the nearest really is the nearest
        assert aspect_error(width, height, bucket) <= min(aspect_error(width, height, b) for b in buckets) + 1e-9
    # half the widest gap of the ladder (SD 1.5's 448x576 to 384x704): at most ~16 % padding
    assert worst <= 0.18 < MAX_ASPECT_ERROR
    assert nearest_bucket(buckets, 4000, 1000) is None  # 4:1 is past MAX_ASPECT_ERROR of every bucket
    assert min(aspect_error(4000, 1000, b) for b in buckets) > MAX_ASPECT_ERROR


def test_placement_keeps_the_aspect_and_fits_the_bucket():
    bucket = Bucket(896, 1152)
    placement = place_in_bucket(bucket, 960, 1152)

    width, height = placement.scaled
    assert width <= 896 and height <= 1152 and (width == 896 or height == 1152)
    assert abs(width / height - 960 / 1152) < 0.01
    assert 0 < placement.padding_share < 0.1


# -- running in buckets ----------------------------------------------------------------------


def test_a_bucketed_backend_runs_at_the_bucket_and_returns_the_request_size(sd_folder, monkeypatch):
    backend = _backend(sd_folder, buckets=TINY)
    calls = Calls(monkeypatch, backend)

    # 50x64 (w×h, 0.78) → the 56x72 bucket, scaled by 1.125 to 56x72 exactly; 60x52 → 72x56.
    tall = backend.generate(_request(64, 50, seeds=(1, 2, 3)))
    wide = backend.generate(_request(52, 60))

    assert calls.calls == [(72, 56, 3), (56, 72, 1)]  # not padded: fixed_batch is off
    assert [s.shape for s in tall] == [(64, 50, 3)] * 3 and wide[0].shape == (52, 60, 3)


def test_fixed_batch_pads_every_call_to_the_buckets_batch_and_keeps_each_seeds_result(sd_folder, monkeypatch):
    padded = _backend(sd_folder, buckets=TINY, fixed_batch=True)
    calls = Calls(monkeypatch, padded)

    scenes = padded.generate(_request(64, 64, seeds=(1, 2, 3)))
    alone = _backend(sd_folder, buckets=TINY).generate(_request(64, 64, seeds=(3,)))

    # 3 seeds: one full batch, one padded; then the unpadded backend's single seed
    assert calls.calls == [(64, 64, 2), (64, 64, 2), (64, 64, 1)]
    assert len(scenes) == 3
    # seed 3 ran beside a throw-away variant: the same scene, to batched kernels' rounding
    np.testing.assert_allclose(scenes[2].astype(int), alone[0].astype(int), rtol=0, atol=1)


def test_a_request_of_an_odd_aspect_runs_at_its_own_size(sd_folder, monkeypatch):
    backend = _backend(sd_folder, buckets=TINY, fixed_batch=True)
    calls = Calls(monkeypatch, backend)

    scene = backend.generate(_request(32, 128))  # 4:1, no bucket near it

    assert calls.calls == [(32, 128, 1)]
    assert scene[0].shape == (32, 128, 3)


def test_the_mask_is_white_where_the_model_repaints_inside_a_bucket_too(sd_folder):
    """The bucket's padding (bottom rows here) is repainted like the background."""
    backend = _backend(sd_folder, buckets=(Bucket(64, 64, 1),))
    request = _request(56, 64)  # 64 wide, 56 high → the 64x64 bucket, 8 rows of padding
    seen = []
    hook = backend.pipe.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        backend.generate(request)
    finally:
        hook.remove()

    keep = np.zeros((64, 64), bool)
    keep[:56] = request.mask
    f = backend.pipe.vae_scale_factor
    expected = (~keep[::f, ::f]).astype(np.float32)
    assert expected[-1].all() and not expected.all()  # the padding is repainted, the product not
    assert len(seen) == request.steps
    for sample in seen:
        for row in sample:
            np.testing.assert_array_equal(row[4].numpy(), expected)


def test_after_an_oom_the_fixed_batch_halves_so_the_retry_fits(sd_folder, monkeypatch):
    backend = _backend(sd_folder, buckets=(Bucket(64, 64, 4),), fixed_batch=True)
    batches = []
    real = type(backend.pipe).__call__

    def call(pipe, **kwargs):
        batches.append(len(kwargs["generator"]))
        if len(batches) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(pipe, **kwargs)

    monkeypatch.setattr(type(backend.pipe), "__call__", call)

    scenes = generate_with_oom_retry(backend, _request(64, 64, seeds=(1, 2, 3, 4)))

    assert batches == [4, 2, 2]  # the halves are not padded back up to 4
    assert len(scenes) == 4
    with pytest.raises(OutOfMemory):
        monkeypatch.setattr(type(backend.pipe), "__call__", lambda pipe, **k: (_ for _ in ()).throw(
            torch.OutOfMemoryError("CUDA out of memory")))
        backend.generate(_request(64, 64))


def test_warm_up_makes_one_call_per_bucket_at_its_size_and_batch(sd_folder, monkeypatch):
    backend = _backend(sd_folder, buckets=TINY, fixed_batch=True)
    calls = Calls(monkeypatch, backend)

    timings = backend.warm_up()

    assert calls.calls == [(b.height, b.width, b.batch) for b in TINY]
    assert [bucket for bucket, _ in timings] == list(TINY)
    assert all(seconds > 0 for _, seconds in timings)


# -- device settings -------------------------------------------------------------------------


def test_on_cpu_nothing_that_changes_results_is_set(sd_folder):
    torch.backends.cuda.matmul.allow_tf32 = False
    plain = _backend(sd_folder)
    reference = plain.generate(_request(32, 40))
    pipe = plain.pipe

    done = optimise_for_device(pipe, "cpu", denoiser="unet")

    assert done.to_dict() == {"tf32": False, "channels_last": [], "fused_qkv": False, "fp16_vae": None,
                              "compiled": None, "vae_slicing_above": None}
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert not any(isinstance(p, FusedAttnProcessor2_0) for p in pipe.unet.attn_processors.values())
    np.testing.assert_array_equal(plain.generate(_request(32, 40))[0], reference[0])


def test_on_cuda_tf32_channels_last_and_fused_qkv_are_set(sd_folder, monkeypatch):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    pipe = _backend(sd_folder).pipe
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda module, *a, **k: compiled.append((type(module).__name__, k)))

    done = optimise_for_device(pipe, "cuda", denoiser="unet", compile=True)

    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32 and done.tf32
    assert done.channels_last == ["unet", "vae"]
    for module in (pipe.unet, pipe.vae):
        conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert done.fused_qkv and all(isinstance(p, FusedAttnProcessor2_0) for p in pipe.unet.attn_processors.values())
    assert compiled == [("UNet2DConditionModel", {"mode": "max-autotune-no-cudagraphs"})]
    assert done.vae_slicing_above == 4


def test_fused_qkv_gives_the_same_scene_and_is_undone_before_a_lora(sd_folder, tmp_path):
    lora = save_lora("sd-inpaint", sd_folder, tmp_path / "lora")
    plain, fused = _backend(sd_folder), _backend(sd_folder)
    fused.optimisations = optimise_for_device(fused.pipe, "cuda", denoiser="unet")
    assert fused.optimisations.fused_qkv
    from generation.pipelines.base import LoraSpec

    with_lora = _request(32, 40, loras=(LoraSpec(name="style", path=str(lora)),))

    np.testing.assert_allclose(fused.generate(_request(32, 40))[0].astype(int),
                               plain.generate(_request(32, 40))[0].astype(int), rtol=0, atol=1)
    styled = fused.generate(with_lora)[0]
    assert not fused.optimisations.fused_qkv
    assert not any(isinstance(p, FusedAttnProcessor2_0) for p in fused.pipe.unet.attn_processors.values())
    # the adapter is applied (not skipped by fused attention): same as the unfused backend's
    np.testing.assert_allclose(styled.astype(int), plain.generate(with_lora)[0].astype(int), rtol=0, atol=1)
    assert np.abs(styled.astype(int) - plain.generate(_request(32, 40))[0].astype(int)).mean() > 1


def test_vae_slicing_is_on_only_for_batches_above_four(sd_folder, monkeypatch):
    backend = _backend(sd_folder, buckets=(Bucket(32, 32, 8),))
    backend.optimisations.vae_slicing_above = 4
    seen = []
    real = type(backend.pipe).__call__
    monkeypatch.setattr(type(backend.pipe), "__call__", lambda pipe, **k: seen.append(pipe.vae.use_slicing) or real(pipe, **k))

    backend.generate(_request(32, 32, seeds=tuple(range(5))))
    backend.generate(_request(32, 32, seeds=(1, 2)))

    assert seen == [True, False]


def test_the_fp16_safe_vae_replaces_the_models_own_when_installed(sd_folder, tmp_path, monkeypatch):
    fixed = tiny_vae(force_upcast=True)
    with torch.no_grad():
        for p in fixed.parameters():
            p.add_(0.5)  # distinguishable from the model's own
    fixed.save_pretrained(tmp_path / "sdxl-vae-fp16-fix")
    monkeypatch.setattr(torch.nn.Module, "compile", lambda module, *a, **k: None)
    pipe = _backend(sd_folder, dtype="float16").pipe

    done = optimise_for_device(pipe, "cuda", denoiser="unet", fp16_vae=tmp_path / "sdxl-vae-fp16-fix")

    assert done.fp16_vae == str(tmp_path / "sdxl-vae-fp16-fix")
    assert pipe.vae.dtype == torch.float16 and pipe.vae.config.force_upcast is False
    first = next(iter(pipe.vae.parameters()))
    assert torch.equal(first, next(iter(fixed.parameters())).half())
    # not installed: the model's own stays
    other = _backend(sd_folder, dtype="float16").pipe
    own = other.vae
    assert optimise_for_device(other, "cuda", denoiser="unet", fp16_vae=tmp_path / "missing").fp16_vae is None
    assert other.vae is own


def test_the_registry_passes_the_fp16_vae_folder_only_when_it_is_installed(sd_folder, tmp_path, monkeypatch):
    from generation.registry import ModelSpec

    spec = ModelSpec(name="x", backend="sdxl-inpaint", folder="x", fp16_vae="sdxl-vae-fp16-fix")
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(tmp_path))
    assert spec.fp16_vae_path is None
    (tmp_path / "sdxl-vae-fp16-fix").mkdir()
    (tmp_path / "sdxl-vae-fp16-fix" / "config.json").write_text("{}")
    assert spec.fp16_vae_path == tmp_path / "sdxl-vae-fp16-fix"


def test_on_cpu_the_registry_backend_has_no_buckets_and_describes_its_settings(sd_folder, monkeypatch):
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(sd_folder.parent))
    clear_cache()
    try:
        facts = load_scene_backend("sd-inpaint", device="cpu").describe()
    finally:
        clear_cache()
    assert facts["buckets"] == []
    assert facts["optimisations"]["tf32"] is False


def test_on_cuda_from_folder_buckets_by_default_and_pads_batches_when_compiled(sd_folder, monkeypatch):
    cls = get_backend("sd-inpaint").backend_class()
    monkeypatch.setattr(cls.pipeline_class, "to", lambda pipe, device: None)  # no CUDA here
    monkeypatch.setattr(torch.nn.Module, "compile", lambda module, *a, **k: None)

    plain = cls.from_folder(sd_folder, device="cuda", free_bytes=10**15, compile=False)
    compiled = cls.from_folder(sd_folder, device="cuda", free_bytes=10**15, compile=True)
    monkeypatch.setenv("VITRINE_GPU_BUCKETS", "0")
    off = cls.from_folder(sd_folder, device="cuda", free_bytes=10**15, compile=False)

    assert plain.buckets == BUCKETS["sd-inpaint"] and not plain.fixed_batch
    assert compiled.fixed_batch
    assert off.buckets == ()
