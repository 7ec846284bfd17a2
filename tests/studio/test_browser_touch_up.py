"""The touch-up brush, in real headless Chromium, with a real worker making the cutout and
the touch-up job."""
import numpy as np
import pytest
from PIL import Image

from catalog.models import JobKind, JobStatus, PhotoJob, ProductPhoto
from studio.models import Cutout, CutoutSource
from tests.conftest import ROOT, stored_files, wait_for
from tests.studio.conftest import merchant_uploads_a_product_photo

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SCREENSHOT = ROOT / "docs" / "screenshots" / "touch-up.png"


def test_erase_part_of_the_mask_and_save_a_new_revision_through_the_touch_up_job(live_server, worker, page, tmp_path):
    merchant_uploads_a_product_photo(page, live_server.url, tmp_path)
    photo = ProductPhoto.objects.get()
    wait_for(lambda: Cutout.objects.filter(photo=photo).exists(), 90, "the automatic cutout")
    automatic = Cutout.objects.get(photo=photo)
    assert automatic.locked_pixels > 10_000

    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    page.wait_for_selector("#mask-editor[data-loaded='1']")
    page.get_by_label("Erase from product").check()
    page.get_by_label("Snap to edges").uncheck()  # erasing product-coloured pixels on purpose
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


def _image_to_screen(page):
    """Image pixel -> page coordinates, through the photo as it is drawn (zoom and pan included)."""
    box = page.locator("#view-mask .stage-photo").bounding_box()
    return lambda x, y: (box["x"] + x * box["width"] / 480, box["y"] + y * box["height"] / 360)


def _drag(page, points):
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
    page.mouse.up()


def _stored_mask(cutout) -> np.ndarray:
    with cutout.mask.open("rb") as fh:
        return np.asarray(Image.open(fh)) == 255


def test_the_toolbar_fits_a_laptop_window_and_shortcuts_work(live_server, worker, page, tmp_path):
    page.set_viewport_size({"width": 1440, "height": 900})
    merchant_uploads_a_product_photo(page, live_server.url, tmp_path)
    photo = ProductPhoto.objects.get()
    wait_for(lambda: Cutout.objects.filter(photo=photo).exists(), 90, "the automatic cutout")

    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    page.wait_for_selector("#mask-editor[data-loaded='1']")
    assert page.evaluate("window.scrollY") == 0
    controls = page.locator(".mask-editor .toolbar").locator("button, input, output")
    assert controls.count() >= 14
    for i in range(controls.count()):
        box = controls.nth(i).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, controls.nth(i).evaluate("e => e.outerHTML")
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1440
    stage = page.locator("#view-mask").bounding_box()
    assert stage["y"] + stage["height"] <= 900  # the photo too: no scrolling between brush and buttons
    # Disabled buttons look it: Save (nothing brushed yet) and Fit (already fitted) are faded.
    assert page.locator("#save-mask").is_disabled()
    assert page.locator("#zoom-fit").is_disabled()
    assert page.eval_on_selector("#save-mask", "b => getComputedStyle(b).opacity") == "0.45"
    assert page.eval_on_selector("#reset-auto", "b => getComputedStyle(b).opacity") == "1"
    assert page.get_by_role("button", name="Fill holes").is_enabled()

    page.locator("#mask-canvas").hover()
    page.keyboard.press("x")
    assert page.get_by_label("Erase from product").is_checked()
    page.keyboard.press("x")
    assert page.get_by_label("Add to product").is_checked()
    page.keyboard.press("]")
    assert page.locator("#brush-size").input_value() == "50"
    page.keyboard.press("[")
    page.keyboard.press("[")
    assert page.locator("#brush-size").input_value() == "32"
    assert page.locator("#brush-size-value").text_content() == "32"
    assert "[" in page.locator("#brush-size").get_attribute("title")


def test_zoom_paint_with_the_edge_snapping_brush_and_the_revision_follows_the_product_edge(live_server, worker, page, tmp_path):
    """The red box's right edge is the column x = 320 (rows 90..270). A first revision erases
    its right 50 columns (snapping off); then, zoomed in, a rough stroke that runs 20 px past
    the edge (and past its top and bottom) adds them back with snapping on."""
    page.set_viewport_size({"width": 1440, "height": 900})
    merchant_uploads_a_product_photo(page, live_server.url, tmp_path)
    photo = ProductPhoto.objects.get()
    wait_for(lambda: Cutout.objects.filter(photo=photo).exists(), 90, "the automatic cutout")
    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    page.wait_for_selector("#mask-editor[data-loaded='1']")

    page.get_by_label("Erase from product").check()
    page.get_by_label("Snap to edges").uncheck()
    page.locator("#brush-size").fill("60")
    to_screen = _image_to_screen(page)
    _drag(page, [to_screen(300, y) for y in range(40, 330, 10)])
    page.get_by_role("button", name="Save revision").click()
    page.get_by_text("Revision 2 · Touch-up").wait_for()
    cut = _stored_mask(Cutout.objects.get(photo=photo, revision=2))
    assert not cut[:, 272:330].any()

    page.wait_for_selector("#mask-editor[data-loaded='1']")
    assert page.get_by_label("Snap to edges").is_checked()  # on by default
    fit_level = page.locator("#zoom-level").text_content()
    page.mouse.move(*_image_to_screen(page)(300, 180))
    page.mouse.wheel(0, -200)
    page.wait_for_function(f"document.querySelector('#zoom-level').textContent !== {fit_level!r}")
    assert int(page.locator("#zoom-level").text_content().rstrip(" %")) > int(fit_level.rstrip(" %"))
    assert page.locator("#zoom-fit").is_enabled()
    to_screen = _image_to_screen(page)
    zoomed = page.locator("#view-mask .stage-photo").bounding_box()["width"] / 480
    page.get_by_label("Add to product").check()
    page.locator("#brush-size").fill("70")
    page.mouse.move(*to_screen(305, 100))
    cursor = page.locator(".brush-cursor").bounding_box()
    assert abs(cursor["width"] - 70 * zoomed) <= 3  # the cursor shows the brush at this zoom
    _drag(page, [to_screen(305, y) for y in range(100, 261, 8)])  # covers x 270..340, y 65..295
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))  # the editor zoomed in, the rough stroke not yet saved
    page.get_by_role("button", name="Save revision").click()

    page.get_by_text("Revision 3 · Touch-up").wait_for()
    job = PhotoJob.objects.filter(photo=photo, kind=JobKind.TOUCH_UP).latest("pk")
    assert job.params["snap_edges"] is True
    snapped = _stored_mask(Cutout.objects.get(photo=photo, revision=3))
    right_edges = 480 - np.argmax(snapped[100:261, ::-1], axis=1)
    assert np.abs(right_edges - 320).max() <= 3  # the stroke stops at the product's edge...
    assert snapped[100:261, 275:316].all()  # ...having filled what was missing
    assert not snapped[:, 325:].any()
    assert not snapped[:86, 260:345].any() and not snapped[275:, 260:345].any()  # caps trimmed too
