"""Matrix/TRC ICC v2 profiles built from their published primaries, so the colour tests and
bench/colour.py need no downloaded profile. The colorants are adapted to D50 with Bradford,
as ICC requires."""
from __future__ import annotations

import struct

import numpy as np

_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
_D50 = np.array([0.9642, 1.0, 0.8249])
_D65 = np.array([0.95047, 1.0, 1.08883])


def _xy_to_xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _colorants(primaries, white=_D65) -> np.ndarray:
    m = np.stack([_xy_to_xyz(*p) for p in primaries], axis=1)
    m = m * np.linalg.solve(m, white)
    adapt = np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ _D50) / (_BRADFORD @ white)) @ _BRADFORD
    return adapt @ m  # columns: r, g, b XYZ (D50)


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _xyz_tag(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _desc_tag(text: str) -> bytes:
    raw = text.encode("ascii") + b"\0"
    body = b"desc\0\0\0\0" + struct.pack(">I", len(raw)) + raw + b"\0" * 12 + b"\0" * 67
    return body


def _curve_srgb(n: int = 1024) -> bytes:
    v = np.linspace(0, 1, n)
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return b"curv\0\0\0\0" + struct.pack(">I", n) + np.round(lin * 65535).astype(">u2").tobytes()


def _curve_gamma(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(gamma * 256)))


def matrix_profile(description: str, primaries, curve: bytes, *, pad_to: int | None = None) -> bytes:
    """``pad_to``: the profile's exact size, reached with a private tag (for the size budgets)."""
    if pad_to is not None:
        unpadded = len(matrix_profile(description, primaries, curve))
        filler = pad_to - unpadded - 12 - 8  # a tag-table entry, the tag's type and reserved bytes
        profile = _matrix_profile(description, primaries, curve, [(b"vtpd", b"data\0\0\0\0" + b"\7" * filler)])
        assert len(profile) == pad_to, len(profile)
        return profile
    return _matrix_profile(description, primaries, curve, [])


def _matrix_profile(description: str, primaries, curve: bytes, extra: list) -> bytes:
    m = _colorants(primaries)
    tags = [
        (b"desc", _desc_tag(description)),
        (b"wtpt", _xyz_tag(_D50)),
        (b"rXYZ", _xyz_tag(m[:, 0])),
        (b"gXYZ", _xyz_tag(m[:, 1])),
        (b"bXYZ", _xyz_tag(m[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\0\0\0\0test\0\0\0\0"),
        *extra,
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
    header += b"\0" * 12 + b"acsp" + b"APPL" + b"\0" * 4 + b"\0" * 8 + b"\0" * 8 + b"\0" * 4
    header += _s15(_D50[0]) + _s15(_D50[1]) + _s15(_D50[2]) + b"\0" * 4
    header = header.ljust(128, b"\0")
    return header + struct.pack(">I", len(tags)) + table + data


def display_p3(*, pad_to: int | None = None) -> bytes:
    return matrix_profile("Display P3 (test)", [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)], _curve_srgb(), pad_to=pad_to)


def adobe_rgb() -> bytes:
    return matrix_profile("Adobe RGB (1998) (test)", [(0.640, 0.330), (0.210, 0.710), (0.150, 0.060)], _curve_gamma(563 / 256))
