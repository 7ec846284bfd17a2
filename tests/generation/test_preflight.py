"""Channel preflight checks: each passes and fails on crafted images."""

from __future__ import annotations

import numpy as np
import pytest

from generation.preflight import (
    CHANNELS,
    HALO_LIMIT,
    ChannelSpec,
    CheckResult,
    check_edge_halo,
    get_channel,
    run_preflight,
)


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def _canvas(w: int, h: int, box: tuple[int, int, int, int] | None = None):
    """White canvas with a solid product in ``box`` (x0, y0, x1, y1); returns image, alpha, mask."""
    image = np.full((h, w, 3), 255, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    if box is not None:
        x0, y0, x1, y1 = box
        image[y0:y1, x0:x1] = (180, 40, 40)
        alpha[y0:y1, x0:x1] = 1.0
    return image, alpha, alpha >= 0.98


def test_the_channel_presets_are_data() -> None:
    assert sorted(CHANNELS) == ["landscape-1.91", "marketplace-white", "portrait-4x5", "square-2048"]
    assert (CHANNELS["portrait-4x5"].width, CHANNELS["portrait-4x5"].height) == (1080, 1350)
    assert all(spec.max_megapixels == 20.0 for spec in CHANNELS.values())
    with pytest.raises(KeyError, match="unknown channel 'etsy'; known: landscape-1.91"):
        get_channel("etsy")


def test_marketplace_white_passes_a_compliant_image() -> None:
    image, alpha, mask = _canvas(1000, 1000, (50, 40, 950, 960))

    results = run_preflight(image=image, alpha=alpha, mask=mask, channel="marketplace-white")

    assert [(r.name, r.passed) for r in results] == [
        ("size", True), ("long-side", True), ("megapixels", True), ("white-background", True),
        ("product-fill", True), ("edge-halo", True),
    ]
    assert _by_name(results)["product-fill"].value == 0.92
    assert _by_name(results)["white-background"].message == (
        "Background is pure white (RGB 255, 255, 255)."
    )


def test_marketplace_white_fails_one_off_white_background_pixel() -> None:
    image, alpha, mask = _canvas(1000, 1000, (50, 40, 950, 960))
    image[0, 0] = (254, 255, 255)

    check = _by_name(run_preflight(image=image, alpha=alpha, mask=mask, channel="marketplace-white"))

    assert check["white-background"].passed is False
    assert check["white-background"].value == 1.0
    assert check["white-background"].message.startswith("1 of 172000 background pixels")


@pytest.mark.parametrize(
    ("box", "fill", "passed"),
    [
        ((80, 80, 920, 920), 0.84, False),  # 840 px of 1000 on both sides
        ((75, 80, 925, 920), 0.85, True),  # exactly at the limit
        ((450, 70, 550, 930), 0.86, True),  # tall and thin: the long side counts
    ],
)
def test_product_fill_uses_the_bbox_long_side(
    box: tuple[int, int, int, int], fill: float, passed: bool
) -> None:
    image, alpha, mask = _canvas(1000, 1000, box)

    check = _by_name(run_preflight(image=image, alpha=alpha, mask=mask, channel="marketplace-white"))

    assert check["product-fill"].value == fill
    assert check["product-fill"].passed is passed


def test_long_side_below_1000_fails() -> None:
    image, alpha, mask = _canvas(999, 700, (20, 20, 979, 680))

    check = _by_name(run_preflight(image=image, alpha=alpha, mask=mask, channel="marketplace-white"))

    assert check["long-side"].passed is False
    assert check["long-side"].value == 999.0
    assert check["long-side"].message == "Longest side is 999 px; at least 1000 px is needed."


@pytest.mark.parametrize(
    ("channel", "size", "passed"),
    [
        ("square-2048", (2048, 2048), True),
        ("square-2048", (2048, 2047), False),
        ("square-2048", (1714, 1714), True),  # the largest honest size of a smaller photo
        ("square-2048", (2049, 2049), False),
        ("portrait-4x5", (1080, 1350), True),
        ("portrait-4x5", (1350, 1080), False),
        ("portrait-4x5", (864, 1080), True),
        ("portrait-4x5", (866, 1080), False),
        ("landscape-1.91", (1200, 628), True),
        ("landscape-1.91", (1200, 600), False),
        ("landscape-1.91", (600, 314), True),
    ],
)
def test_channel_sizes(channel: str, size: tuple[int, int], passed: bool) -> None:
    image, alpha, mask = _canvas(*size)

    check = _by_name(run_preflight(image=image, alpha=alpha, mask=mask, channel=channel))

    assert check["size"].passed is passed


@pytest.mark.parametrize(("size", "ratio", "passed"), [((1200, 628), 1.9108, True), ((1200, 600), 2.0, False)])
def test_landscape_aspect(size: tuple[int, int], ratio: float, passed: bool) -> None:
    image, alpha, mask = _canvas(*size)

    check = _by_name(run_preflight(image=image, alpha=alpha, mask=mask, channel="landscape-1.91"))

    assert check["aspect"].value == ratio
    assert check["aspect"].passed is passed


@pytest.mark.parametrize(("size", "passed"), [((100, 100), True), ((100, 101), False)])
def test_megapixel_cap(size: tuple[int, int], passed: bool) -> None:
    spec = ChannelSpec(name="tiny", title="Tiny", max_megapixels=0.01)
    image, alpha, mask = _canvas(*size)

    check = _by_name(run_preflight(image=image, alpha=alpha, mask=mask, channel=spec))

    assert check["megapixels"].passed is passed


PRODUCT = np.array([200.0, 30.0, 30.0])
SCENE = np.array([20.0, 20.0, 80.0])


def _halo_scene(ring_color: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A red product square on a navy scene with a 2 px ring of ``ring_color`` around it."""
    image = np.empty((120, 120, 3), np.uint8)
    image[:] = SCENE.astype(np.uint8)
    image[38:82, 38:82] = ring_color.astype(np.uint8)
    image[40:80, 40:80] = PRODUCT.astype(np.uint8)
    mask = np.zeros((120, 120), bool)
    mask[40:80, 40:80] = True
    return image, mask


def _distance_from_blend(px: np.ndarray) -> float:
    d = SCENE - PRODUCT
    t = np.clip(((px - PRODUCT) @ d) / (d @ d), 0.0, 1.0)
    return round(float(np.linalg.norm(px - (PRODUCT + t * d))), 2)


@pytest.mark.parametrize(
    ("ring", "passed"),
    [
        (np.rint(0.5 * PRODUCT + 0.5 * SCENE), True),  # a correct alpha blend
        (np.array([255.0, 255.0, 255.0]), False),  # the old white sweep rimming the product
        (np.array([230.0, 200.0, 200.0]), False),  # a pale pink fringe
    ],
)
def test_edge_halo_flags_a_rim_of_old_background(ring: np.ndarray, passed: bool) -> None:
    image, mask = _halo_scene(ring)

    check = check_edge_halo(image, mask)

    assert check.value == _distance_from_blend(ring)
    assert check.passed is passed
    assert check.limit == HALO_LIMIT


def test_edge_halo_without_product_edge_passes_trivially() -> None:
    image = np.zeros((10, 10, 3), np.uint8)

    check = check_edge_halo(image, np.zeros((10, 10), bool))

    assert (check.passed, check.value, check.message) == (True, 0.0, "No product edge to check.")
