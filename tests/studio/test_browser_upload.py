"""In real headless Chromium against a live server and a real worker."""
import io

import pytest
from django.core.management import call_command

from catalog.models import ProductPhoto
from catalog.services import DEMO_PASSWORD
from tests.images import image_bytes
from tests.studio.conftest import choose_photos, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_merchant_uploads_three_photos_and_sees_their_thumbnails(live_server, worker, page, tmp_path):
    call_command("seed_demo", stdout=io.StringIO())
    paths = []
    for seed, (name, fmt) in enumerate([("bottle.jpg", "JPEG"), ("mug.png", "PNG"), ("wallet.webp", "WEBP")]):
        path = tmp_path / name
        path.write_bytes(image_bytes(fmt, size=(640, 480), seed=seed))
        paths.append(str(path))

    sign_in(page, live_server.url, "merchant@demo.vitrine", DEMO_PASSWORD)
    page.wait_for_url(f"{live_server.url}/products/")
    page.get_by_text("No photos yet. Drop product photos on this page to start.").wait_for()
    choose_photos(page, paths)

    for name in ("bottle.jpg", "mug.png", "wallet.webp"):
        row = page.locator("#uploads li", has_text=name)
        row.locator(".upload-state", has_text="Uploaded").wait_for()
    # Thumbnails appear once the worker has finished each job; the grid polls by itself.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#photo-grid .tile img')]"
        ".filter(img => img.complete && img.naturalWidth > 0).length === 3",
        timeout=60_000,
    )
    tiles = page.locator("#photo-grid .tile")
    assert sorted(tiles.all_inner_texts()) == sorted(f"{n}\nReady" for n in ("bottle.jpg", "mug.png", "wallet.webp"))
    assert ProductPhoto.objects.filter(workspace__slug="demo").count() == 3


def test_a_file_that_is_not_a_photo_gets_a_plain_error_next_to_it(live_server, page, tmp_path, transactional_db):
    call_command("seed_demo", stdout=io.StringIO())
    notes = tmp_path / "notes.jpg"
    notes.write_text("not really a photo\n" * 10)

    sign_in(page, live_server.url, "merchant@demo.vitrine", DEMO_PASSWORD)
    choose_photos(page, [notes])

    row = page.locator("#uploads li", has_text="notes.jpg")
    row.locator(".upload-state", has_text="This file is not a JPEG, PNG, WebP, HEIC or AVIF image.").wait_for()
    assert ProductPhoto.objects.count() == 0


def test_wrong_password_is_explained(live_server, page, transactional_db):
    call_command("seed_demo", stdout=io.StringIO())

    sign_in(page, live_server.url, "merchant@demo.vitrine", "wrong")

    page.get_by_role("alert").wait_for()
    assert "That email and password do not match an account." in page.get_by_role("alert").inner_text()
