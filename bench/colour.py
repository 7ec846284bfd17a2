"""ΔE00 of a wide-gamut photo's colours through ingest: convert to sRGB (shipped) against
dropping the profile (reading the numbers as sRGB, what ingest did before).

    .venv/bin/python bench/colour.py [--pixels 200000] [--seed 0]

Takes random product-like sRGB colours (channels 40-199), stores them as a camera tagging a
Display P3 or Adobe RGB profile would (8-bit), runs them through generation.decoding's ingest
(validate_image) and prints, per profile, mean / p99 / max ΔE00 against the colours as seen,
for the shipped conversion and for the profile dropped.
"""
from __future__ import annotations

import argparse
import io
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from generation.colour import delta_e_2000, srgb_to_lab  # noqa: E402
from generation.decoding import validate_image  # noqa: E402
from tests.generation.icc_fixtures import adobe_rgb, display_p3  # noqa: E402
from tests.generation.test_decoding_colour import _encode_in  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pixels", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    side = int(np.sqrt(args.pixels))
    product = np.random.default_rng(args.seed).integers(40, 200, size=(side, side, 3), dtype=np.uint8)
    print(f"{side * side} pixels; ΔE00 mean / p99 / max")
    for name, icc in (("Display P3", display_p3()), ("Adobe RGB", adobe_rgb())):
        stored = _encode_in(product, icc)
        buffer = io.BytesIO()
        Image.fromarray(stored).save(buffer, format="PNG", icc_profile=icc)
        data = buffer.getvalue()
        accepted = validate_image(io.BytesIO(data), size_bytes=len(data), max_bytes=1 << 30, max_pixels=10**9, working_max_side=1 << 15)
        out = np.asarray(Image.open(io.BytesIO(accepted.working_png)).convert("RGB"))
        for label, pixels in (("converted", out), ("dropped", stored)):
            d = delta_e_2000(srgb_to_lab(product), srgb_to_lab(pixels))
            print(f"{name:10s} {label:9s} {d.mean():.3f} / {np.percentile(d, 99):.3f} / {d.max():.3f}")


if __name__ == "__main__":
    main()
