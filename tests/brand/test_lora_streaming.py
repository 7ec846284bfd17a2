"""LoRA uploads stream: Django spools a large upload to disk, the service reads its header only
to check it (the same rules as the safetensors reader, so what passes here loads on a worker),
then hashes and stores the weights in pieces. bench/lora_upload_memory.py measures the web
process for a 500 MB upload (docs/benchmarks.md)."""
import hashlib
import io
import json
import struct

import numpy as np
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from safetensors import safe_open
from safetensors.numpy import save as safetensors_save

from brand import services
from brand.models import BrandKit, LoraAdapter
from tests.brand.test_loras import assert_refused_and_nothing_kept
from tests.conftest import stored_files

pytestmark = pytest.mark.django_db


def with_header(header, weights: int) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(weights)


def upload(api, kit, data: bytes, name: str = "house-look"):
    return api.post(
        f"/api/v1/brand-kits/{kit.pk}/loras/", {"name": name, "file": SimpleUploadedFile("look.safetensors", data)}, format="multipart",
    )


def test_a_file_written_by_the_safetensors_library_is_accepted(api, manager):
    kit = BrandKit.objects.get(workspace=manager.workspace)
    rng = np.random.default_rng(7)
    data = safetensors_save({
        "lora_unet_down_blocks_0_attentions_0.lora_down.weight": rng.standard_normal((4, 320)).astype(np.float16),
        "lora_unet_down_blocks_0_attentions_0.lora_up.weight": rng.standard_normal((320, 4)).astype(np.float16),
        "lora_unet_down_blocks_0_attentions_0.alpha": np.array(4.0, dtype=np.float32),
    }, metadata={"ss_network_dim": "4"})

    response = upload(api, kit, data)

    assert response.status_code == 201, response.json()
    assert LoraAdapter.objects.get(brand_kit=kit).sha256 == hashlib.sha256(data).hexdigest()


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (with_header({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8), (
            "This .safetensors file is damaged: its header gives the tensor 'a' 8 bytes where its shape needs 12. Export the LoRA again."
        )),
        (with_header({"a": F32_2, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8), (
            "This .safetensors file is damaged: its tensors overlap or leave gaps. Export the LoRA again."
        )),
        (with_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8), (
            "This .safetensors file is damaged: its tensors overlap or leave gaps. Export the LoRA again."
        )),
        (with_header({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, 8), "This is not a LoRA adapter file (.safetensors)."),
        (with_header({"a": {"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}}, 8), "This is not a LoRA adapter file (.safetensors)."),
        (with_header({"__metadata__": {"rank": 4}, "a": F32_2}, 8), "This is not a LoRA adapter file (.safetensors)."),
        (with_header({"a": F32_2}, 12), (
            "This .safetensors file is incomplete or damaged: its header describes 8 bytes of weights and the file holds 12. Upload it again."
        )),
    ],
    ids=["shape-size", "overlap", "gap", "unknown-dtype", "bool-dimension", "metadata-not-text", "trailing-bytes"],
)
def test_a_header_the_safetensors_reader_would_refuse_is_refused_and_nothing_is_kept(api, manager, data, message):
    assert_refused_and_nothing_kept(api, manager, data, message)


def test_a_large_upload_is_spooled_to_disk_and_only_read_in_pieces(api, manager, monkeypatch):
    # A 1 GiB upload must never be held in memory: above FILE_UPLOAD_MAX_MEMORY_SIZE Django's
    # upload handlers write it to a temporary file, and the service reads that in pieces.
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 10 * 1024 * 1024
    assert "django.core.files.uploadhandler.TemporaryFileUploadHandler" in settings.FILE_UPLOAD_HANDLERS
    kit = BrandKit.objects.get(workspace=manager.workspace)
    floats = 2 * settings.FILE_UPLOAD_MAX_MEMORY_SIZE // 4
    data = with_header({"w": {"dtype": "F32", "shape": [floats], "data_offsets": [0, 4 * floats]}}, 4 * floats)
    seen, reads = [], []
    real = services.lora_add

    def spy(**kwargs):
        seen.append(type(kwargs["data"]))
        return real(**kwargs)

    def counted(file):
        def read(size=-1):
            piece = file.file.read(size)
            reads.append(len(piece))
            return piece
        return read

    monkeypatch.setattr(services, "lora_add", spy)
    monkeypatch.setattr(TemporaryUploadedFile, "read", property(counted))

    response = upload(api, kit, data)

    assert response.status_code == 201, response.json()
    assert seen == [TemporaryUploadedFile]
    assert reads and max(reads) <= 1024 * 1024 < len(data)
    assert LoraAdapter.objects.get(brand_kit=kit).file.size == len(data)


class Recording(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size=-1):
        piece = super().read(size)
        self.taken += len(piece)
        return piece


def test_the_check_reads_the_header_and_none_of_the_weights():
    header = {"w": {"dtype": "F16", "shape": [1024, 1024], "data_offsets": [0, 2 * 1024 * 1024]}}
    data = with_header(header, 2 * 1024 * 1024)
    stream = Recording(data)

    services._check_safetensors(stream, len(data))

    assert stream.taken == len(data) - 2 * 1024 * 1024  # the 8-byte length and the JSON, no more


DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "I8": 1, "F64": 8, "Q4": 1}


@st.composite
def headers(draw):
    """safetensors files, mostly valid and then sometimes damaged in one of the ways the
    reader checks: a wrong size, a gap, an overlap, an unknown dtype, bytes missing or extra."""
    tensors, offset, header = draw(st.lists(st.tuples(st.sampled_from(sorted(DTYPES)), st.lists(st.integers(0, 5), max_size=3)), max_size=4)), 0, {}
    for index, (dtype, shape) in enumerate(tensors):
        size = DTYPES[dtype] * int(np.prod(shape))
        start = max(0, offset + draw(st.sampled_from([0, 0, 0, 0, -1, 1])))
        stop = start + max(0, size + draw(st.sampled_from([0, 0, 0, 0, -1, 2])))
        header[f"t{index}"] = {"dtype": dtype, "shape": shape, "data_offsets": [start, stop]}
        offset = stop
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.sampled_from([{"format": "pt"}, {"format": 1}, None, []]))
    return with_header(header, max(0, offset + draw(st.sampled_from([0, 0, 0, -1, 3]))))


def reader_loads(data: bytes, tmp_path) -> bool:
    path = tmp_path / "probe.safetensors"
    path.write_bytes(data)
    try:
        # Opening validates the whole header (sizes, offsets, coverage); loading a tensor
        # would only test numpy's dtypes (it has no bfloat16).
        with safe_open(str(path), "np") as tensors:
            tensors.keys()
    except Exception:
        return False
    return True


@hypothesis_settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=headers())
def test_the_check_agrees_with_the_safetensors_reader(data, tmp_path):
    try:
        services._check_safetensors(io.BytesIO(data), len(data))
        passed = True
    except ValidationError as refusal:
        passed = False
        no_weights = refusal.message_dict == {"file": ["This .safetensors file holds no weights."]}

    if passed:
        assert reader_loads(data, tmp_path)
    elif not no_weights:  # the reader opens an empty file; an adapter with no weights is refused on purpose
        assert not reader_loads(data, tmp_path)


def test_one_byte_over_the_cap_is_told_in_bytes(manager, monkeypatch):
    monkeypatch.setattr(services, "LORA_MAX_BYTES", 1024 * 1024)
    kit = BrandKit.objects.get(workspace=manager.workspace)
    data = bytes(1024 * 1024 + 1)

    with pytest.raises(ValidationError) as refusal:
        services.lora_add(kit=kit, name="one-over", data=data)

    assert refusal.value.message_dict == {"file": ["This file is 1,048,577 bytes; the limit for a LoRA adapter is 1,048,576 bytes (1 MB)."]}
    assert not LoraAdapter.objects.exists()
