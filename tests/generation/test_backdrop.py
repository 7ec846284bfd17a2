"""backdrop-mini: the committed model, the pipeline's contracts, the data and the trainer."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from generation.backdrop.model import build_unet, sampling_scheduler
from generation.backdrop.pipeline import BackdropPipeline, GenerationCancelled
from generation.backdrop.scenes import render_scene, shadow_bands
from generation.backdrop.styles import DEFAULT_PALETTE, STYLE_NAMES, normalize_palette
from generation.pipelines.base import SceneRequest
from generation.registry import clear_cache, get_model, load_scene_backend, models_dir
from generation.training.backdrop import train

RED = [[200, 40, 40], [170, 30, 30]]
BLUE = [[40, 60, 200], [30, 40, 170]]


def silhouette(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A bottle-ish product: uint8 RGB layer and bool mask, with a non-grey colour."""
    image = np.zeros((size, size, 3), np.uint8)
    image[...] = (17, 201, 90)
    mask = np.zeros((size, size), bool)
    mask[size // 3 : size - size // 8, size // 2 - size // 8 : size // 2 + size // 8] = True
    mask[size // 5 : size // 3, size // 2 - size // 20 : size // 2 + size // 20] = True
    image[~mask] = (255, 0, 255)  # whatever was behind the product must not leak out
    return image, mask


@pytest.fixture(scope="module")
def committed() -> BackdropPipeline:
    return load_scene_backend("backdrop-mini").pipeline


@pytest.fixture(scope="module")
def tiny() -> BackdropPipeline:
    """Tiny random components built from configs, for the pipeline's mechanics."""
    torch.manual_seed(0)
    return BackdropPipeline(unet=build_unet(16, "tiny"), scheduler=sampling_scheduler(), resolution=16)


def backdrop_mean(img, mask) -> np.ndarray:
    return np.asarray(img, np.float64)[~mask].mean(axis=0)


def test_registry_points_at_committed_folder(monkeypatch, tmp_path):
    spec = get_model("backdrop-mini")
    assert (spec.name, spec.backend, spec.folder) == ("backdrop-mini", "backdrop", "backdrop-mini")
    monkeypatch.delenv("VITRINE_MODELS_DIR", raising=False)
    assert (spec.path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(tmp_path))
    assert models_dir() == tmp_path
    assert spec.path == tmp_path / "backdrop-mini"
    with pytest.raises(FileNotFoundError):
        load_scene_backend("backdrop-mini")
    with pytest.raises(KeyError):
        get_model("no-such-model")


def test_committed_model_generates_scene_around_product(committed):
    image, mask = silhouette(96)
    out = committed(image, mask, "studio-colour", RED, seeds=[0], num_inference_steps=12)
    (scene,) = out.images
    arr = np.asarray(scene)
    assert scene.mode == "RGB" and scene.size == (96, 96)
    # A scene, not noise: neighbouring backdrop pixels differ by little on average...
    assert np.abs(np.diff(arr.astype(int), axis=1))[~mask[:, 1:]].mean() < 6
    # ...and no magenta from behind the product bleeds into it.
    assert not np.any(np.all(arr[~mask] == (255, 0, 255), axis=-1))


@pytest.mark.parametrize("style", ["studio-colour", "pastel-sweep", "linen"])
def test_palette_steers_backdrop_colour(committed, style):
    image, mask = silhouette(64)
    red = committed(image, mask, style, RED, seeds=[1, 2], num_inference_steps=12, texture=False).images
    blue = committed(image, mask, style, BLUE, seeds=[1, 2], num_inference_steps=12, texture=False).images
    for r_img, b_img in zip(red, blue):
        r, b = backdrop_mean(r_img, mask), backdrop_mean(b_img, mask)
        # Red kit: red channel above blue; blue kit: the other way round.
        assert r[0] - r[2] > 20
        assert b[2] - b[0] > 20


def test_known_pixels_untouched_at_output_resolution(tiny):
    image, mask = silhouette(80)
    out = tiny(image, mask, "marble", RED, seeds=[5, 6], num_inference_steps=3).images
    for scene in out:
        arr = np.asarray(scene)
        assert np.array_equal(arr[mask], image[mask])
        assert not np.array_equal(arr[~mask], image[~mask])


def test_same_seed_same_scene_and_different_seeds_differ(tiny):
    image, mask = silhouette(48)
    a = np.asarray(tiny(image, mask, "wood", RED, seeds=[7], num_inference_steps=3).images[0])
    b = np.asarray(tiny(image, mask, "wood", RED, seeds=[7], num_inference_steps=3).images[0])
    c = np.asarray(tiny(image, mask, "wood", RED, seeds=[8], num_inference_steps=3).images[0])
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batch_equals_per_seed_singles(tiny):
    image, mask = silhouette(48)
    batch = tiny(image, mask, "concrete", BLUE, seeds=[11, 12, 13], num_inference_steps=3).images
    for seed, scene in zip([11, 12, 13], batch):
        single = tiny(image, mask, "concrete", BLUE, seeds=[seed], num_inference_steps=3).images[0]
        assert np.array_equal(np.asarray(scene), np.asarray(single))


def test_callback_reports_every_step(tiny):
    image, mask = silhouette(32)
    calls = []
    tiny(image, mask, "linen", RED, seeds=[0], num_inference_steps=4, callback=lambda i, n: calls.append((i, n)))
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_callback_can_cancel(tiny):
    image, mask = silhouette(32)
    calls = []

    def cancel_after_second(i, n):
        calls.append(i)
        return i == 1

    with pytest.raises(GenerationCancelled) as info:
        tiny(image, mask, "linen", RED, seeds=[0], num_inference_steps=5, callback=cancel_after_second)
    assert (info.value.step_index, info.value.num_steps) == (1, 5)
    assert calls == [0, 1]


def test_output_size_resizes_product_layer_and_locks_it(tiny):
    image = np.full((64, 64, 3), (255, 0, 255), np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:56, 24:40] = True  # even-aligned, so halving it is exact
    image[mask] = (17, 201, 90)
    out = tiny(image, mask, "studio-white", RED, seeds=[0], height=32, width=32, num_inference_steps=2).images[0]
    arr = np.asarray(out)
    small = mask[::2, ::2]
    assert out.size == (32, 32)
    assert np.array_equal(arr[small], np.full((small.sum(), 3), (17, 201, 90), np.uint8))
    assert not np.any(np.all(arr[~small] == (17, 201, 90), axis=-1))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"style": "beach"}, "unknown style 'beach'; known: studio-white, studio-colour, marble"),
        ({"palette": [[1, 2, 3]]}, "2 or 3 RGB colours"),
        ({"seeds": []}, "at least one seed"),
    ],
)
def test_check_inputs_rejects(tiny, kwargs, message):
    image, mask = silhouette(32)
    args = {"style": "marble", "palette": RED, "seeds": [0]} | kwargs
    with pytest.raises(ValueError, match=message):
        tiny(image, mask, num_inference_steps=2, **args)


def test_palette_normalisation():
    np.testing.assert_allclose(normalize_palette([[255, 0, 0], [0, 0, 255]]), [[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(normalize_palette([[0.5, 0.5, 0.5], [0, 1, 0], [1, 1, 0]])[2], [1, 1, 0])


def test_procedural_scenes_are_deterministic_per_seed():
    a = render_scene(123, (48, 64))
    b = render_scene(123, (48, 64))
    c = render_scene(124, (48, 64))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.coverage, b.coverage)
    assert a.style == b.style and np.array_equal(a.palette, b.palette)
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (48, 64, 3) and a.image.dtype == np.float32
    assert 0.0 <= a.image.min() and a.image.max() <= 1.0


def test_procedural_scene_honours_style_and_palette():
    scene = render_scene(5, (64, 64), style="studio-colour", palette=RED, detail=False)
    assert scene.style == "studio-colour"
    np.testing.assert_allclose(scene.palette[0], np.array(RED[0]) / 255, atol=1e-6)
    mean = scene.background.reshape(-1, 3).mean(axis=0)
    assert mean[0] > mean[2] + 0.2


def test_procedural_shadow_darkens_under_product():
    pairs = [shadow_bands(s.image, s.mask) for s in (render_scene(seed, (96, 96), detail=False) for seed in range(100))]
    measured = [(u, b) for u, b in pairs if np.isfinite(u)]
    assert len(measured) >= 95
    # The data teaches grounding: a contact shadow under nearly every product.
    assert sum(u < b for u, b in measured) / len(measured) >= 0.97


def test_training_loop_runs_resumes_and_exports(tmp_path):
    first = train(tmp_path, minutes=5, batch_size=2, resolution=16, size="tiny", max_steps=3, log_every=1)
    assert first["steps"] == 3
    with (tmp_path / "loss.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(np.isfinite(float(r["loss"])) for r in rows)

    second = train(tmp_path, minutes=5, resume=tmp_path / "checkpoint.pt", batch_size=2, max_steps=5, log_every=1)
    assert second["steps"] == 5
    with (tmp_path / "loss.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5]

    pipe = BackdropPipeline.from_pretrained(tmp_path / "model")
    image, mask = silhouette(32)
    scene = pipe(image, mask, STYLE_NAMES[0], RED, seeds=[0], num_inference_steps=2).images[0]
    assert scene.size == (32, 32)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"scheduler": "euler"}, "scheduler", "backdrop-mini can only sample with ddim; choose it instead of euler."),
        ({"guidance": 7.0}, "guidance", "backdrop-mini does not use guidance; leave it at 1 (it is 7)."),
        ({"strength": 0.6}, "strength", "backdrop-mini always paints the whole scene; leave strength at 1 (it is 0.6)."),
    ],
)
def test_backend_refuses_what_its_rules_do_not_allow_before_sampling(monkeypatch, changes, field, message):
    clear_cache()
    backend = load_scene_backend("backdrop-mini")
    calls = []
    monkeypatch.setattr(backend, "pipeline", lambda **kwargs: calls.append(kwargs))
    image, mask = silhouette(32)
    request = SceneRequest(image=image, mask=mask, prompt="", **({"scheduler": "ddim", "steps": 2, "guidance": 1.0} | changes))

    with pytest.raises(ValueError) as info:
        backend.generate(request)

    assert backend.rules.problems(
        scheduler=request.scheduler, steps=request.steps, guidance=request.guidance, strength=request.strength
    ) == {field: message}
    assert str(info.value) == message
    assert calls == []


@pytest.mark.parametrize(("style", "sampled"), [("wood", "wood"), (None, "studio-white")])
def test_backend_samples_the_requested_style_or_the_first(committed, style, sampled):
    image, mask = silhouette(48)
    request = SceneRequest(image=image, mask=mask, prompt="", seeds=(3,), scheduler="ddim", steps=4, guidance=1.0, style=style)

    (scene,) = load_scene_backend("backdrop-mini").generate(request)

    expected = committed(image, mask, sampled, DEFAULT_PALETTE, seeds=[3], num_inference_steps=4).images[0]
    np.testing.assert_array_equal(scene, np.asarray(expected))
