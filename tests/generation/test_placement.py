"""Placement that prefers identity: on every channel, the product keeps its own pixels (scale 1,
an integer offset) whenever the channel's canvas can hold it at native size within the framing
rule; it is downscaled only when the canvas cannot hold it, and never enlarged without the
resolution gate's warning. Checked on the plan, then through `render` and the independent
verifier on delivered files."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from generation.compose import AS_PHOTO, DOWNSCALED, ENLARGED, NATIVE, SMALLER_CANVAS, plan_placement
from generation.gates import PASS, WARN, CutoutSignals, asset_gates
from generation.imaging import array_sha256
from generation.lock import PIXEL_IDENTICAL, RESAMPLED, ProductLayer, SourceRecord
from generation.preflight import CHANNELS
from generation.render import RenderPlan, channel_spec, render
from generation.staging import PlainBackdrop
from generation.verify import verify_asset

#: Photos as merchants send them: (photo size, product box) — a phone crop, a typical studio
#: shot, a full-frame camera file.
PHOTOS = {
    "small": ((400, 300), (120, 40, 280, 260)),  # product 160×220 px
    "medium": ((1600, 1200), (500, 200, 1100, 1000)),  # product 600×800 px
    "large": ((6000, 4000), (1500, 500, 4500, 3800)),  # product 3000×3300 px
}
CHANNEL_NAMES = (*CHANNELS, "1500x1000")


def _fill(box_size: tuple[int, int], scale: float, canvas: tuple[int, int]) -> float:
    return max(box_size[0] * scale / canvas[0], box_size[1] * scale / canvas[1])


def _holds_at_native_size(spec, box_size: tuple[int, int]) -> bool:
    """Some canvas the channel allows frames the product at scale 1 within its fill range:
    its full size, or (where a smaller canvas is allowed) its shape at any size down to
    min_long_side."""
    low, high = spec.fill_range
    full = (spec.width, spec.height)
    if not spec.smaller_canvas:
        return low <= _fill(box_size, 1.0, full) <= high
    smallest = (spec.min_long_side or 1) / max(full)
    return _fill(box_size, 1.0, full) <= high and _fill(box_size, 1.0, full) / smallest >= low


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize("name", CHANNEL_NAMES)
def test_the_product_keeps_its_pixels_whenever_the_channel_can_hold_it(name: str, photo: str) -> None:
    spec = channel_spec(name)
    size, box = PHOTOS[photo]
    box_size = (box[2] - box[0], box[3] - box[1])
    placement = plan_placement(channel=spec, bbox=box, photo_size=size)
    t, canvas = placement.transform, placement.canvas
    low, high = spec.fill_range

    assert isinstance(t.dx, int) and isinstance(t.dy, int)
    if _holds_at_native_size(spec, box_size):
        assert t.scale == 1.0, (name, photo, placement)
        assert placement.reason in (NATIVE, SMALLER_CANVAS)
    else:
        assert t.scale != 1.0 and placement.reason in (DOWNSCALED, ENLARGED), (name, photo, placement)
    # The framing rule holds, whatever the scale (to a pixel of rounding).
    assert low - 1 / min(canvas) <= _fill(box_size, t.scale, canvas) <= max(high, spec.fill) + 1 / min(canvas)
    # The whole product box is on the canvas.
    assert t.dx + box[0] * t.scale >= 0 and t.dy + box[1] * t.scale >= 0
    assert t.dx + box[2] * t.scale <= canvas[0] + 1 and t.dy + box[3] * t.scale <= canvas[1] + 1
    # Never larger than the channel's size; a smaller canvas keeps its shape and floor.
    assert canvas[0] <= spec.width and canvas[1] <= spec.height
    if canvas != (spec.width, spec.height):
        assert spec.smaller_canvas and placement.reason in (SMALLER_CANVAS, ENLARGED)
        assert abs(canvas[0] / canvas[1] - spec.width / spec.height) < 2 / min(canvas)
        assert max(canvas) >= (spec.min_long_side or 0)
    # Enlarged only where a smaller canvas could not frame it honestly, and then with a warning.
    if t.scale > 1.0:
        assert placement.reason == ENLARGED
        assert _resolution_gate(placement, spec.title).status == WARN


def _resolution_gate(placement, title: str):
    gates = asset_gates(
        certificate={"locked_pixels": 100, "changed_pixels": 0, "max_abs_diff": 0}, preflight=[],
        cutout=CutoutSignals(confident=True, notes=(), locked_pixels=100), scale=placement.transform.scale,
        background_colours=[], palette=[], palette_max_delta_e=None, white_background=False, prompt="", banned_terms=[],
        placement=placement.to_dict(), channel_title=title,
    )
    return next(g for g in gates if g.name == "resolution")


def test_a_photo_too_small_for_the_channel_is_enlarged_only_with_a_warning_that_says_so() -> None:
    spec = CHANNELS["square-2048"]
    placement = plan_placement(channel=spec, bbox=(50, 50, 350, 350), photo_size=(400, 400))

    assert placement.reason == ENLARGED and placement.canvas == (1024, 1024) and placement.transform.scale > 1
    gate = _resolution_gate(placement, spec.title)
    assert gate.status == WARN
    assert "This photo is 400 px (the product 300 px of it); Square 2048 wants 2,048 px" in gate.reason
    assert "Upload a larger photo" in gate.reason


def test_a_smaller_photo_gets_the_largest_honest_size_and_says_so() -> None:
    spec = CHANNELS["square-2048"]
    # The product is 600 px: it fills 35 % of a 1714 px square at its own size.
    placement = plan_placement(channel=spec, bbox=(100, 100, 700, 500), photo_size=(800, 600))

    assert (placement.reason, placement.transform.scale, placement.canvas) == (SMALLER_CANVAS, 1.0, (1714, 1714))
    gate = _resolution_gate(placement, spec.title)
    assert gate.status == WARN and "made at 1714×1714 px" in gate.reason


def test_a_photo_large_enough_is_placed_at_native_size_on_the_full_canvas() -> None:
    spec = CHANNELS["square-2048"]
    placement = plan_placement(channel=spec, bbox=(400, 300, 1400, 1500), photo_size=(1800, 1800))

    assert (placement.reason, placement.transform.scale, placement.canvas) == (NATIVE, 1.0, (2048, 2048))
    assert _resolution_gate(placement, spec.title).status == PASS


def test_a_product_too_large_for_the_canvas_is_downscaled_to_the_channels_framing() -> None:
    spec = CHANNELS["portrait-4x5"]
    placement = plan_placement(channel=spec, bbox=(1500, 500, 4500, 3800), photo_size=(6000, 4000))

    assert placement.reason == DOWNSCALED and placement.canvas == (1080, 1350)
    assert placement.transform.scale == pytest.approx(spec.fill / max(3000 / 1080, 3300 / 1350), abs=1e-6)
    assert _resolution_gate(placement, spec.title).status == PASS


def test_as_photo_is_the_photo_itself() -> None:
    placement = plan_placement(channel=AS_PHOTO, bbox=(10, 10, 50, 50), photo_size=(64, 64))
    assert (placement.canvas, placement.transform.to_dict()) == ((64, 64), {"scale": 1.0, "dx": 0, "dy": 0})


# Through render and the independent verifier -------------------------------------------------


def _photo(size: tuple[int, int], box: tuple[int, int, int, int]) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(sum(size))
    w, h = size
    rgb = np.full((h, w, 3), 245, np.uint8)
    x0, y0, x1, y1 = box
    rgb[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)  # detail a resample would change
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), rgb, mask


def _render(original: bytes, rgb: np.ndarray, mask: np.ndarray, box, channels) -> list:
    layer = ProductLayer(rgb=rgb, alpha=mask.astype(np.float32), mask=mask)
    plan = RenderPlan(
        model="none", backend="backdrop", prompt="", negative_prompt="", seeds=(1,), channels=tuple(channels),
        steps=1, guidance=1.0, strength=1.0, scheduler="ddim",
    )
    source = SourceRecord(original_sha256=hashlib.sha256(original).hexdigest(), working_sha256=array_sha256(rgb))
    return list(render(plan=plan, layer=layer, bbox=box, backend=PlainBackdrop((200, 200, 200)), previews=False, source=source))


@pytest.mark.parametrize("photo", ["small", "medium"])
def test_every_delivered_asset_names_its_lock_kind_by_its_scale_and_verifies(photo: str) -> None:
    size, box = PHOTOS[photo]
    original, rgb, mask = _photo(size, box)
    assets = _render(original, rgb, mask, box, ("as-photo", *CHANNEL_NAMES))
    for asset in assets:
        cert = asset.certificate.to_dict()
        scale = cert["transform"]["scale"]
        # Fails if any asset claims pixel-identical at a scale other than 1, or the reverse.
        assert cert["kind"] == (PIXEL_IDENTICAL if scale == 1.0 else RESAMPLED), (asset.channel, cert)
        assert scale == asset.placement.transform.scale and [asset.width, asset.height] == list(asset.placement.canvas)
        verdict = verify_asset(asset.png, original)
        assert verdict.verdict == ("identical" if scale == 1.0 else "resampled-as-declared"), (asset.channel, verdict.summary())
        assert verdict.changed_pixels == 0 and verdict.locked_pixels == cert["locked_pixels"] > 0
        if scale == 1.0:
            # Pixel-identical means it: the delivered file carries the photo's own pixels at an integer offset.
            delivered = np.asarray(Image.open(io.BytesIO(asset.png)).convert("RGB"))
            t = cert["transform"]
            x0, y0, x1, y1 = box
            window = delivered[y0 + t["dy"] : y1 + t["dy"], x0 + t["dx"] : x1 + t["dx"]]
            assert np.array_equal(window, rgb[y0:y1, x0:x1]), asset.channel
    kinds = {a.channel: a.certificate.kind for a in assets}
    if photo == "medium":
        # A 600×800 product: at its own size on the square (39 % fill), the portrait (59 %) and
        # the custom canvas (80 %); too tall for the 628 px landscape (downscaled); under the
        # marketplace's 1000 px at 86 % fill (enlarged, with the warning).
        assert kinds == {
            "as-photo": PIXEL_IDENTICAL, "square-2048": PIXEL_IDENTICAL, "portrait-4x5": PIXEL_IDENTICAL,
            "1500x1000": PIXEL_IDENTICAL, "landscape-1.91": RESAMPLED, "marketplace-white": RESAMPLED,
        }
