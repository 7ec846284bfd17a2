"""The diffusers scene backends, run for real on tiny random-weight pipelines.

Each backend's pipeline is built from configs (``pipeline_fixtures``), saved with
``save_pretrained`` into a models root and loaded back through the registry's
``load_scene_backend`` offline, once per module. Images are 32x40 px and runs take 2 steps with
each backend's default scheduler, guidance and strength; seeds 1 and 2 are the reference
variants.

These tests need no Django: ``pytest -p no:django --noconftest tests/generation/test_pipelines.py``.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.utils import logging as diffusers_logging

from generation.pipelines.base import (
    GenerationCancelled,
    LoraSpec,
    OutOfMemory,
    SceneRequest,
    generate_with_oom_retry,
)
from generation.registry import BACKENDS, clear_cache, get_backend, load_scene_backend
from tests.generation.pipeline_fixtures import SAVERS, product_canvas, save_lora

diffusers_logging.set_verbosity_error()
diffusers_logging.disable_progress_bar()

ALL = ("sd-inpaint", "sdxl-inpaint", "flux-fill")
ROOT = Path(__file__).resolve().parents[2]

#: scheduler name → the diffusers class each backend swaps in
SCHEDULER_CLASSES = {
    "sd-inpaint": {"euler": "EulerDiscreteScheduler", "ddim": "DDIMScheduler", "dpmpp": "DPMSolverMultistepScheduler"},
    "sdxl-inpaint": {"euler": "EulerDiscreteScheduler", "ddim": "DDIMScheduler", "dpmpp": "DPMSolverMultistepScheduler"},
    "flux-fill": {"euler": "FlowMatchEulerDiscreteScheduler"},
}
SUPPORTED = [(name, scheduler) for name, classes in SCHEDULER_CLASSES.items() for scheduler in classes]
MULTI_SCHEDULER = [name for name, classes in SCHEDULER_CLASSES.items() if len(classes) > 1]
UNSUPPORTED = [("flux-fill", "ddim"), ("flux-fill", "dpmpp")]


def make_request(name: str, **changes) -> SceneRequest:
    """A 2-step request with backend ``name``'s default sampling settings."""
    image, mask = product_canvas(32, 40)
    rules = get_backend(name).rules
    request = SceneRequest(
        image=image, mask=mask, prompt="a bottle on a marble table", steps=2, seeds=(1,),
        scheduler=rules.scheduler, guidance=rules.guidance, strength=rules.strength,
    )
    return replace(request, **changes)


class Models:
    """Builds, saves and loads each tiny pipeline on first use; remembers reference outputs."""

    def __init__(self, root: Path):
        self.root = root
        self.folders: dict[str, Path] = {}
        self.loras: dict[str, Path] = {}
        self._references: dict[tuple[str, tuple[int, ...]], list[np.ndarray]] = {}

    def folder(self, name: str) -> Path:
        if name not in self.folders:
            self.folders[name] = SAVERS[name](self.root / name)
        return self.folders[name]

    def backend(self, name: str):
        self.folder(name)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("VITRINE_MODELS_DIR", str(self.root))  # the registry's folder for model `name`
            mp.setenv("HF_HUB_OFFLINE", "1")
            mp.setattr(socket.socket, "connect", _no_network)
            mp.setattr(socket, "create_connection", _no_network)
            return load_scene_backend(name, device="cpu")

    def lora(self, name: str) -> Path:
        if name not in self.loras:
            self.loras[name] = save_lora(name, self.folder(name), self.root / f"{name}-lora")
        return self.loras[name]

    def reference(self, name: str, seeds: tuple[int, ...]) -> list[np.ndarray]:
        """The plain request's output for ``seeds`` (euler, no LoRA), computed once."""
        key = (name, seeds)
        if key not in self._references:
            self._references[key] = self.backend(name).generate(make_request(name, seeds=seeds))
        return self._references[key]


def _no_network(*args, **kwargs):
    raise AssertionError("network access attempted")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    # One thread: these models are so small that a second thread only adds synchronisation,
    # and on a busy machine that costs 10-100x (measured: 0.05 s vs 0.3-5 s per run).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    clear_cache()
    yield Models(tmp_path_factory.mktemp("scene-models"))
    clear_cache()
    torch.set_num_threads(threads)


# -- outputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_one_uint8_scene_per_seed_at_the_request_size(models, name):
    # 36x44 is not a multiple of 8: the backend pads, runs at 40x48 and crops back.
    image, mask = product_canvas(36, 44)
    request = make_request(name, image=image, mask=mask, seeds=(3, 4, 5))
    before = image.copy()

    scenes = models.backend(name).generate(request)

    assert [(s.shape, s.dtype) for s in scenes] == [((36, 44, 3), np.dtype(np.uint8))] * 3
    np.testing.assert_array_equal(image, before)  # the caller's canvas is not written to


@pytest.mark.parametrize("name", ALL)
def test_same_seed_gives_identical_pixels_and_seeds_differ(models, name):
    again = models.backend(name).generate(make_request(name, seeds=(1,)))

    np.testing.assert_array_equal(again[0], models.reference(name, (1,))[0])
    assert not np.array_equal(models.reference(name, (1,))[0], models.reference(name, (2,))[0])


@pytest.mark.parametrize("name", ALL)
def test_a_batch_equals_its_seeds_run_alone(models, name):
    """Variant k depends on seed k only. On CPU a batch of 2 runs other GEMM/conv kernels
    than a batch of 1, so the float images differ by ~1e-6 (measured: at most 2e-6 for all
    three backends, with 1 or 2 threads); that moves a rare value across a rounding boundary,
    hence one uint8 level, on under 1 % of the values."""
    batch = models.reference(name, (1, 2))
    singles = [models.reference(name, (1,))[0], models.reference(name, (2,))[0]]

    assert len(batch) == 2
    for together, alone in zip(batch, singles, strict=True):
        np.testing.assert_allclose(together.astype(int), alone.astype(int), rtol=0, atol=1)
        assert np.count_nonzero(together != alone) < 0.01 * together.size


# -- schedulers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "scheduler"), SUPPORTED)
def test_scheduler_name_swaps_the_pipeline_scheduler(models, name, scheduler):
    backend = models.backend(name)

    backend.generate(make_request(name, scheduler=scheduler))

    assert type(backend.pipe.scheduler).__name__ == SCHEDULER_CLASSES[name][scheduler]


@pytest.mark.parametrize("name", MULTI_SCHEDULER)
def test_schedulers_give_different_scenes(models, name):
    backend = models.backend(name)

    ddim = backend.generate(make_request(name, scheduler="ddim"))[0]
    dpmpp = backend.generate(make_request(name, scheduler="dpmpp"))[0]
    euler = models.reference(name, (1,))[0]

    assert not np.array_equal(euler, ddim)
    assert not np.array_equal(euler, dpmpp)
    assert not np.array_equal(ddim, dpmpp)
    # Swapping back gives the euler scene again: no scheduler state carries over.
    np.testing.assert_array_equal(backend.generate(make_request(name, scheduler="euler"))[0], euler)


@pytest.mark.parametrize(("name", "scheduler"), UNSUPPORTED)
def test_flow_matching_backend_refuses_noise_prediction_schedulers(models, name, scheduler):
    backend = models.backend(name)
    called = []
    backend.pipe.scheduler.set_timesteps = lambda *a, **k: called.append(a)  # must not be reached

    with pytest.raises(ValueError) as info:
        backend.generate(make_request(name, scheduler=scheduler))

    assert str(info.value) == f"FLUX.1 Fill can only sample with euler; choose it instead of {scheduler}."
    assert called == []


@pytest.mark.parametrize("name", ALL)
def test_each_backends_scheduler_classes_are_exactly_its_rules_schedulers(name):
    backend_class = BACKENDS[name].backend_class()

    assert sorted(backend_class.schedulers) == sorted(BACKENDS[name].rules.schedulers)
    assert sorted(backend_class.schedulers) == sorted(SCHEDULER_CLASSES[name])


def test_flux_refuses_stable_diffusions_guidance_before_the_pipeline_runs(models, monkeypatch):
    backend = models.backend("flux-fill")
    calls = []
    monkeypatch.setattr(type(backend.pipe), "__call__", lambda pipe, **kw: calls.append(kw))

    with pytest.raises(ValueError) as info:
        backend.generate(make_request("flux-fill", guidance=7.0))

    assert str(info.value) == (
        "FLUX.1 Fill uses embedded guidance between 10 and 100 (30 is typical); 7 is outside that range. "
        "Stable Diffusion's classifier-free guidance values (around 7) do not carry over."
    )
    assert calls == []


# -- progress and cancellation -------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_progress_callback_is_called_once_per_step(models, name):
    calls = []

    models.backend(name).generate(make_request(name, steps=3), callback=lambda i, n: calls.append((i, n)))

    assert calls == [(0, 3), (1, 3), (2, 3)]


@pytest.mark.parametrize("name", ALL)
def test_callback_returning_true_cancels_after_that_step(models, name):
    backend = models.backend(name)
    calls = []

    def cancel_at_first(i, n):
        calls.append((i, n))
        return True

    with pytest.raises(GenerationCancelled) as info:
        backend.generate(make_request(name, steps=3), callback=cancel_at_first)

    assert (info.value.step_index, info.value.num_steps) == (0, 3)
    assert calls == [(0, 3)]  # steps 2 and 3 never ran
    # A cancelled run leaves the cached pipeline usable and unchanged.
    np.testing.assert_array_equal(backend.generate(make_request(name))[0], models.reference(name, (1,))[0])


# -- LoRA -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_lora_changes_the_scene_and_does_not_leak_into_the_next_request(models, name):
    backend = models.backend(name)
    lora = LoraSpec(name="brand", path=str(models.lora(name)), weight=1.0)
    plain = models.reference(name, (1,))[0]

    with_lora = backend.generate(make_request(name, loras=(lora,)))[0]
    after = backend.generate(make_request(name))[0]

    assert not np.array_equal(with_lora, plain)
    np.testing.assert_array_equal(after, plain)
    # Asked for again, the (still loaded) adapter gives the same scene.
    np.testing.assert_array_equal(backend.generate(make_request(name, loras=(lora,)))[0], with_lora)


def test_lora_loads_from_a_safetensors_file_as_from_its_folder(models):
    backend = models.backend("sd-inpaint")
    folder = models.lora("sd-inpaint")
    from_folder = backend.generate(make_request("sd-inpaint", loras=(LoraSpec("a", str(folder)),)))[0]

    from_file = backend.generate(
        make_request("sd-inpaint", loras=(LoraSpec("b", str(folder / "pytorch_lora_weights.safetensors")),))
    )[0]

    np.testing.assert_array_equal(from_file, from_folder)


def test_least_recently_used_loras_are_unloaded_beyond_the_cap(models, monkeypatch):
    backend = models.backend("sd-inpaint")
    monkeypatch.setattr(backend, "max_loaded_loras", 1)
    path = str(models.lora("sd-inpaint"))

    backend.generate(make_request("sd-inpaint", loras=(LoraSpec("first", path),)))
    backend.generate(make_request("sd-inpaint", loras=(LoraSpec("second", path),)))

    assert backend.pipe.get_list_adapters() == {"unet": ["second"]}


def test_missing_lora_is_a_clear_error(models, tmp_path):
    missing = tmp_path / "nope.safetensors"

    with pytest.raises(FileNotFoundError, match=f"LoRA 'gone' not found at {missing}"):
        models.backend("sd-inpaint").generate(make_request("sd-inpaint", loras=(LoraSpec("gone", str(missing)),)))


# -- out of memory --------------------------------------------------------------------------------


class FakeOom:
    """Replaces the pipeline class's ``__call__``: raises a CUDA OOM for the first ``fail``
    calls, then runs the real pipeline; records each call's batch size."""

    def __init__(self, monkeypatch, backend, fail: int):
        self.batches: list[int] = []
        self.fail = fail
        real = type(backend.pipe).__call__

        def call(pipe, **kwargs):
            self.batches.append(len(kwargs["prompt"]))
            if len(self.batches) <= self.fail:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return real(pipe, **kwargs)

        monkeypatch.setattr(type(backend.pipe), "__call__", call)


@pytest.mark.parametrize("name", ALL)
def test_oom_retries_once_with_half_size_batches(models, name, monkeypatch):
    backend = models.backend(name)
    fake = FakeOom(monkeypatch, backend, fail=1)
    reasons = []

    scenes = generate_with_oom_retry(backend, make_request(name, seeds=(1, 2)), on_retry=reasons.append)

    assert fake.batches == [2, 1, 1]
    assert reasons == ["CUDA out of memory. Tried to allocate 2.00 GiB"]
    np.testing.assert_array_equal(scenes[0], models.reference(name, (1,))[0])
    np.testing.assert_array_equal(scenes[1], models.reference(name, (2,))[0])


@pytest.mark.parametrize("name", ALL)
def test_second_oom_propagates(models, name, monkeypatch):
    backend = models.backend(name)
    fake = FakeOom(monkeypatch, backend, fail=2)
    reasons = []

    with pytest.raises(OutOfMemory, match="CUDA out of memory"):
        generate_with_oom_retry(backend, make_request(name, seeds=(1, 2)), on_retry=reasons.append)

    assert fake.batches == [2, 1]  # the retry's first batch failed; nothing ran after it
    assert len(reasons) == 1


def test_plain_runtime_errors_are_not_taken_for_oom(models, monkeypatch):
    backend = models.backend("sd-inpaint")

    def broken(pipe, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(type(backend.pipe), "__call__", broken)
    retried = []

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        generate_with_oom_retry(backend, make_request("sd-inpaint"), on_retry=retried.append)
    assert retried == []


# -- loading and recipe facts ------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_describe_names_the_weights_by_sha256(models, name):
    folder = models.folder(name)
    expected = {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*.safetensors")
    }

    facts = models.backend(name).describe()

    assert facts["backend"] == name
    assert facts["model_folder"] == str(folder)
    assert facts["weights_sha256"] == expected
    assert len(expected) == {"sd-inpaint": 3, "sdxl-inpaint": 4, "flux-fill": 4}[name]
    assert (facts["dtype"], facts["device"], facts["compiled"]) == ("float32", "cpu", False)
    assert facts["diffusers"] and facts["torch"] == torch.__version__


@pytest.mark.parametrize("name", ALL)
def test_a_model_loads_once_per_process(models, name):
    first = models.backend(name)

    assert models.backend(name) is first


DENOISERS = {"sd-inpaint": "UNet2DConditionModel", "sdxl-inpaint": "UNet2DConditionModel", "flux-fill": "FluxTransformer2DModel"}


@pytest.mark.parametrize("name", ALL)
def test_compile_flag_compiles_the_denoiser_in_place(models, name, monkeypatch):
    # Recorded, not run: inductor needs minutes and a C++ toolchain; what matters here is that
    # the denoiser (and only it) is compiled in place, keeping its class for LoRA loading.
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda module, *a, **k: compiled.append(type(module).__name__))
    monkeypatch.setenv("VITRINE_TORCH_COMPILE", "1")

    backend = BACKENDS[name].backend_class().from_folder(models.folder(name), device="cpu")

    assert compiled == [DENOISERS[name]]
    assert backend.describe()["compiled"] is True


@pytest.mark.parametrize("name", ALL)
def test_missing_model_folder_names_the_folder_and_the_pull_command(name, tmp_path):
    folder = tmp_path / "sdxl-inpainting-1.0"

    with pytest.raises(FileNotFoundError) as info:
        BACKENDS[name].backend_class().from_folder(folder)

    assert str(info.value) == (
        f"{name} model folder {folder} does not exist; fetch the weights with "
        "`python manage.py models pull sdxl-inpainting-1.0` (models are never downloaded at run time)"
    )


def test_a_model_folder_without_model_index_is_refused_and_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(tmp_path))
    (tmp_path / "sd-inpaint").mkdir()

    for _ in range(2):  # a failed load is not remembered: the second call tries again
        with pytest.raises(FileNotFoundError, match="sd-inpaint has no model_index.json; fetch the weights with"):
            load_scene_backend("sd-inpaint", device="cpu")


# -- input checks ---------------------------------------------------------------------------------

BAD_REQUESTS = [
    pytest.param({"mask": np.zeros((32, 41), bool)}, "mask must be a bool array of the image's shape", id="mask-shape"),
    pytest.param({"mask": np.zeros((32, 40), np.uint8)}, "mask must be a bool array", id="mask-dtype"),
    pytest.param({"image": np.zeros((32, 40, 4), np.uint8)}, r"image must be a uint8 \(H, W, 3\) array", id="rgba"),
    pytest.param({"seeds": ()}, "seeds must name at least one seed", id="no-seeds"),
    pytest.param({"scheduler": "heun"}, "There is no scheduler called 'heun'. Choose one of: ", id="scheduler"),
    pytest.param({"steps": 0}, r"takes 1 to 150 steps \(\d+ is typical\); 0 is outside that range", id="steps"),
    pytest.param({"guidance": 500.0}, r"guidance between \d+ and \d+ \(\d+ is typical\); 500 is outside", id="guidance"),
    pytest.param({"strength": 0.0}, r"takes a strength above 0 and at most 1 .*; 0 is outside that range", id="strength"),
    pytest.param({"loras": (LoraSpec("x", "a"), LoraSpec("x", "b"))}, "LoRA names must be unique", id="loras"),
]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("changes", "message"), BAD_REQUESTS)
def test_malformed_requests_fail_before_the_pipeline_runs(models, name, changes, message, monkeypatch):
    backend = models.backend(name)
    calls = []
    monkeypatch.setattr(type(backend.pipe), "__call__", lambda pipe, **kw: calls.append(kw))

    with pytest.raises(ValueError, match=message):
        backend.generate(make_request(name, **changes))
    assert calls == []


def test_the_interface_and_the_registry_import_without_torch():
    code = (
        "import sys, generation.pipelines, generation.pipelines.base, generation.registry, generation.render;"
        "sys.exit('torch' in sys.modules)"
    )

    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
