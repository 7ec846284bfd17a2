"""The registry: one table of backends (with their sampling rules and native size), one of
models, and one loader with one cache. Needs no Django."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from generation import registry
from generation.backdrop.backend import BackdropBackend
from generation.pipelines.base import SCHEDULERS, SamplingRules
from generation.registry import BACKENDS, MODELS, clear_cache, get_backend, load_scene_backend
from generation.render import native_size
from generation.staging import PlainBackdrop, StageOptions, stage_plan


@pytest.fixture(autouse=True)
def empty_cache():
    clear_cache()
    yield
    clear_cache()


def test_every_model_names_a_registered_backend():
    assert {name: spec.backend for name, spec in MODELS.items()} == {
        "backdrop-mini": "backdrop", "sd-inpaint": "sd-inpaint", "sdxl-inpaint": "sdxl-inpaint", "flux-fill": "flux-fill",
    }
    assert sorted(BACKENDS) == ["backdrop", "flux-fill", "sd-inpaint", "sdxl-inpaint"]


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_backends_defaults_follow_its_rules(name):
    rules = BACKENDS[name].rules

    assert set(rules.schedulers) <= set(SCHEDULERS)
    assert rules.problems(scheduler=rules.scheduler, steps=rules.steps, guidance=rules.guidance, strength=rules.strength) == {}


@pytest.mark.parametrize(
    ("name", "defaults"),
    [
        ("backdrop", ("ddim", 20, 1.0, 1.0)),
        ("sd-inpaint", ("euler", 30, 7.0, 1.0)),
        ("sdxl-inpaint", ("euler", 30, 7.0, 1.0)),
        ("flux-fill", ("euler", 28, 30.0, 1.0)),
    ],
)
def test_the_backends_defaults(name, defaults):
    rules = BACKENDS[name].rules

    assert (rules.scheduler, rules.steps, rules.guidance, rules.strength) == defaults


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scheduler": "dpmpp"}, "Test model can only sample with euler"),
        ({"guidance": 40.0}, "Test model uses classifier-free guidance between 1 and 20"),
        ({"steps": 0}, "Test model takes 1 to 150 steps"),
        ({"schedulers": ("euler", "heun")}, "schedulers must be some of euler, ddim, dpmpp"),
    ],
)
def test_rules_whose_defaults_break_them_are_refused_when_written(changes, message):
    values = {"title": "Test model", "schedulers": ("euler",), "scheduler": "euler", "steps": 20, "guidance": 7.0} | changes

    with pytest.raises(ValueError, match=message):
        SamplingRules(**values)


def test_problems_name_every_field_that_is_wrong():
    problems = BACKENDS["sd-inpaint"].rules.problems(scheduler="heun", steps=200, guidance=0.5, strength=1.5)

    assert problems == {
        "scheduler": "There is no scheduler called 'heun'. Choose one of: euler, ddim, dpmpp.",
        "steps": "Stable Diffusion inpainting takes 1 to 150 steps (30 is typical); 200 is outside that range.",
        "guidance": "Stable Diffusion inpainting uses classifier-free guidance between 1 and 20 (7 is typical); 0.5 is outside that range.",
        "strength": (
            "Stable Diffusion inpainting takes a strength above 0 and at most 1 (1 repaints everything but the "
            "product); 1.5 is outside that range."
        ),
    }


def test_a_multi_scheduler_backend_lists_what_it_can_use():
    rules = replace(BACKENDS["sd-inpaint"].rules, schedulers=("euler", "dpmpp"))

    assert rules.problems(scheduler="ddim", steps=30, guidance=7.0, strength=1.0) == {
        "scheduler": "Stable Diffusion inpainting can sample with euler, dpmpp; ddim is not one of them."
    }


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown scene backend 'dalle'; known: backdrop, flux-fill, sd-inpaint, sdxl-inpaint"):
        get_backend("dalle")


def test_a_missing_model_folder_names_it_and_the_pull_command(tmp_path, monkeypatch):
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(tmp_path))

    with pytest.raises(FileNotFoundError) as info:
        load_scene_backend("sdxl-inpaint")

    assert str(info.value) == (
        f"model 'sdxl-inpaint' expects its files in {tmp_path / 'sdxl-inpaint'}; "
        "run `python manage.py models pull sdxl-inpaint` where the machine is online"
    )
    assert registry._loaded == {}


def test_two_threads_asking_for_the_same_model_load_it_once(monkeypatch):
    real = BackdropBackend.from_folder.__func__
    loads = []

    def slow_from_folder(cls, folder, device=None):
        loads.append(folder)
        time.sleep(0.2)  # long enough that the second thread asks while the first is loading
        return real(cls, folder, device)

    monkeypatch.setattr(BackdropBackend, "from_folder", classmethod(slow_from_folder))
    start = threading.Barrier(2)
    got = []

    def ask():
        start.wait()
        got.append(load_scene_backend("backdrop-mini"))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loads) == 1
    assert len(got) == 2 and got[0] is got[1]
    assert load_scene_backend("backdrop-mini") is got[0]


def test_clear_cache_forgets_loaded_models():
    first = load_scene_backend("backdrop-mini")

    clear_cache()

    assert load_scene_backend("backdrop-mini") is not first


def test_backdrop_mini_runs_on_the_cpu_only():
    with pytest.raises(ValueError, match="backdrop-mini runs on the CPU only, not on 'cuda'"):
        load_scene_backend("backdrop-mini", device="cuda")
    assert registry._loaded == {}


@pytest.mark.parametrize(
    ("backend", "canvas", "size"),
    [
        ("sd-inpaint", (2048, 2048), (512, 512)),
        ("sd-inpaint", (1080, 1350), (448, 576)),
        ("sdxl-inpaint", (2048, 2048), (1024, 1024)),
        ("flux-fill", (2000, 1000), (1472, 704)),
        ("backdrop", (1080, 1350), (1080, 1350)),
        ("none", (320, 240), (320, 240)),
    ],
)
def test_scenes_are_made_at_the_backends_native_size(backend, canvas, size):
    assert native_size(backend, canvas) == size


@pytest.mark.parametrize("model", sorted(MODELS))
def test_stage_samples_with_the_models_defaults(model):
    rules = BACKENDS[MODELS[model].backend].rules

    plan = stage_plan(StageOptions(model=model, style="marble"))

    assert (plan.scheduler, plan.steps, plan.guidance, plan.strength) == (rules.scheduler, rules.steps, rules.guidance, rules.strength)
    assert plan.style == ("marble" if model == "backdrop-mini" else None)
    assert plan.prompt == "marble product photography scene"


def test_stage_without_a_model_samples_nothing():
    plan = stage_plan(StageOptions(model="none"))

    assert (plan.backend, plan.scheduler, plan.steps, plan.guidance, plan.strength) == ("none", "ddim", 1, 1.0, 1.0)
    assert PlainBackdrop.rules.problems(scheduler="ddim", steps=1, guidance=1.0, strength=1.0) == {}
