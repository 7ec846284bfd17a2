"""The QA gates and the colour arithmetic under them, as plain functions."""
import numpy as np
import pytest

from generation.colour import delta_e_2000, dominant_colours, hex_to_rgb, srgb_to_lab
from generation.gates import FAIL, PASS, WARN, CutoutSignals, asset_gates, gates_passed, palette_gate

# Sharma, Wu & Dalal (2005), table 1: (Lab1, Lab2, ΔE00).
SHARMA_PAIRS = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.mark.parametrize("lab1, lab2, expected", SHARMA_PAIRS)
def test_ciede2000_matches_the_published_test_pairs(lab1, lab2, expected):
    assert float(delta_e_2000(lab1, lab2)) == pytest.approx(expected, abs=1e-4)


def test_srgb_white_and_black_land_on_the_lab_poles():
    lab = srgb_to_lab(np.array([[255, 255, 255], [0, 0, 0]]))

    assert lab[0] == pytest.approx([100.0, 0.0, 0.0], abs=0.01)
    assert lab[1] == pytest.approx([0.0, 0.0, 0.0], abs=0.01)


def test_dominant_colours_finds_the_colours_and_their_shares():
    image = np.zeros((40, 100, 3), dtype=np.uint8)
    image[:, :70] = (200, 30, 40)
    image[:, 70:] = (20, 60, 200)

    found = dominant_colours(image, k=3)

    assert [c for c, _ in found] == [(200, 30, 40), (20, 60, 200)]
    assert [round(s, 2) for _, s in found] == [0.7, 0.3]
    assert dominant_colours(image, mask=np.zeros((40, 100), dtype=bool)) == []


def test_hex_colours_are_parsed_strictly():
    assert hex_to_rgb("#1a2B3c") == (26, 43, 60)
    with pytest.raises(ValueError):
        hex_to_rgb("#12345")


def _gates(**overrides):
    values = dict(
        certificate={"locked_pixels": 5000, "changed_pixels": 0, "max_abs_diff": 0},
        preflight=[{"name": "edge-halo", "passed": True, "value": 2.0, "limit": 12.0, "message": "Clean edges."}],
        cutout=CutoutSignals(confident=True, notes=(), locked_pixels=5000),
        scale=1.0,
        background_colours=[((240, 235, 225), 1.0)],
        palette=[(240, 236, 226)],
        palette_max_delta_e=20.0,
        white_background=False,
        prompt="a product on linen",
        banned_terms=["knife"],
    )
    values.update(overrides)
    return {g.name: g for g in asset_gates(**values)}


def test_a_clean_asset_passes_every_gate_and_says_its_pixels_are_the_photos():
    gates = _gates()

    assert {g.status for g in gates.values()} == {PASS}
    assert gates["lock"].reason == "Product pixels identical to your photo (5,000 product pixels locked)."


def test_a_resized_product_is_named_as_resized_and_enlargement_warns_without_blocking():
    gates = _gates(scale=2.5)

    assert gates["lock"].status == PASS and "resized 2.50×" in gates["lock"].reason
    assert gates["resolution"].status == WARN
    assert gates_passed(gates.values())


@pytest.mark.parametrize(
    "overrides, gate, words",
    [
        ({"certificate": {"locked_pixels": 5000, "changed_pixels": 3, "max_abs_diff": 9}}, "lock", "3 of 5,000 product pixels differ"),
        ({"certificate": {"locked_pixels": 0, "changed_pixels": 0, "max_abs_diff": 0}}, "lock", "No product pixel is locked"),
        ({"cutout": CutoutSignals(confident=False, notes=("busy-background",), locked_pixels=5000)}, "cutout", "parts of it may be taken for the product"),
        ({"preflight": [{"name": "edge-halo", "passed": False, "value": 30.0, "limit": 12.0, "message": "A light rim."}]}, "edge-halo", "A light rim."),
        ({"preflight": [{"name": "white-background", "passed": False, "value": 12.0, "limit": 0.0, "message": "12 pixels are not white."}]}, "preflight", "12 pixels are not white."),
        ({"background_colours": [((30, 160, 60), 1.0)]}, "palette", "from the brand palette (the kit allows 20)"),
        ({"prompt": "a chef's KNIVES on a board"}, "banned-terms", "'knife'"),
    ],
)
def test_each_failing_gate_blocks_and_says_why(overrides, gate, words):
    gates = _gates(**overrides)

    assert gates[gate].status == FAIL
    assert words in gates[gate].reason
    assert not gates_passed(gates.values())


def test_the_palette_does_not_apply_on_a_white_background_channel_or_without_a_palette():
    far = [((30, 160, 60), 1.0)]

    assert palette_gate(background_colours=far, palette=[(240, 236, 226)], max_delta_e=20, white_background=True).status == PASS
    assert palette_gate(background_colours=far, palette=[], max_delta_e=20, white_background=False).status == PASS


def test_the_palette_distance_is_weighted_by_how_much_of_the_scene_a_colour_covers():
    mostly_on_palette = [((240, 235, 225), 0.9), ((30, 160, 60), 0.1)]

    gate = palette_gate(background_colours=mostly_on_palette, palette=[(240, 236, 226)], max_delta_e=20, white_background=False)

    near, far = (float(delta_e_2000(srgb_to_lab(c), srgb_to_lab((240, 236, 226)))) for c in ((240, 235, 225), (30, 160, 60)))
    assert gate.status == PASS
    assert far > 20
    assert gate.value == pytest.approx(0.9 * near + 0.1 * far, abs=0.01)
