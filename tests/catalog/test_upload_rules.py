"""One set of upload rules for every format: one file per request, exact sizes in messages,
metadata budgets (colour profile, EXIF, XMP, text) refused at upload by name, end to end
when within them. Every rejection leaves no row and no file."""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, PngImagePlugin

from catalog.models import JobKind, PhotoJob, ProductPhoto
from catalog.services import photo_upload
from generation.decoding import UploadRejected
from studio.services import _mask_header_check
from tests.conftest import stored_files
from tests.images import image_bytes, png_declaring

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024
from tests.generation.icc_fixtures import display_p3

LIMIT = 1024 * 1024  # the default VITRINE_UPLOAD_MAX_ICC_BYTES and VITRINE_UPLOAD_MAX_METADATA_BYTES


def encoded(fmt: str, **save) -> bytes:
    image = Image.fromarray(__import__("numpy").random.default_rng(0).integers(0, 255, (48, 64, 3), dtype="uint8"))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def profile(size: int) -> bytes:
    # Not a real ICC profile (Pillow carries it as bytes): the budget is about its size.
    return bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)


def assert_nothing_left():
    assert ProductPhoto.objects.count() == 0
    assert PhotoJob.objects.count() == 0
    assert stored_files() == []


def test_two_file_parts_are_refused_and_neither_is_kept(api):
    first = SimpleUploadedFile("a.png", image_bytes("PNG", seed=1))
    second = SimpleUploadedFile("b.png", image_bytes("PNG", seed=2))

    response = api.post("/api/v1/photos/", {"file": [first, second]}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "one_file_per_request"
    assert response.json()["error"]["message"] == "Send one file per request; this request has more than one `file` part."
    assert_nothing_left()


def test_one_byte_over_the_size_cap_is_told_in_bytes(workspace):
    data = image_bytes("PNG", size=(8, 8))
    data += b"\x00" * (50 * MiB + 1 - len(data))

    with pytest.raises(UploadRejected) as caught:
        photo_upload(workspace=workspace, file=SimpleUploadedFile("huge.png", data))

    assert caught.value.message == "This file is 52,428,801 bytes; the limit is 52,428,800 bytes (50 MB)."
    assert_nothing_left()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_colour_profile_over_the_budget_is_refused_the_same_way_in_every_format(workspace, fmt):
    data = encoded(fmt, icc_profile=profile(LIMIT + 1))

    with pytest.raises(UploadRejected) as caught:
        photo_upload(workspace=workspace, file=SimpleUploadedFile(f"p.{fmt.lower()}", data))

    # A PNG's profile is compressed and is inflated only just past the budget.
    size = "more than 1,048,576 bytes" if fmt == "PNG" else "1,048,577 bytes"
    assert caught.value.code == "icc_too_large"
    assert caught.value.message == (
        f"This image's colour profile (ICC) is {size}; the limit is 1,048,576 bytes. "
        "Convert it to sRGB, or export it without an embedded colour profile, and upload it again."
    )
    assert_nothing_left()


def test_a_5_mb_profile_in_a_jpeg_is_refused_with_its_size(workspace):
    # It used to be accepted, and then its thumbnail and cutout always failed.
    data = encoded("JPEG", icc_profile=profile(5 * 1000 * 1000))

    with pytest.raises(UploadRejected) as caught:
        photo_upload(workspace=workspace, file=SimpleUploadedFile("p.jpg", data))

    assert caught.value.message.startswith("This image's colour profile (ICC) is 5,000,000 bytes; the limit is 1,048,576 bytes.")
    assert_nothing_left()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_profile_at_the_budget_is_applied_end_to_end(workspace, fmt, django_capture_on_commit_callbacks):
    icc = display_p3(pad_to=LIMIT)
    data = encoded(fmt, icc_profile=icc)

    with django_capture_on_commit_callbacks(execute=True):
        photo = photo_upload(workspace=workspace, file=SimpleUploadedFile(f"p.{fmt.lower()}", data)).photo

    photo.refresh_from_db()
    assert PhotoJob.objects.get(photo=photo, kind=JobKind.THUMBNAIL).status == "succeeded"
    with photo.working.open("rb") as fh:
        assert "icc_profile" not in Image.open(fh).info  # converted to sRGB at ingest
    assert photo.thumbnail.name.endswith("thumbnail.webp")


def _png_with_text(**chunks) -> bytes:
    info = PngImagePlugin.PngInfo()
    for kind, (key, value) in chunks.items():
        if kind == "tEXt":
            info.add_text(key, value)
        elif kind == "zTXt":
            info.add_text(key, value, zip=True)
        else:
            info.add_itxt(key, value, zip=True)
    return encoded("PNG", pnginfo=info)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _png_with_text(tEXt=("Comment", "c" * (LIMIT + 10))),
            "This image's text metadata (PNG tEXt, zTXt and iTXt chunks) is 1,048,594 bytes; the limit is 1,048,576 bytes.",
        ),
        (
            _png_with_text(zTXt=("Comment", "c" * (3 * MiB))),
            "This image's text metadata (PNG tEXt, zTXt and iTXt chunks) is more than 1,048,576 bytes; the limit is 1,048,576 bytes.",
        ),
        (
            _png_with_text(iTXt=("XML:com.adobe.xmp", "x" * (2 * MiB))),
            "This image's XMP metadata is more than 1,048,576 bytes; the limit is 1,048,576 bytes.",
        ),
        (encoded("WEBP", xmp=b"x" * (LIMIT + 1)), "This image's XMP metadata is 1,048,577 bytes; the limit is 1,048,576 bytes."),
        (encoded("WEBP", exif=b"Exif\x00\x00MM\x00*" + b"\x00" * LIMIT), "This image's EXIF metadata is 1,048,580 bytes; the limit is 1,048,576 bytes."),
        (encoded("PNG", exif=b"Exif\x00\x00MM\x00*" + b"\x00" * LIMIT), "This image's EXIF metadata is 1,048,580 bytes; the limit is 1,048,576 bytes."),
    ],
    ids=["png-tEXt", "png-zTXt", "png-xmp", "webp-xmp", "webp-exif", "png-exif"],
)
def test_large_metadata_is_refused_by_name(workspace, data, message):
    with pytest.raises(UploadRejected) as caught:
        photo_upload(workspace=workspace, file=SimpleUploadedFile("meta.png", data))

    assert caught.value.code == "metadata_too_large"
    assert caught.value.message == message + " Export the image without metadata (most editors have a “strip metadata” option) and upload it again."
    assert_nothing_left()


def test_jpeg_xmp_in_many_segments_counts_as_one(workspace, settings):
    settings.VITRINE_UPLOAD_MAX_METADATA_BYTES = 100_000
    # Extended XMP: the same namespace key in several APP1 segments, each under 64 KiB.
    key = b"http://ns.adobe.com/xmp/extension/\x00"
    segment = key + b"x" * 60_000
    app1 = b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment
    plain = encoded("JPEG")
    data = plain[:2] + app1 + app1 + plain[2:]

    with pytest.raises(UploadRejected) as caught:
        photo_upload(workspace=workspace, file=SimpleUploadedFile("x.jpg", data))

    assert caught.value.message.startswith("This image's XMP metadata is 120,000 bytes; the limit is 100,000 bytes.")
    assert_nothing_left()


def test_small_metadata_is_accepted(workspace):
    data = _png_with_text(tEXt=("Comment", "shot on a white sweep"))

    result = photo_upload(workspace=workspace, file=SimpleUploadedFile("ok.png", data))

    assert result.created is True
    assert ProductPhoto.objects.count() == 1


def test_a_mask_declaring_far_more_pixels_is_refused_from_its_header():
    # 30,000 × 30,000 declared in a few hundred bytes: refused before any pixel is decoded.
    mask = SimpleUploadedFile("mask.png", png_declaring(30000, 30000))

    with pytest.raises(UploadRejected) as caught:
        _mask_header_check(mask, size=(640, 480))

    assert (caught.value.code, caught.value.message) == (
        "invalid_mask",
        "The mask has far more pixels than the photo; it must match the photo's 640×480 px.",
    )
    assert mask.tell() == 0
