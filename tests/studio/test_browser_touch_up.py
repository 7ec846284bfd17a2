"""The touch-up brush, in real headless Chromium, with a real worker making the cutout and
the touch-up job."""
import numpy as np
import pytest
from PIL import Image

from catalog.models import JobKind, JobStatus, PhotoJob, ProductPhoto
from studio.models import Cutout, CutoutSource
from tests.conftest import stored_files, wait_for
from tests.studio.conftest import merchant_uploads_a_product_photo

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_erase_part_of_the_mask_and_save_a_new_revision_through_the_touch_up_job(live_server, worker, page, tmp_path):
    merchant_uploads_a_product_photo(page, live_server.url, tmp_path)
    photo = ProductPhoto.objects.get()
    wait_for(lambda: Cutout.objects.filter(photo=photo).exists(), 90, "the automatic cutout")
    automatic = Cutout.objects.get(photo=photo)
    assert automatic.locked_pixels > 10_000

    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    page.wait_for_selector("#mask-editor[data-loaded='1']")
    page.get_by_label("Erase from product").check()
    page.locator("#brush-size").fill("60")
    # Drag across the product's top-left corner region, in image pixels (160..220, 90..150).
    canvas = page.locator("#mask-canvas")
    box = canvas.bounding_box()
    to_screen = lambda x, y: (box["x"] + x * box["width"] / 480, box["y"] + y * box["height"] / 360)  # noqa: E731
    page.mouse.move(*to_screen(170, 110))
    page.mouse.down()
    for x in range(170, 260, 10):
        page.mouse.move(*to_screen(x, 110))
    page.mouse.up()
    page.get_by_role("button", name="Save revision").click()

    # The page follows the cpu job and swaps in the new revision when the job is done.
    page.get_by_text("Revision 2 · Touch-up").wait_for()
    job = PhotoJob.objects.get(photo=photo, kind=JobKind.TOUCH_UP)
    assert (job.status, job.progress) == (JobStatus.SUCCEEDED, 100)
    assert [name for name in stored_files() if "/touch-ups/" in name] == []  # the upload is removed
    revised = Cutout.objects.get(photo=photo, revision=2)
    assert revised.source == CutoutSource.TOUCH_UP
    assert revised.parent_id == automatic.pk
    assert revised.locked_pixels < automatic.locked_pixels
    with revised.mask.open("rb") as fh:
        mask = np.asarray(Image.open(fh)) == 255
    assert not mask[105:116, 175:255].any()  # the brushed band is no longer locked
    assert mask[200:260, 200:300].all()  # the rest of the product still is
    assert "2 (current)" in page.locator(".revisions").text_content()
