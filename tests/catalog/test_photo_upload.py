"""The upload rules, through the one service both the page and the API use."""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test import override_settings
from PIL import Image

from catalog.models import PhotoJob, JobKind, ProductPhoto
from catalog.services import photo_upload
from generation.decoding import UploadRejected
from tests.conftest import stored_files
from tests.factories import ProductFactory, WorkspaceFactory
from tests.images import image_bytes, png_declaring

pytestmark = pytest.mark.django_db


def upload(workspace, data: bytes, name: str = "photo.jpg", **kwargs):
    return photo_upload(workspace=workspace, file=SimpleUploadedFile(name, data, content_type="image/jpeg"), **kwargs)


@pytest.mark.parametrize(
    ("name", "data", "code", "message"),
    [
        ("notes.jpg", b"just some text, renamed to look like a photo\n" * 20, "unsupported_type", "This file is not a JPEG, PNG, WebP, HEIC or AVIF image."),
        ("empty.jpg", b"", "empty_file", "This file is empty (0 bytes)."),
        ("picture.gif", b"GIF89a" + b"\x00" * 200, "unsupported_type", "This file is not a JPEG, PNG, WebP, HEIC or AVIF image."),
        ("picture.bmp", b"BM" + b"\x00" * 200, "unsupported_type", "This file is not a JPEG, PNG, WebP, HEIC or AVIF image."),
        ("bomb.png", png_declaring(30000, 30000), "too_many_pixels", "This image is 900 MP; the limit is 100 MP."),
        ("liar.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "unsupported_type", "This file is not a JPEG, PNG, WebP, HEIC or AVIF image."),
    ],
    ids=["renamed-text", "zero-bytes", "gif", "bmp", "decompression-bomb", "png-signature-only"],
)
def test_rejected_upload_says_why_and_stores_nothing(workspace, name, data, code, message):
    with pytest.raises(UploadRejected) as caught:
        upload(workspace, data, name)

    assert (caught.value.code, caught.value.message) == (code, message)
    assert ProductPhoto.objects.count() == 0
    assert PhotoJob.objects.count() == 0
    assert stored_files() == []


def test_truncated_jpeg_is_rejected_as_damaged(workspace):
    whole = image_bytes("JPEG", size=(400, 300))

    with pytest.raises(UploadRejected) as caught:
        upload(workspace, whole[: len(whole) // 2])

    assert caught.value.code == "damaged_image"
    assert caught.value.message == "This image is damaged or incomplete and could not be read to the end. Export it again and re-upload."
    assert ProductPhoto.objects.count() == 0
    assert stored_files() == []


@override_settings(VITRINE_UPLOAD_MAX_BYTES=1024 * 1024)
def test_file_over_the_byte_cap_is_rejected_before_decoding(workspace):
    data = image_bytes("PNG", size=(8, 8)) + b"\x00" * (1024 * 1024 + 200 * 1024)

    with pytest.raises(UploadRejected) as caught:
        upload(workspace, data, "huge.png")

    assert (caught.value.code, caught.value.message) == ("file_too_large", f"This file is {len(data):,} bytes; the limit is 1,048,576 bytes (1 MB).")
    assert ProductPhoto.objects.count() == 0
    assert stored_files() == []


@override_settings(VITRINE_UPLOAD_MAX_PIXELS=1_000_000)
def test_image_over_the_pixel_cap_is_rejected_with_both_numbers(workspace):
    with pytest.raises(UploadRejected) as caught:
        upload(workspace, image_bytes("JPEG", size=(1200, 1000)))

    assert (caught.value.code, caught.value.message) == ("too_many_pixels", "This image is 1.2 MP; the limit is 1 MP.")
    assert ProductPhoto.objects.count() == 0
    assert stored_files() == []


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_photo_keeps_original_bytes_and_hash(workspace, fmt):
    data = image_bytes(fmt, size=(64, 48))

    result = upload(workspace, data, f"bottle.{fmt.lower()}")

    photo = result.photo
    assert result.created is True
    assert photo.original_format == fmt
    assert (photo.width, photo.height, photo.original_bytes) == (64, 48, len(data))
    with photo.original.open("rb") as fh:
        assert fh.read() == data
    import hashlib

    assert photo.original_sha256 == hashlib.sha256(data).hexdigest()
    assert PhotoJob.objects.filter(photo=photo, kind=JobKind.THUMBNAIL).count() == 1


def test_lossless_working_copy_equals_the_decoded_photo(workspace):
    data = image_bytes("PNG", size=(50, 40), seed=3)

    photo = upload(workspace, data, "p.png").photo

    with photo.working.open("rb") as fh:
        working = Image.open(fh)
        working.load()
    assert working.tobytes() == Image.open(io.BytesIO(data)).convert("RGB").tobytes()


def test_exif_orientation_is_applied_to_the_working_copy_only(workspace):
    data = image_bytes("JPEG", size=(60, 40), exif_orientation=6)  # stored landscape, shown portrait

    photo = upload(workspace, data).photo

    assert (photo.original_width, photo.original_height) == (60, 40)
    assert (photo.width, photo.height) == (40, 60)
    with photo.original.open("rb") as fh:
        assert fh.read() == data


@override_settings(VITRINE_WORKING_MAX_SIDE=100)
def test_working_copy_long_side_is_capped(workspace):
    photo = upload(workspace, image_bytes("JPEG", size=(400, 200))).photo

    assert (photo.original_width, photo.original_height) == (400, 200)
    assert (photo.width, photo.height) == (100, 50)


def test_same_bytes_twice_in_a_workspace_return_the_first_photo(workspace):
    data = image_bytes("JPEG")
    first = upload(workspace, data, "a.jpg")
    files_after_first = stored_files()

    second = upload(workspace, data, "renamed-copy.jpg")

    assert second.created is False
    assert second.photo.pk == first.photo.pk
    assert ProductPhoto.objects.count() == 1
    assert stored_files() == files_after_first


def test_same_bytes_in_another_workspace_are_a_separate_photo(workspace):
    data = image_bytes("JPEG")
    upload(workspace, data)

    other = upload(WorkspaceFactory(), data)

    assert other.created is True
    assert ProductPhoto.objects.count() == 2


def test_product_of_another_workspace_is_refused(workspace):
    foreign = ProductFactory()

    with pytest.raises(UploadRejected) as caught:
        upload(workspace, image_bytes("JPEG"), product=foreign)

    assert caught.value.code == "unknown_product"
    assert ProductPhoto.objects.count() == 0
    assert stored_files() == []


def test_a_failure_while_storing_leaves_no_row_and_no_file(workspace, monkeypatch):
    import catalog.services as services

    def broken_enqueue(**kwargs):
        raise RuntimeError("broker down")

    monkeypatch.setattr(services, "job_enqueue", broken_enqueue)

    with pytest.raises(RuntimeError):
        upload(workspace, image_bytes("JPEG"))

    assert ProductPhoto.objects.count() == 0
    assert stored_files() == []


# Local storage moves the spooled file into place, so its own cleanup finds nothing to delete.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_large_upload_is_read_from_its_temporary_file_not_memory(workspace):
    data = image_bytes("PNG", size=(1500, 1500), seed=7)
    spooled = TemporaryUploadedFile("big.png", "image/png", len(data), None)
    spooled.write(data)
    spooled.seek(0)

    photo = photo_upload(workspace=workspace, file=spooled).photo

    with photo.original.open("rb") as fh:
        assert fh.read() == data
