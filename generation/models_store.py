"""Which rembg models exist, which are on disk, and how to fetch and verify them.

Plain functions for the ``models`` management command (list / pull / verify) and for the
rembg segmentation backend, which must never let rembg download at run time. File names, URLs
and checksums are those rembg 2.0.86 declares in ``rembg/sessions/*.py``; rembg looks for a
model ``NAME`` at ``<home>/models/NAME/<file>`` and then at ``<home>/<file>``, where ``home``
is ``U2NET_HOME``. Downloads go to the first of those.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "REMBG_MODELS",
    "RembgModel",
    "default_model_home",
    "download_model",
    "expected_path",
    "get_model",
    "installed_models",
    "model_file",
    "pipeline_files_to_fetch",
    "verify_model",
    "weight_digests",
]

_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"


@dataclass(frozen=True)
class RembgModel:
    """One rembg model: its session name, the file rembg loads, where it comes from."""

    name: str
    filename: str
    url: str
    checksum: str  # "md5:<hex>" or "sha256:<hex>", as rembg declares it
    input_size: int
    description: str

    @property
    def pull_command(self) -> str:
        """The command a person runs to fetch this model."""
        return f"python manage.py models pull {self.name}"


def _m(name: str, remote: str, checksum: str, size: int, description: str) -> RembgModel:
    return RembgModel(name, f"{name}.onnx", _RELEASE + remote, checksum, size, description)


REMBG_MODELS: dict[str, RembgModel] = {
    m.name: m
    for m in (
        _m("u2net", "u2net.onnx", "md5:60024c5c889badc19c04ad937298a77b", 320,
           "U^2-Net, general salient objects (176 MB)"),
        _m("u2netp", "u2netp.onnx", "md5:8e83ca70e441ab06c318d82300c84806", 320,
           "U^2-Net lite (4.7 MB)"),
        _m("u2net_human_seg", "u2net_human_seg.onnx", "md5:c09ddc2e0104f800e3e1bb4652583d1f",
           320, "U^2-Net trained on people"),
        _m("silueta", "silueta.onnx", "md5:55e59e0d8062d2f5d013f4725ee84782", 320,
           "U^2-Net pruned (43 MB)"),
        _m("isnet-general-use", "isnet-general-use.onnx",
           "md5:fc16ebd8b0c10d971d3513d564d01e29", 1024, "IS-Net, general use"),
        _m("isnet-anime", "isnet-anime.onnx", "md5:6f184e756bb3bd901c8849220a83e38e", 1024,
           "IS-Net for anime characters"),
        _m("birefnet-general", "BiRefNet-general-epoch_244.onnx",
           "md5:7a35a0141cbbc80de11d9c9a28f52697", 1024, "BiRefNet, general (best quality)"),
        _m("birefnet-general-lite", "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
           "md5:4fab47adc4ff364be1713e97b7e66334", 1024, "BiRefNet, general, tiny backbone"),
        _m("birefnet-portrait", "BiRefNet-portrait-epoch_150.onnx",
           "md5:c3a64a6abf20250d090cd055f12a3b67", 1024, "BiRefNet for portraits"),
        _m("birefnet-dis", "BiRefNet-DIS-epoch_590.onnx",
           "md5:2d4d44102b446f33a4ebb2e56c051f2b", 1024, "BiRefNet, dichotomous segmentation"),
        _m("birefnet-hrsod", "BiRefNet-HRSOD_DHU-epoch_115.onnx",
           "md5:c017ade5de8a50ff0fd74d790d268dda", 1024, "BiRefNet, high-res salient objects"),
        _m("birefnet-cod", "BiRefNet-COD-epoch_125.onnx",
           "md5:f6d0d21ca89d287f17e7afe9f5fd3b45", 1024, "BiRefNet, camouflaged objects"),
        _m("birefnet-massive", "BiRefNet-massive-TR_DIS5K_TR_TEs-epoch_420.onnx",
           "md5:33e726a2136a3d59eb0fdf613e31e3e9", 1024, "BiRefNet trained on a massive set"),
        _m("bria-rmbg", "bria-rmbg-2.0.onnx",
           "sha256:5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958", 1024,
           "BRIA RMBG 2.0 (non-commercial licence)"),
    )
}


def get_model(name: str) -> RembgModel:
    """The model called ``name``; ``ValueError`` lists the known ones."""
    try:
        return REMBG_MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown rembg model {name!r}; known: {', '.join(sorted(REMBG_MODELS))}"
        ) from None


def default_model_home() -> Path | None:
    """``U2NET_HOME`` if set (the folder rembg reads), else ``None``."""
    home = os.environ.get("U2NET_HOME")
    return Path(home).expanduser() if home else None


def _candidates(model: RembgModel, home: Path) -> list[Path]:
    # rembg saves the file as "<session name>.onnx" (the remote name is only the URL).
    return [home / "models" / model.name / model.filename, home / model.filename]


def model_file(name: str, home: str | os.PathLike[str]) -> Path | None:
    """Path of the installed weights for ``name`` under ``home``, or ``None`` if absent."""
    model = get_model(name)
    for path in _candidates(model, Path(home)):
        if path.is_file():
            return path
    return None


def expected_path(name: str, home: str | os.PathLike[str]) -> Path:
    """Where :func:`download_model` puts ``name`` (and rembg looks first)."""
    return _candidates(get_model(name), Path(home))[0]


def installed_models(home: str | os.PathLike[str]) -> dict[str, Path]:
    """Every known model with weights under ``home``, mapped to its file."""
    found = {}
    for name in REMBG_MODELS:
        path = model_file(name, home)
        if path is not None:
            found[name] = path
    return found


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_model(name: str, home: str | os.PathLike[str]) -> bool:
    """True if ``name`` is installed under ``home`` and matches rembg's declared checksum."""
    model = get_model(name)
    path = model_file(name, home)
    if path is None:
        return False
    algorithm, expected = model.checksum.split(":", 1)
    return _digest(path, algorithm) == expected


def download_model(
    name: str, home: str | os.PathLike[str], *, timeout: float = 60.0
) -> Path:
    """Download ``name`` into ``home``, verify its checksum, and move it into place.

    The file is written to a temporary name in the target folder and renamed only after the
    checksum matches, so a broken or partial download never looks installed. ``timeout`` is
    the socket timeout in seconds for connecting and for each read.

    Raises:
        ValueError: unknown model, or the downloaded file's checksum does not match.
        OSError / urllib.error.URLError: network failures (retryable by the caller).
    """
    model = get_model(name)
    target = expected_path(name, home)
    target.parent.mkdir(parents=True, exist_ok=True)
    algorithm, expected = model.checksum.split(":", 1)
    h = hashlib.new(algorithm)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(model.url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != expected:
            raise ValueError(
                f"checksum mismatch for {model.name}: got {algorithm}:{h.hexdigest()}, "
                f"expected {model.checksum}"
            )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


# -- scene model folders (diffusers layout) ----------------------------------------------------

#: Files whose bytes decide a scene model's output; their sha256 goes into every recipe.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
#: Beside the weights in a model folder: ``{relative path: [size, mtime_ns, sha256]}``.
DIGEST_CACHE = ".vitrine-sha256.json"
#: Weight precisions a hub repository may publish beside the full ones (``*.fp16.safetensors``).
_VARIANT = re.compile(r"\.(fp16|bf16|fp32|non_ema|ema)([.-]|$)")


def weight_digests(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every weight file under ``folder``, sorted by path.

    A file whose size and mtime match the digest cache in the folder is not read again, so a
    worker start does not re-hash tens of GB; a changed or new file is hashed and the cache
    rewritten (kept in memory only where the folder is read-only).
    """
    cache_path = folder / DIGEST_CACHE
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    digests, fresh = {}, {}
    for path in sorted(folder.rglob("*")):
        if not (path.is_file() and path.suffix in WEIGHT_SUFFIXES):
            continue
        key = path.relative_to(folder).as_posix()
        stat = path.stat()
        cached = cache.get(key)
        if isinstance(cached, list) and cached[:2] == [stat.st_size, stat.st_mtime_ns]:
            digest = cached[2]
        else:
            digest = _digest(path, "sha256")
        digests[key] = digest
        fresh[key] = [stat.st_size, stat.st_mtime_ns, digest]
    if fresh != cache:
        try:
            cache_path.write_text(json.dumps(fresh, indent=1, sort_keys=True))
        except OSError:
            pass
    return digests


def pipeline_files_to_fetch(listing: list[str], model_index: dict) -> list[str]:
    """The files of a hub repository listing that a diffusers pipeline loads.

    ``model_index.json`` names the pipeline's components: each lives in the folder of its
    name. Kept: ``model_index.json`` and, inside those folders, configs, tokenizer files and
    full-precision ``*.safetensors`` weights. Left out: the root single-file checkpoints
    (FLUX.1 Fill's is ~24 GB), precision variants (``*.fp16.safetensors``), pickled weights
    where safetensors exist, and folders no component loads.
    """
    components = {
        name for name, value in model_index.items()
        if not name.startswith("_") and isinstance(value, list) and value[0] is not None
    }
    inside = [p for p in listing if p.partition("/")[0] in components and p.count("/") == 1]
    inside = [p for p in inside if not _VARIANT.search(p.partition("/")[2])]
    has_safetensors = {p.partition("/")[0] for p in inside if p.endswith(".safetensors")}
    wanted = ["model_index.json"] if "model_index.json" in listing else []
    for path in inside:
        folder, _, name = path.partition("/")
        suffix = Path(name).suffix
        if suffix in WEIGHT_SUFFIXES and suffix != ".safetensors" and folder in has_safetensors:
            continue  # pickled duplicates of the safetensors weights
        if suffix in (".onnx", ".msgpack", ".pb", ".h5") or "flax" in name:
            continue
        wanted.append(path)
    return sorted(wanted)


