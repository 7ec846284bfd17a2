"""An independent check of a delivered asset against the photo it claims to carry.

Usable without Django: ``verify_asset(asset_png_bytes, original_bytes)``. It shares no code
with the compositor (it does not import generation.lock): from the original file and the
recipe the asset carries in its ``vitrine:lock`` iTXt chunk (the certificate JSON and the
product's hard mask), it re-derives the working pixels and the colour conversion the ingest
decode applies (the certificate's ``colour_conversion`` must be that record: source profile,
its sha256, intent, converted), places the pixels by the recorded transform with its own
arithmetic, and compares every locked pixel of the asset.

The recipe chunk is JSON: ``{"version": 1, "certificate": {...}, "mask": {"shape": [H, W],
"bits": base64(packbits(mask, row-major))}}``; the certificate's fields are documented on
``generation.lock.LockCertificate``.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np
import PIL
from PIL import Image

from .decoding import working_copy

__all__ = ["LOCK_KEYWORD", "Verdict", "lock_recipe", "read_lock_recipe", "rebuild_working_copy", "verify_asset"]

LOCK_KEYWORD = "vitrine:lock"
IDENTICAL, RESAMPLED_AS_DECLARED, CHANGED = "identical", "resampled-as-declared", "changed"
#: The filter name this verifier reproduces (Pillow's BILINEAR, at this Pillow version).
FILTER = f"pillow-{PIL.__version__}-bilinear"


def lock_recipe(*, certificate: dict, mask: np.ndarray) -> str:
    """The recipe chunk's text for a certificate and the product's hard mask (photo coordinates)."""
    mask = np.asarray(mask, bool)
    bits = base64.b64encode(np.packbits(mask).tobytes()).decode("ascii")
    return json.dumps({"version": 1, "certificate": certificate, "mask": {"shape": list(mask.shape), "bits": bits}}, sort_keys=True)


def read_lock_recipe(png: bytes) -> dict | None:
    """The recipe from a PNG's ``vitrine:lock`` iTXt chunk, read from the chunks directly.

    Deliberately not provenance.read_xmp's loop: the verifier is meant to be read and run by
    someone who trusts none of the engine, so it carries its own short parser."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    offset = 8
    while offset + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[offset : offset + 8])
        data = png[offset + 8 : offset + 8 + length]
        if kind == b"iTXt":
            keyword, _, rest = data.partition(b"\x00")
            if keyword == LOCK_KEYWORD.encode("latin-1"):
                compressed = rest[0]
                _lang, _, rest = rest[2:].partition(b"\x00")
                _tkey, _, text = rest.partition(b"\x00")
                return json.loads(zlib.decompress(text) if compressed else text)
        if kind == b"IEND":
            break
        offset += 12 + length
    return None


@dataclass
class Verdict:
    verdict: str
    locked_pixels: int = 0
    changed_pixels: int = 0
    max_abs_diff: int = 0
    kind: str = ""
    scale: float | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        head = f"{self.verdict}: {self.changed_pixels:,} of {self.locked_pixels:,} locked pixels changed (max diff {self.max_abs_diff})"
        if self.kind:
            head += f"; declared {self.kind}" + (f" at scale {self.scale:g}" if self.scale not in (None, 1.0) else "")
        return "\n".join([head, *(f"- {p}" for p in self.problems)])


def _hash_rgb(arr: np.ndarray) -> str:
    arr = np.ascontiguousarray(arr, np.uint8)
    digest = hashlib.sha256(f"|u1:{'x'.join(str(d) for d in arr.shape)}:".encode("ascii"))
    digest.update(arr.tobytes())
    return digest.hexdigest()


def _hash_mask(mask: np.ndarray) -> str:
    h, w = mask.shape
    digest = hashlib.sha256(f"vitrine-mask-v1:{h}x{w}:".encode("ascii"))
    digest.update(np.packbits(mask).tobytes())
    return digest.hexdigest()


def rebuild_working_copy(original: bytes, max_side: int | None) -> tuple[np.ndarray, dict]:
    """The upload's working copy (uint8 RGB) and its colour record, rebuilt from the uploaded
    file's bytes as the ingest rules define it: the same rules as upload
    (`generation.decoding.working_copy`: upright, 8-bit, converted to sRGB from the file's
    own colour profile, long side at most ``max_side``; a large JPEG decoded at a reduced DCT
    scale first). The ingest rules are reused on purpose; what this module recomputes on its
    own is the placement and the lock."""
    with Image.open(io.BytesIO(original)) as image:
        side = max_side or max(image.size)
        if image.format == "JPEG" and max(image.size) > side:
            image.draft("RGB", (side, side))
        image.load()
        working, colour = working_copy(image, side)
    return np.asarray(working.convert("RGB")), colour


def _expected_layer(working: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    if scale == 1.0:
        return working, mask
    h, w = mask.shape
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    rgb = np.asarray(Image.fromarray(working, "RGB").resize(size, Image.Resampling.BILINEAR))
    coverage = np.asarray(Image.fromarray(mask.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR))
    return rgb, coverage == 1.0


def verify_asset(asset: bytes, original: bytes) -> Verdict:
    """Recompute the locked product of ``asset`` (PNG bytes) from ``original`` (the uploaded file)."""
    recipe = read_lock_recipe(asset)
    if recipe is None:
        return Verdict(CHANGED, problems=["the asset carries no lock recipe (no vitrine:lock chunk)"])
    cert = recipe["certificate"]
    t = cert["transform"]
    scale, dx, dy = float(t["scale"]), int(t["dx"]), int(t["dy"])
    verdict = Verdict(CHANGED, kind=cert.get("kind", ""), scale=scale)
    problems = verdict.problems

    if cert.get("original_sha256") and hashlib.sha256(original).hexdigest() != cert["original_sha256"]:
        problems.append("the original file is not the one the certificate names (sha256 differs)")
    if not cert.get("original_sha256"):
        problems.append("the certificate names no original file")
    working, colour = rebuild_working_copy(original, cert.get("working_max_side"))
    if cert.get("working_sha256") and _hash_rgb(working) != cert["working_sha256"]:
        problems.append("the original's decoded working pixels differ from the certificate's working_sha256")
    declared = cert.get("colour_conversion")
    if isinstance(declared, dict):
        if declared != colour:
            problems.append(f"the certificate's colour conversion {declared} is not what the original's decode does ({colour})")
    elif colour.get("converted"):
        problems.append(f"the original is converted to sRGB from {colour.get('source_profile')!r} ({colour.get('intent')}), and the certificate does not say so")
    shape = tuple(recipe["mask"]["shape"])
    bits = np.frombuffer(base64.b64decode(recipe["mask"]["bits"]), np.uint8)
    mask = np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)
    if _hash_mask(mask) != cert.get("mask_sha256"):
        problems.append("the embedded mask differs from the certificate's mask_sha256")
    if mask.shape != working.shape[:2]:
        problems.append(f"the mask is {shape[1]}×{shape[0]} but the working photo is {working.shape[1]}×{working.shape[0]}")
        verdict.verdict = CHANGED
        return verdict
    identical = scale == 1.0
    if cert.get("kind") != ("pixel-identical" if identical else "resampled"):
        problems.append(f"the certificate claims {cert.get('kind')!r} at scale {scale:g}")
    if not identical and cert.get("filter") != FILTER:
        problems.append(f"the declared filter {cert.get('filter')!r} is not the one this verifier reproduces ({FILTER})")

    with Image.open(io.BytesIO(asset)) as image:
        pixels = np.asarray(image.convert("RGB"))
    ch, cw = pixels.shape[:2]
    if [cw, ch] != list(cert.get("canvas_size", [])):
        problems.append(f"the asset is {cw}×{ch}, the certificate says {cert.get('canvas_size')}")
    if _hash_rgb(pixels) != cert.get("image_sha256"):
        problems.append("the asset's pixels differ from the certificate's image_sha256")

    rgb, placed = _expected_layer(working, mask, scale)
    lh, lw = placed.shape
    x0, y0, x1, y1 = max(0, dx), max(0, dy), min(cw, dx + lw), min(ch, dy + lh)
    if x1 > x0 and y1 > y0:
        window = placed[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
        expected = rgb[y0 - dy : y1 - dy, x0 - dx : x1 - dx][window].astype(np.int16)
        actual = pixels[y0:y1, x0:x1][window].astype(np.int16)
        diff = np.abs(actual - expected)
        verdict.locked_pixels = int(window.sum())
        if diff.size:
            tolerance = int(cert.get("tolerance", 0))
            verdict.changed_pixels = int(np.count_nonzero((diff > tolerance).any(axis=1)))
            verdict.max_abs_diff = int(diff.max())
    if verdict.locked_pixels == 0:
        problems.append("no product pixel is locked")
    if verdict.locked_pixels != int(cert.get("locked_pixels", -1)):
        problems.append(f"{verdict.locked_pixels:,} pixels are locked, the certificate says {cert.get('locked_pixels')}")
    if verdict.changed_pixels:
        problems.append(f"{verdict.changed_pixels:,} product pixels differ from the original photo placed as declared")
    if not problems:
        verdict.verdict = IDENTICAL if identical else RESAMPLED_AS_DECLARED
    return verdict
