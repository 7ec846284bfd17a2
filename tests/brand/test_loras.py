"""LoRA uploads: the size cap is checked before reading, the file is checked as safetensors
(header and tensor offsets) and streamed to storage, and a refused file leaves nothing."""
import hashlib
import io
import json
import struct

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from brand import services
from brand.models import BrandKit, LoraAdapter
from tests.conftest import stored_files

pytestmark = pytest.mark.django_db


def safetensors_bytes(floats: int = 4, *, missing: int = 0, header: dict | None = None) -> bytes:
    """A real safetensors file of one float32 tensor (`missing` bytes cut off the end)."""
    meta = header if header is not None else {"__metadata__": {"format": "pt"}, "lora.down.weight": {"dtype": "F32", "shape": [floats], "data_offsets": [0, 4 * floats]}}
    text = json.dumps(meta).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(4 * floats - missing)


def upload(api, kit, data: bytes, name: str = "house-look"):
    return api.post(
        f"/api/v1/brand-kits/{kit.pk}/loras/", {"name": name, "weight": "0.8", "file": SimpleUploadedFile("look.safetensors", data)},
        format="multipart",
    )


def test_a_lora_is_stored_hashed_and_recorded_in_a_new_version(api, manager):
    kit = BrandKit.objects.get(workspace=manager.workspace)
    data = safetensors_bytes()

    response = upload(api, kit, data)

    assert response.status_code == 201
    assert response.json()["loras"] == [{"name": "house-look", "weight": 0.8, "sha256": hashlib.sha256(data).hexdigest()}]
    adapter = LoraAdapter.objects.get(brand_kit=kit)
    assert adapter.file.read() == data
    kit.refresh_from_db()
    assert kit.version == 2
    assert [lora["name"] for lora in kit.versions.get(version=2).snapshot["loras"]] == ["house-look"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a lora at all, just text", "This is not a LoRA adapter file (.safetensors)."),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "This is not a LoRA adapter file (.safetensors)."),
        (struct.pack("<Q", 2**40) + b"{}", "This is not a LoRA adapter file (.safetensors)."),
        (safetensors_bytes(header=[1, 2, 3]), "This is not a LoRA adapter file (.safetensors)."),
        (safetensors_bytes(header={"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 0]}}), "This is not a LoRA adapter file (.safetensors)."),
        (safetensors_bytes(header={"__metadata__": {}}, floats=0), "This .safetensors file holds no weights."),
        (safetensors_bytes(floats=4, missing=6), (
            "This .safetensors file is incomplete or damaged: its header describes 16 bytes of weights and the file holds 10. Upload it again."
        )),
    ],
)
def test_a_file_that_is_not_a_whole_lora_is_refused_and_nothing_is_kept(api, manager, data, message):
    assert_refused_and_nothing_kept(api, manager, data, message)


def assert_refused_and_nothing_kept(api, manager, data: bytes, message: str) -> None:
    """The upload answers 400 with `message` on the file field; no row, no file, no new kit version."""
    kit = BrandKit.objects.get(workspace=manager.workspace)

    response = upload(api, kit, data)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": [message]}
    assert not LoraAdapter.objects.exists()
    assert [name for name in stored_files() if "loras" in name] == []
    kit.refresh_from_db()
    assert kit.version == 1


def test_a_file_over_the_cap_is_refused_with_its_size(api, manager, monkeypatch, settings):
    monkeypatch.setattr(services, "LORA_MAX_BYTES", 2 * 1024 * 1024)
    # Room in the request's body cap (config/middleware.py) so the service's own rule answers.
    settings.VITRINE_UPLOAD_OVERHEAD_BYTES = 8 * 1024 * 1024
    kit = BrandKit.objects.get(workspace=manager.workspace)

    response = upload(api, kit, safetensors_bytes(floats=1024 * 1024))  # 4 MB of weights

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": ["This file is 4,194,440 bytes; the limit for a LoRA adapter is 2,097,152 bytes (2 MB)."]}
    assert not LoraAdapter.objects.exists()
    assert [name for name in stored_files() if "loras" in name] == []


class Unreadable(io.BytesIO):
    """A file that says it is huge and fails if anyone reads it."""

    size = 5 * 1024**3

    def read(self, *args):
        raise AssertionError("the file was read before its size was checked")


def test_the_cap_is_checked_from_the_size_before_reading(manager):
    kit = BrandKit.objects.get(workspace=manager.workspace)

    with pytest.raises(ValidationError) as info:
        services.lora_add(kit=kit, name="huge", data=Unreadable())

    assert info.value.message_dict == {"file": ["This file is 5,368,709,120 bytes; the limit for a LoRA adapter is 1,073,741,824 bytes (1,024 MB)."]}


class CountingFile(io.BytesIO):
    """Records the largest single read, to show the weights are never read whole."""

    largest = 0

    def read(self, size=-1):
        data = super().read(size)
        self.largest = max(self.largest, len(data))
        return data


def test_the_weights_are_streamed_not_read_whole(manager):
    kit = BrandKit.objects.get(workspace=manager.workspace)
    data = safetensors_bytes(floats=1024 * 1024)  # 4 MB
    stream = CountingFile(data)
    stream.size = len(data)

    adapter = services.lora_add(kit=kit, name="big", data=stream)

    assert adapter.sha256 == hashlib.sha256(data).hexdigest()
    assert adapter.file.size == len(data)
    assert 0 < stream.largest <= 1024 * 1024


def test_a_second_lora_with_the_same_name_is_refused_and_its_file_removed(api, manager):
    kit = BrandKit.objects.get(workspace=manager.workspace)
    assert upload(api, kit, safetensors_bytes(floats=2)).status_code == 201
    before = stored_files()

    response = upload(api, kit, safetensors_bytes(floats=3))

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"name": ["This brand kit already has a LoRA called 'house-look'."]}
    assert stored_files() == before
    assert LoraAdapter.objects.count() == 1


def test_a_merchant_cannot_upload_a_lora(api, membership):
    from brand.services import workspace_defaults_ensure

    workspace_defaults_ensure(workspace=membership.workspace)
    kit = BrandKit.objects.get(workspace=membership.workspace)

    response = upload(api, kit, safetensors_bytes())

    assert response.status_code == 403
    assert not LoraAdapter.objects.exists()
    assert [name for name in stored_files() if "loras" in name] == []
