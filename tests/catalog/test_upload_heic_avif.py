"""Phone photos at upload: HEIC and AVIF accepted and kept in their own format, a HEIC photo
through cutout, generation and `manage.py verify` end to end (with Content Credentials), and
what stays unsupported refused in words with nothing stored."""
from __future__ import annotations

import io
import json

import c2pa
import numpy as np
import pillow_heif
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image

from brand.models import ScenePreset
from catalog.models import JobStatus, PhotoJob, ProductPhoto
from catalog.services import photo_upload
from generation.decoding import UploadRejected
from studio.models import Asset, GenerationJob
from studio.services import photo_add
from tests.conftest import stored_files
from tests.images import image_bytes, product_on_white

pytestmark = pytest.mark.django_db


def _heic(pixels: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="HEIF", quality=95, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "extension"), [("HEIF", "heic"), ("AVIF", "avif")])
def test_heic_and_avif_are_accepted_and_keep_their_own_format(workspace, fmt, extension):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait (in a HEIC: the irot box pillow-heif writes from it)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(image_bytes("PNG", size=(60, 40)))).save(buffer, format=fmt, quality=95, exif=exif.tobytes())
    data = buffer.getvalue()

    photo = photo_upload(workspace=workspace, file=SimpleUploadedFile(f"IMG_0001.{extension}", data, content_type="image/heic")).photo

    assert photo.original_format == fmt and photo.original.name.endswith(f"/original.{extension}")
    with photo.original.open("rb") as fh:
        assert fh.read() == data
    assert (photo.width, photo.height) == (40, 60)  # upright
    with photo.working.open("rb") as fh:
        working = Image.open(fh)
        working.load()
    assert working.format == "PNG" and working.mode == "RGB" and "icc_profile" not in working.info


def test_api_upload_of_a_multi_image_heic_is_a_400_in_words(api, workspace):
    heif = pillow_heif.from_pillow(Image.new("RGB", (40, 30), (200, 30, 30)))
    heif.add_from_pillow(Image.new("RGB", (40, 30), (30, 30, 200)))
    buffer = io.BytesIO()
    heif.save(buffer)

    response = api.post("/api/v1/photos/", {"file": SimpleUploadedFile("burst.heic", buffer.getvalue())}, format="multipart")

    assert response.status_code == 400
    assert "holds 2 images" in json.dumps(response.json())
    assert ProductPhoto.objects.count() == 0 and PhotoJob.objects.count() == 0
    assert stored_files() == []


def test_a_damaged_heic_is_refused_and_nothing_is_stored(workspace):
    data = _heic(np.full((30, 40, 3), 128, np.uint8))
    with pytest.raises(UploadRejected) as caught:
        photo_upload(workspace=workspace, file=SimpleUploadedFile("cut.heic", data[: len(data) // 2]))
    assert caught.value.message.startswith("This HEIC/HEIF file could not be read")
    assert ProductPhoto.objects.count() == 0 and stored_files() == []


def test_a_heic_photo_goes_through_end_to_end(api, workspace, django_capture_on_commit_callbacks, tmp_path):
    from brand.services import workspace_defaults_ensure

    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    pixels = np.asarray(Image.open(io.BytesIO(product_on_white(size=(160, 120), seed=2))).convert("RGB"))
    original = _heic(pixels)
    with django_capture_on_commit_callbacks(execute=True):
        photo = photo_add(workspace=workspace, file=SimpleUploadedFile("IMG_0042.HEIC", original)).photo
    assert photo.original_format == "HEIF"

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "seed": 3, "channels": ["as-photo", "square-2048"]}, format="json")
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assets = list(Asset.objects.filter(job=job).order_by("channel"))
    assert {a.channel for a in assets} == {"as-photo", "square-2048"}

    (tmp_path / "IMG_0042.HEIC").write_bytes(original)
    for asset in assets:
        data = asset.file.open("rb").read()
        path = tmp_path / f"{asset.channel}.png"
        path.write_bytes(data)
        out = io.StringIO()
        call_command("verify", str(path), str(tmp_path / "IMG_0042.HEIC"), stdout=out)
        lines = out.getvalue().splitlines()
        expected = "identical" if asset.lock_certificate["kind"] == "pixel-identical" else "resampled-as-declared"
        assert lines[0].startswith(f"{expected}: 0 of "), out.getvalue()
        assert lines[-1] == "Content Credentials: valid (untrusted development certificate)"

        reader = c2pa.Reader("image/png", io.BytesIO(data))
        store = json.loads(reader.json())
        reader.close()
        assert store["validation_state"] == "Valid"
        assert [s["code"] for s in store.get("validation_status", [])] == ["signingCredential.untrusted"]
        manifest = store["manifests"][store["active_manifest"]]
        (lock,) = [json.loads(a["data"]["certificate"]) for a in manifest["assertions"] if a["label"] == "com.vitrine.lock"]
        assert lock == asset.lock_certificate
        assert manifest["ingredients"][0]["metadata"]["com.vitrine.original_sha256"] == photo.original_sha256 == lock["original_sha256"]
