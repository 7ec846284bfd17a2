"""QA gates: the automatic checks an asset passes before a person decides on it.

Each gate judges plain values the engine measured while making the asset (the lock
certificate, the channel checks, the transform, the scene's colours) and the inputs it was
made from (the cutout's quality signals, the brand kit), and says what it found in words a
brand manager can act on. A gate ends ``pass``, ``warn`` (shown, never blocks) or ``fail``
(blocks approval unless a brand manager overrides it with a written reason)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from generation.colour import delta_e_2000, srgb_to_lab
from generation.prompts import banned_term_in
from generation.segmentation.base import describe_notes

PASS, WARN, FAIL = "pass", "warn", "fail"

#: The order gates are shown in; also every gate's name.
GATE_NAMES = ("lock", "cutout", "edge-halo", "preflight", "resolution", "palette", "banned-terms")
GATE_TITLES = {
    "lock": "Pixel lock",
    "cutout": "Cutout confidence",
    "edge-halo": "Edge halo",
    "preflight": "Channel rules",
    "resolution": "Resolution",
    "palette": "Brand palette",
    "banned-terms": "Banned terms",
}
#: A kit that sets no tolerance of its own: the scene's main colours may sit this far
#: (CIEDE2000, share-weighted) from the nearest palette colour. ~20 reads as "the same
#: family of colour" (a warm grey next to a beige), beyond it as another colour.
DEFAULT_PALETTE_MAX_DELTA_E = 20.0


@dataclass(frozen=True)
class Gate:
    name: str
    status: str
    reason: str
    value: float | None = None
    limit: float | None = None

    @property
    def title(self) -> str:
        return GATE_TITLES.get(self.name, self.name)

    def to_dict(self) -> dict:
        return {**asdict(self), "title": self.title}


@dataclass(frozen=True)
class CutoutSignals:
    """What the gates need to know about the cutout an asset was made from."""

    confident: bool
    notes: tuple[str, ...]
    locked_pixels: int


def gates_passed(gates: Iterable[dict | Gate]) -> bool:
    """No gate failed (warnings do not block)."""
    return all((g.status if isinstance(g, Gate) else g["status"]) != FAIL for g in gates)


def failing(gates: Iterable[dict]) -> list[dict]:
    return [g for g in gates if g["status"] == FAIL]


def asset_gates(
    *,
    certificate: dict,
    preflight: list[dict],
    cutout: CutoutSignals,
    scale: float,
    background_colours: list,
    palette: list,
    palette_max_delta_e: float | None,
    white_background: bool,
    prompt: str,
    banned_terms: list[str],
    placement: dict | None = None,
    channel_title: str = "This channel",
) -> list[Gate]:
    """Every gate of one asset, in GATE_NAMES order. ``placement`` is
    ``compose.Placement.to_dict()`` (how the canvas and scale were chosen), when known."""
    return [
        _lock_gate(certificate, scale),
        _cutout_gate(cutout),
        _halo_gate(preflight),
        _preflight_gate(preflight),
        _resolution_gate(scale, placement, channel_title),
        palette_gate(background_colours=background_colours, palette=palette, max_delta_e=palette_max_delta_e, white_background=white_background),
        _banned_gate(prompt, banned_terms),
    ]


def _lock_gate(certificate: dict, scale: float) -> Gate:
    locked, changed = int(certificate["locked_pixels"]), int(certificate["changed_pixels"])
    if locked == 0:
        return Gate("lock", FAIL, "No product pixel is locked: the cutout found no product to protect.", 0, None)
    if changed or certificate.get("max_abs_diff"):
        return Gate("lock", FAIL, f"{changed:,} of {locked:,} product pixels differ from the product layer.", changed, 0)
    # The certificate's badge names the kind of lock (pixel-identical or resampled).
    badge = certificate.get("badge") or (
        "Product pixels identical to your photo" if abs(scale - 1.0) < 1e-9
        else f"Product resized {scale:.2f}× from your photo, nothing else changed"
    )
    return Gate("lock", PASS, f"{badge} ({locked:,} product pixels locked).", 0, 0)


def _cutout_gate(cutout: CutoutSignals) -> Gate:
    if cutout.confident:
        return Gate("cutout", PASS, "The cutout found a clear product outline.")
    words = describe_notes(cutout.notes) or ["the segmenter was not sure of the outline"]
    return Gate(
        "cutout", FAIL,
        "The cutout may be wrong: " + "; ".join(words) + ". Check the product's edges, touch the mask up, or override with a reason.",
    )


def _halo_gate(preflight: list[dict]) -> Gate:
    check = next((c for c in preflight if c["name"] == "edge-halo"), None)
    if check is None:
        return Gate("edge-halo", PASS, "Not measured on this channel.")
    return Gate("edge-halo", PASS if check["passed"] else FAIL, check["message"], check["value"], check["limit"])


def _preflight_gate(preflight: list[dict]) -> Gate:
    checks = [c for c in preflight if c["name"] != "edge-halo"]
    failed = [c for c in checks if not c["passed"]]
    if failed:
        return Gate("preflight", FAIL, " ".join(c["message"] for c in failed), len(failed), 0)
    return Gate("preflight", PASS, f"All {len(checks)} of the channel's rules pass." if checks else "This channel sets no rules.", 0, 0)


def _resolution_gate(scale: float, placement: dict | None = None, channel_title: str = "This channel") -> Gate:
    """Warns whenever the photo has too few pixels for the channel: the product enlarged
    (never silently), or the image made smaller than the channel's full size so the product
    keeps its own pixels."""
    sizes = ""
    if placement:
        wanted = max(placement["wanted"])
        sizes = f"This photo is {placement['photo_px']:,} px (the product {placement['product_px']:,} px of it); {channel_title} wants {wanted:,} px. "
    if scale > 1.0 + 1e-6:
        return Gate(
            "resolution", WARN,
            f"{sizes}The product is enlarged {scale:.2f}× past its photo's resolution, so fine detail (text, texture) can look soft. "
            "Upload a larger photo for this channel.",
            round(scale, 4), 1.0,
        )
    if placement and placement.get("reason") == "smaller-canvas":
        w, h = placement["canvas"]
        return Gate(
            "resolution", WARN,
            f"{sizes}The image is made at {w}×{h} px, the largest size at which the product keeps its own pixels. "
            "Upload a larger photo for the full size.",
            round(scale, 4), 1.0,
        )
    if abs(scale - 1.0) < 1e-9:
        return Gate("resolution", PASS, "The product is shown at its photo's own resolution.", round(scale, 4), 1.0)
    return Gate("resolution", PASS, "The product is shown below its photo's resolution (made smaller to fit the channel).", round(scale, 4), 1.0)


def palette_gate(*, background_colours: list, palette: list, max_delta_e: float | None, white_background: bool) -> Gate:
    """How far the scene's main colours sit from the brand palette: each colour's CIEDE2000
    distance to its nearest palette colour, weighted by the share of the scene it covers."""
    limit = float(max_delta_e if max_delta_e is not None else DEFAULT_PALETTE_MAX_DELTA_E)
    if white_background:
        return Gate("palette", PASS, "A white-background channel: the brand palette does not apply.", None, limit)
    if not palette:
        return Gate("palette", PASS, "The brand kit has no palette to match.", None, limit)
    if not background_colours:
        return Gate("palette", PASS, "The product fills the whole image: no scene colour to match.", None, limit)
    colours = np.array([c for c, _ in background_colours], dtype=np.float64)
    shares = np.array([s for _, s in background_colours], dtype=np.float64)
    distances = delta_e_2000(srgb_to_lab(colours)[:, None, :], srgb_to_lab(np.array(palette, dtype=np.float64))[None, :, :]).min(axis=1)
    value = float((distances * shares).sum() / shares.sum())
    if value <= limit:
        return Gate("palette", PASS, f"The scene's main colours are within ΔE {value:.1f} of the brand palette (the kit allows {limit:g}).", round(value, 2), limit)
    worst = int(np.argmax(distances))
    r, g, b = (int(c) for c in colours[worst])
    return Gate(
        "palette", FAIL,
        f"The scene's main colours are ΔE {value:.1f} from the brand palette (the kit allows {limit:g}); "
        f"#{r:02x}{g:02x}{b:02x} covers {shares[worst] * 100:.0f} % of the scene.",
        round(value, 2), limit,
    )


def _banned_gate(prompt: str, banned_terms: list[str]) -> Gate:
    term = banned_term_in(prompt or "", list(banned_terms or []))
    if term:
        return Gate("banned-terms", FAIL, f"The prompt this image was made from uses '{term}', which the brand kit bans.")
    return Gate("banned-terms", PASS, "The prompt uses none of the brand kit's banned terms." if banned_terms else "The brand kit bans no terms.")
