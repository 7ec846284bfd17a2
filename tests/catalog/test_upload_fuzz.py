"""A fuzz target for the upload path: generated files through catalog.services.photo_upload.

Whatever the bytes (random, or a valid JPEG / PNG / WebP made here and then flipped,
truncated, given lying chunk lengths or huge declared sizes), the service either accepts the
photo or raises UploadRejected, and a rejection leaves no row and no file.

`make test` runs a fixed-seed budget (VITRINE_FUZZ_EXAMPLES, default 300); `make fuzz` runs
10,000 random examples (docs/benchmarks.md has the last long run's result)."""
import io
import os
import struct
import zlib
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from catalog.models import PhotoJob, ProductPhoto
from catalog.services import photo_upload
from generation.decoding import UploadRejected
from tests.conftest import stored_files
from tests.generation.icc_fixtures import display_p3

EXAMPLES = int(os.environ.get("VITRINE_FUZZ_EXAMPLES", "300"))
LONG_RUN = EXAMPLES > 300


def _seed_image(fmt: str, mode: str = "RGB") -> bytes:
    pixels = np.random.default_rng(len(fmt)).integers(0, 255, (24, 32, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    buffer = io.BytesIO()
    # A real (Display P3) profile, so a seed is accepted and converted; its mutations then reach
    # littleCMS with damaged profile bytes.
    save = {"exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00", "icc_profile": display_p3()}
    Image.fromarray(pixels, mode).save(buffer, format=fmt, **save)
    return buffer.getvalue()


SEEDS = {
    "JPEG": _seed_image("JPEG"),
    "PNG": _seed_image("PNG", "RGBA"),
    "WEBP": _seed_image("WEBP"),
}


def _png_chunks(data: bytes) -> list[int]:
    """Offsets of each chunk's length field."""
    offsets, pos = [], 8
    while pos + 8 <= len(data):
        offsets.append(pos)
        pos += 12 + struct.unpack(">I", data[pos : pos + 4])[0]
    return offsets


def _with_png_size(data: bytes, width: int, height: int) -> bytes:
    # IHDR rewritten with a correct CRC, so the lie reaches the decoder and is not refused early.
    ihdr = data[16:29]
    ihdr = struct.pack(">II", width, height) + ihdr[8:]
    return data[:8] + data[8:12] + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF) + data[33:]


def _with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    sof = data.find(b"\xff\xc0")
    if sof < 0:
        return data
    return data[: sof + 5] + struct.pack(">HH", min(height, 0xFFFF), min(width, 0xFFFF)) + data[sof + 9 :]


def _with_webp_size(data: bytes, width: int, height: int) -> bytes:
    vp8 = data.find(b"VP8 ")
    if vp8 < 0 or len(data) < vp8 + 20:
        return data
    # The VP8 key frame: 3 bytes frame tag, 3 bytes start code, then 14-bit width and height.
    at = vp8 + 8 + 6
    return data[:at] + struct.pack("<HH", width & 0x3FFF, height & 0x3FFF) + data[at + 4 :]


@st.composite
def mutated(draw) -> bytes:
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "length-lie", "huge-size", "chunk-length-lie"]))
        if not data:
            break
        if kind == "flip":
            for _ in range(draw(st.integers(1, 8))):
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "length-lie":
            # Any 2 or 4 bytes read as a length: JPEG segment lengths, RIFF sizes, PNG lengths.
            width = draw(st.sampled_from([2, 4]))
            if len(data) > width:
                at = draw(st.integers(0, len(data) - width))
                data[at : at + width] = draw(st.integers(0, 256**width - 1)).to_bytes(width, draw(st.sampled_from(["big", "little"])))
        elif kind == "chunk-length-lie" and fmt == "PNG":
            offsets = _png_chunks(bytes(data))
            if offsets:
                at = draw(st.sampled_from(offsets))
                data[at : at + 4] = struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
        elif kind == "huge-size":
            width, height = draw(st.integers(1, 70000)), draw(st.integers(1, 70000))
            change = {"PNG": _with_png_size, "JPEG": _with_jpeg_size, "WEBP": _with_webp_size}[fmt]
            data = bytearray(change(bytes(data), width, height))
    return bytes(data)


files = st.one_of(
    st.binary(max_size=4096),
    st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"]).flatmap(
        lambda head: st.binary(max_size=2048).map(lambda tail: head + tail)
    ),
    mutated(),
)


@pytest.mark.django_db
@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),
    derandomize=not LONG_RUN,  # CI: the same 300 files every run; `make fuzz`: new ones each time
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=files)
def test_any_file_is_accepted_or_rejected_cleanly(workspace, django_settings_for_fuzz, data):
    rows, jobs, stored = ProductPhoto.objects.count(), PhotoJob.objects.count(), stored_files()
    try:
        photo_upload(workspace=workspace, file=SimpleUploadedFile("fuzz.bin", data))
    except UploadRejected as rejected:
        assert rejected.message and rejected.code
        assert (ProductPhoto.objects.count(), PhotoJob.objects.count(), stored_files()) == (rows, jobs, stored)


@pytest.fixture
def django_settings_for_fuzz(settings):
    # A small pixel cap: a mutated header declaring a huge image then meets the cap (the rule
    # under test) instead of making each example allocate hundreds of MB.
    settings.VITRINE_UPLOAD_MAX_PIXELS = 4_000_000
    return settings


def test_the_seeds_are_valid_so_mutations_start_from_real_files(workspace, django_settings_for_fuzz):
    made = [photo_upload(workspace=workspace, file=SimpleUploadedFile(f"seed.{fmt.lower()}", data)).photo.original_format for fmt, data in SEEDS.items()]

    assert made == ["JPEG", "PNG", "WEBP"]
