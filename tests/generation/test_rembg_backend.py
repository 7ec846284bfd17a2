"""The rembg backend with a tiny ONNX model built here; and the model store."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from generation import models_store
from generation.segmentation import ModelNotInstalled, get_segmenter
from generation.segmentation.base import SegmentationResult


def _tiny_u2net(path: Path) -> None:
    """An ONNX graph with u2net's interface whose "saliency" is the normalized red channel.

    Input ``[1, 3, 320, 320]`` float, output ``[1, 1, 320, 320]``: a Slice of channel 0. rembg
    min-max normalizes the output, so pure red pixels come out as alpha 1 and black as 0.
    """
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 320, 320])
    out = helper.make_tensor_value_info("saliency", TensorProto.FLOAT, [1, 1, 320, 320])
    consts = [
        helper.make_tensor(name, TensorProto.INT64, [1], [value])
        for name, value in (("starts", 0), ("ends", 1), ("axes", 1))
    ]
    node = helper.make_node("Slice", ["input.1", "starts", "ends", "axes"], ["saliency"])
    graph = helper.make_graph([node], "tiny_u2net", [inp], [out], initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("u2net_home")
    _tiny_u2net(home / "models" / "u2net" / "u2net.onnx")
    return home


@pytest.fixture(scope="module")
def disc_result(model_home: Path) -> tuple[np.ndarray, SegmentationResult]:
    """Segment a red disc on black once (the first use imports rembg: slow)."""
    yy, xx = np.mgrid[0:320, 0:320]
    disc = (xx - 150) ** 2 + (yy - 170) ** 2 < 90**2
    image = np.zeros((320, 320, 3), np.uint8)
    image[disc] = (255, 0, 0)
    return disc, get_segmenter("rembg:u2net", model_dir=model_home).segment(image)


def test_the_mask_follows_the_model_output(disc_result) -> None:
    disc, result = disc_result

    # The matte is the model's disc; the lock mask is that disc minus its outline pixels.
    assert np.array_equal(result.alpha, disc.astype(np.float32))
    assert np.array_equal(result.mask, cv2.erode(disc.astype(np.uint8), np.ones((3, 3), np.uint8)) == 1)
    assert result.bbox == (61, 81, 240, 260)
    assert result.backend == "rembg:u2net"
    assert result.version == "rembg-1.0+u2net"
    assert result.confident is True


def test_locked_foreground_is_the_photo(disc_result) -> None:
    disc, result = disc_result

    assert np.all(result.foreground[result.mask] == (255, 0, 0))
    assert int(result.mask.sum()) == int(disc.sum()) - 712  # the outline ring is blended


def test_a_missing_model_raises_before_any_network_access(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    with pytest.raises(ModelNotInstalled) as info:
        get_segmenter("rembg:isnet-general-use", model_dir=tmp_path)

    expected = tmp_path / "models" / "isnet-general-use" / "isnet-general-use.onnx"
    assert str(info.value) == (
        f"rembg model 'isnet-general-use' is not installed: missing file {expected}; "
        "run `python manage.py models pull isnet-general-use`"
    )


def test_no_model_folder_at_all_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("U2NET_HOME", raising=False)

    with pytest.raises(ModelNotInstalled, match="set U2NET_HOME .* `python manage.py models pull u2net`"):
        get_segmenter("rembg:u2net")


@pytest.mark.parametrize("name", ["rembg:nope", "grabcut"])
def test_unknown_backends_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        get_segmenter(name)


def test_installed_models_finds_both_rembg_layouts(tmp_path: Path) -> None:
    (tmp_path / "models" / "u2net").mkdir(parents=True)
    (tmp_path / "models" / "u2net" / "u2net.onnx").write_bytes(b"x")
    (tmp_path / "silueta.onnx").write_bytes(b"y")

    found = models_store.installed_models(tmp_path)

    assert found == {
        "u2net": tmp_path / "models" / "u2net" / "u2net.onnx",
        "silueta": tmp_path / "silueta.onnx",
    }


def test_verify_model_checks_the_declared_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "u2netp.onnx"
    path.write_bytes(b"weights")
    declared = models_store.REMBG_MODELS["u2netp"]

    assert models_store.verify_model("u2netp", tmp_path) is False
    monkeypatch.setitem(
        models_store.REMBG_MODELS, "u2netp",
        dataclasses.replace(declared, checksum="md5:" + hashlib.md5(b"weights").hexdigest()),
    )
    assert models_store.verify_model("u2netp", tmp_path) is True
    assert models_store.verify_model("u2net", tmp_path) is False  # not installed


def _serve_as(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes) -> Path:
    """Point u2netp's URL at a local file:// copy of ``payload`` (declared checksum: b"good")."""
    source = tmp_path / "remote.onnx"
    source.write_bytes(payload)
    declared = models_store.REMBG_MODELS["u2netp"]
    monkeypatch.setitem(
        models_store.REMBG_MODELS, "u2netp",
        dataclasses.replace(declared, url=source.as_uri(),
                            checksum="md5:" + hashlib.md5(b"good").hexdigest()),
    )
    return tmp_path / "home"


def test_download_installs_a_verified_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _serve_as(tmp_path, monkeypatch, b"good")

    path = models_store.download_model("u2netp", home, timeout=5)

    assert path == home / "models" / "u2netp" / "u2netp.onnx"
    assert path.read_bytes() == b"good"
    assert sorted(p.name for p in path.parent.iterdir()) == ["u2netp.onnx"]
    assert models_store.verify_model("u2netp", home) is True


def test_download_with_a_bad_checksum_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _serve_as(tmp_path, monkeypatch, b"corrupt")

    with pytest.raises(ValueError, match="checksum mismatch for u2netp"):
        models_store.download_model("u2netp", home, timeout=5)

    assert list((home / "models" / "u2netp").iterdir()) == []
    assert models_store.installed_models(home) == {}


def test_every_known_model_names_its_pull_command() -> None:
    assert models_store.get_model("birefnet-general").pull_command == (
        "python manage.py models pull birefnet-general"
    )
    assert all(m.filename == f"{m.name}.onnx" for m in models_store.REMBG_MODELS.values())
    assert all(m.checksum.split(":")[0] in {"md5", "sha256"} for m in models_store.REMBG_MODELS.values())


# `auto`: the best rembg model installed, else graphcut ----------------------------------------


def test_auto_runs_the_installed_rembg_model(model_home: Path) -> None:
    from generation.segmentation import resolve_auto

    assert resolve_auto(model_home).name == "rembg:u2net"
    yy, xx = np.mgrid[0:320, 0:320]
    disc = (xx - 150) ** 2 + (yy - 170) ** 2 < 90**2
    image = np.zeros((320, 320, 3), np.uint8)
    image[disc] = (255, 0, 0)

    segmenter = get_segmenter("auto", model_dir=model_home)
    result = segmenter.segment(image)

    assert (segmenter.name, result.backend) == ("rembg:u2net", "rembg:u2net")
    assert np.array_equal(result.alpha, disc.astype(np.float32))  # the model's output, not graphcut's


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["u2netp", "u2net"], "rembg:u2net"),
        (["u2net", "isnet-general-use"], "rembg:isnet-general-use"),
        (["isnet-general-use", "birefnet-general-lite", "u2net"], "rembg:birefnet-general-lite"),
        (["birefnet-general-lite", "birefnet-general"], "rembg:birefnet-general"),
        # Special-purpose and non-commercial models are used only when named.
        (["birefnet-portrait", "isnet-anime", "bria-rmbg", "u2net_human_seg"], "graphcut"),
    ],
)
def test_auto_prefers_birefnet_then_isnet_then_u2net(tmp_path: Path, files, expected) -> None:
    from generation.segmentation import resolve_auto

    for name in files:
        path = models_store.expected_path(name, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")

    assert resolve_auto(tmp_path).name == expected


def test_auto_is_graphcut_without_weights_or_without_rembg(
    tmp_path: Path, model_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from generation.segmentation import resolve_auto

    empty = resolve_auto(tmp_path)
    assert empty.name == "graphcut" and "no general rembg model" in empty.reason
    monkeypatch.delenv("U2NET_HOME", raising=False)
    assert resolve_auto(None).name == "graphcut"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "rembg" else real_find_spec(name, *a))
    no_package = resolve_auto(model_home)
    assert no_package.name == "graphcut" and "the rembg package is not" in no_package.reason
    assert get_segmenter("auto", model_dir=model_home).name == "graphcut"


def test_a_model_output_spanning_the_frame_is_not_confident(model_home: Path) -> None:
    # The tiny model calls every red pixel product: a red band across the frame (a table edge).
    image = np.zeros((320, 320, 3), np.uint8)
    image[150:200, :] = (255, 0, 0)

    result = get_segmenter("rembg:u2net", model_dir=model_home).segment(image)

    assert result.confident is False
    assert "spans-frame" in result.notes and "leaves-frame" in result.notes
