"""Warm-up at GPU worker start (generation/pipelines/warmup.py and its hooks in config/celery.py):
when it happens, what it loads, and that the worker gives a pool process the time to do it."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from generation.pipelines import warmup
from generation.pipelines.buckets import BUCKETS, Bucket
from generation.registry import clear_cache, load_scene_backend
from tests.generation.pipeline_fixtures import save_sd_inpaint


@pytest.mark.parametrize(
    ("setting", "queues", "cuda", "expected"),
    [
        ("", ["gpu"], True, True),  # auto: a CUDA worker on the gpu queue
        ("", ["gpu"], False, False),  # auto: CPU-only workers skip it
        ("", ["cpu", "io"], True, False),  # not a gpu-queue worker
        ("1", ["cpu", "gpu", "io"], False, True),  # asked for on a CPU worker
        ("0", ["gpu"], True, False),  # turned off
    ],
)
def test_who_warms_up(monkeypatch, setting, queues, cuda, expected):
    monkeypatch.setenv("VITRINE_GPU_WARMUP", setting)
    assert warmup.should_warm_up(queues, cuda_available=cuda) is expected


def test_a_gpu_worker_loads_its_model_and_runs_each_bucket_before_work(tmp_path, monkeypatch, caplog):
    folder = save_sd_inpaint(tmp_path / "sd-inpaint")
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("VITRINE_GPU_WARMUP", "1")
    monkeypatch.delenv("VITRINE_GPU_WARMUP_MODELS", raising=False)
    # SD 1.5's own buckets (512², ...) take minutes on a CPU with the tiny VAE's attention:
    # the registry's table is shrunk for the test, the path is the same.
    monkeypatch.setitem(BUCKETS, "sd-inpaint", (Bucket(64, 64, 4), Bucket(56, 72, 4), Bucket(72, 56, 4)))
    sizes = []
    from diffusers import StableDiffusionInpaintPipeline

    real = StableDiffusionInpaintPipeline.__call__
    monkeypatch.setattr(StableDiffusionInpaintPipeline, "__call__",
                        lambda pipe, **k: sizes.append((k["width"], k["height"])) or real(pipe, **k))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    clear_cache()
    try:
        with caplog.at_level(logging.INFO, logger="generation.pipelines.warmup"):
            report = warmup.warm_up_worker(["gpu"])
        warmed = load_scene_backend("sd-inpaint")
        assert load_scene_backend("sd-inpaint") is warmed  # the jobs get the warm one
    finally:
        clear_cache()
        torch.set_num_threads(threads)

    assert folder.is_dir() and list(report) == ["sd-inpaint"]  # the installed diffusers model
    # a CPU backend has no buckets of its own: the warm-up runs the registry's for its kind
    assert sizes == [(64, 64), (56, 72), (72, 56)]
    assert set(report["sd-inpaint"]["buckets"]) == {"64x64x4", "56x72x4", "72x56x4"}
    assert "gpu.warmup model=sd-inpaint" in caplog.text


def test_a_model_that_fails_to_load_is_logged_and_the_worker_still_starts(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("VITRINE_GPU_WARMUP", "1")
    monkeypatch.setenv("VITRINE_GPU_WARMUP_MODELS", "sdxl-inpaint")
    clear_cache()
    with caplog.at_level(logging.ERROR, logger="generation.pipelines.warmup"):
        assert warmup.warm_up_worker(["gpu"]) == {}
    assert "gpu.warmup_failed model=sdxl-inpaint" in caplog.text


def test_auto_on_a_machine_without_an_nvidia_device_neither_warms_up_nor_imports_torch(monkeypatch):
    monkeypatch.setenv("VITRINE_GPU_WARMUP", "auto")
    monkeypatch.setattr(warmup, "_nvidia_present", lambda: False)
    imported = []
    monkeypatch.setattr(warmup.importlib, "import_module", lambda name: imported.append(name))

    assert warmup.should_warm_up(["gpu"]) is False
    assert warmup.may_warm_up(["gpu"]) is False
    assert imported == []


def test_the_worker_gives_its_pool_process_the_warm_up_time(monkeypatch):
    import config.celery as celery_config

    monkeypatch.setenv("VITRINE_GPU_WARMUP", "1")
    monkeypatch.setenv("VITRINE_GPU_WARMUP_TIMEOUT", "900")
    monkeypatch.setattr(celery_config, "_consumed_queues", lambda: ["gpu"])
    conf = SimpleNamespace(worker_proc_alive_timeout=4.0)
    sender = SimpleNamespace(pool_cls="prefork", app=SimpleNamespace(conf=conf))

    celery_config._gpu_warm_up_at_start(sender=sender)

    assert conf.worker_proc_alive_timeout == 900.0
    monkeypatch.setenv("VITRINE_GPU_WARMUP", "0")
    conf.worker_proc_alive_timeout = 4.0
    celery_config._gpu_warm_up_at_start(sender=sender)
    assert conf.worker_proc_alive_timeout == 4.0
