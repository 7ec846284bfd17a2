"""The `stage` and `models` management commands."""
import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generation import models_store
from generation.provenance import read_xmp
from tests.images import product_on_white


@pytest.fixture
def photos(tmp_path):
    paths = []
    for seed, (name, fmt) in enumerate([("bottle.png", "PNG"), ("jar.jpg", "JPEG")]):
        path = tmp_path / name
        path.write_bytes(product_on_white(size=(320, 240), seed=seed, fmt=fmt))
        paths.append(path)
    return paths


def test_stage_writes_cutout_mask_scenes_and_a_report_per_photo(photos, tmp_path):
    out = tmp_path / "out"
    stdout = io.StringIO()

    call_command("stage", *map(str, photos), "--out", str(out), "--variants", "2", "--seed", "7", "--model", "none", stdout=stdout)

    for photo in photos:
        folder = out / photo.stem
        assert sorted(p.name for p in folder.iterdir()) == ["cutout.png", "mask.png", "report.json", "scene-0.png", "scene-1.png"]
        report = json.loads((folder / "report.json").read_text())
        decoded = np.asarray(Image.open(photo).convert("RGB"))
        mask = np.asarray(Image.open(folder / "mask.png")) == 255
        assert Image.open(folder / "cutout.png").mode == "RGBA"
        assert (report["model"], report["settings"]["segmenter"], report["settings"]["size"]) == ("none", "graphcut", [320, 240])
        assert read_xmp((folder / "scene-0.png").read_bytes()) is not None
        assert report["cutout"]["locked_pixels"] == int(mask.sum()) > 5000
        assert [v["seed"] for v in report["variants"]] == [7, 8]
        assert set(report["timings_s"]) == {"decode", "segment", "model_load", "scenes_lock_preflight_write", "total"}
        for variant in report["variants"]:
            certificate = variant["lock_certificate"]
            assert (certificate["changed_pixels"], certificate["max_abs_diff"], certificate["passed"]) == (0, 0, True)
            scene = np.asarray(Image.open(folder / variant["file"]))
            # No --size: the product stays where it was, so locked pixels are the photo's own.
            assert np.array_equal(scene[mask], decoded[mask])
    assert "0 changed" in stdout.getvalue()


def test_stage_accepts_the_deprecated_segmenter_name_studio(photos, tmp_path):
    call_command("stage", str(photos[0]), "--out", str(tmp_path), "--segmenter", "studio", "--model", "none", stdout=io.StringIO())

    report = json.loads((tmp_path / "bottle" / "report.json").read_text())
    assert (report["cutout"]["backend"], report["cutout"]["version"]) == ("graphcut", "graphcut-1.0")


def test_stage_places_the_product_on_a_channel_canvas(photos, tmp_path):
    call_command("stage", str(photos[0]), "--out", str(tmp_path), "--size", "1000x1000", "--channel", "marketplace-white", stdout=io.StringIO())

    report = json.loads((tmp_path / "bottle" / "report.json").read_text())
    scene = np.asarray(Image.open(tmp_path / "bottle" / "scene-0.png"))
    checks = {c["name"]: c["passed"] for c in report["variants"][0]["preflight"]}
    assert scene.shape == (1000, 1000, 3)  # the channel's rule wins over --size: its 1000 px minimum for this small photo
    assert report["variants"][0]["transform"]["scale"] > 1
    assert checks == {"size": True, "long-side": True, "megapixels": True, "white-background": True, "product-fill": True, "edge-halo": True}
    assert report["variants"][0]["lock_certificate"]["changed_pixels"] == 0


def test_stage_reports_a_bad_file_and_still_stages_the_others(photos, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    stderr = io.StringIO()

    with pytest.raises(CommandError, match="1 of 2 photo"):
        call_command("stage", str(bad), str(photos[0]), "--out", str(tmp_path / "out"), stdout=io.StringIO(), stderr=stderr)

    assert "This file is not a JPEG, PNG, WebP, HEIC or AVIF image." in stderr.getvalue()
    assert (tmp_path / "out" / "bottle" / "report.json").exists()
    assert not (tmp_path / "out" / "notes").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "big"], "--size takes WIDTHxHEIGHT"),
        (["--variants", "0"], "--variants must be between 1 and 16"),
        (["--segmenter", "magic"], "Unknown segmenter 'magic'"),
        (["--model", "dall-e"], "unknown scene model 'dall-e'"),
        (["--preset", "beach"], "backdrop-mini has no style 'beach'"),
        (["--model", "sdxl-inpaint"], "model 'sdxl-inpaint' expects its files in .*models pull sdxl-inpaint"),
    ],
)
def test_stage_refuses_bad_options(photos, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("stage", str(photos[0]), "--out", str(tmp_path), *args, stdout=io.StringIO())


def test_stage_with_the_bundled_model_makes_locked_scenes_at_a_size(photos, tmp_path):
    call_command("stage", str(photos[0]), "--out", str(tmp_path), "--size", "400x300", "--preset", "marble", "--variants", "2", stdout=io.StringIO())

    report = json.loads((tmp_path / "bottle" / "report.json").read_text())
    scenes = [np.asarray(Image.open(tmp_path / "bottle" / v["file"])) for v in report["variants"]]
    assert (report["model"], report["backend"]["model"]) == ("backdrop-mini", "backdrop-mini")
    assert [s.shape for s in scenes] == [(300, 400, 3), (300, 400, 3)]
    assert not np.array_equal(scenes[0], scenes[1])
    assert all(v["lock_certificate"]["changed_pixels"] == 0 for v in report["variants"])


def test_models_list_shows_installed_and_missing(settings, tmp_path):
    settings.VITRINE_REMBG_HOME = str(tmp_path)
    target = models_store.expected_path("u2netp", tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"weights")
    stdout = io.StringIO()

    call_command("models", "list", stdout=stdout)

    lines = stdout.getvalue().splitlines()
    assert any(line.split()[:2] == ["rembg:u2netp", "installed"] for line in lines)
    assert any(line.split()[:2] == ["rembg:u2net", "missing"] and "models pull u2net" in line for line in lines)
    assert any(line.split()[0] == "backdrop-mini" for line in lines)


def test_models_verify_catches_a_corrupt_file(settings, tmp_path):
    settings.VITRINE_REMBG_HOME = str(tmp_path)
    target = models_store.expected_path("u2netp", tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated download")

    with pytest.raises(CommandError, match="1 model\\(s\\) failed verification: u2netp"):
        call_command("models", "verify", stdout=io.StringIO())


def test_models_pull_refuses_an_unknown_name(settings, tmp_path):
    settings.VITRINE_REMBG_HOME = str(tmp_path)

    with pytest.raises(CommandError, match="unknown model 'nope'"):
        call_command("models", "pull", "nope", stdout=io.StringIO())


def test_models_pull_reports_an_offline_machine(settings, tmp_path, monkeypatch):
    import urllib.error

    settings.VITRINE_REMBG_HOME = str(tmp_path)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(models_store.urllib.request, "urlopen", offline)

    with pytest.raises(CommandError, match="could not download u2netp: .*Is this machine online"):
        call_command("models", "pull", "u2netp", stdout=io.StringIO())
    assert list(tmp_path.rglob("*.onnx")) == []


def test_models_list_says_what_auto_resolves_to(settings, tmp_path):
    settings.VITRINE_REMBG_HOME = str(tmp_path)
    settings.VITRINE_SEGMENTER = "auto"

    stdout = io.StringIO()
    call_command("models", "list", stdout=stdout)
    assert "Segmenter `auto` resolves to graphcut: no general rembg model" in stdout.getvalue()
    assert "Segmenter in use (VITRINE_SEGMENTER=auto): graphcut" in stdout.getvalue()

    for name in ("u2net", "isnet-general-use"):
        target = models_store.expected_path(name, tmp_path)
        target.parent.mkdir(parents=True)
        target.write_bytes(b"weights")
    stdout = io.StringIO()
    call_command("models", "list", stdout=stdout)
    assert f"Segmenter `auto` resolves to rembg:isnet-general-use: the best installed rembg model in {tmp_path}" in stdout.getvalue()
    assert "Segmenter in use (VITRINE_SEGMENTER=auto): rembg:isnet-general-use" in stdout.getvalue()

    settings.VITRINE_SEGMENTER = "graphcut"
    stdout = io.StringIO()
    call_command("models", "list", stdout=stdout)
    assert "Segmenter in use (VITRINE_SEGMENTER=graphcut): graphcut" in stdout.getvalue()
