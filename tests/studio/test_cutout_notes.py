"""The cutout panel says in words why a cutout may be wrong (words from NOTE_TEXT, one place)."""
import pytest

from generation.segmentation.base import NOTE_TEXT
from studio.models import Cutout

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo(upload_product_photo):
    return upload_product_photo((240, 180))


def test_the_cutout_panel_shows_each_note_in_words(client, user, photo):
    client.force_login(user)
    cutout = Cutout.objects.filter(photo=photo).latest("revision")
    Cutout.objects.filter(pk=cutout.pk).update(confident=False, notes=["unstable", "leaves-frame"])

    html = client.get(f"/photos/{photo.pk}/cutout/").content.decode()

    assert "May be wrong: check the edges" in html
    assert f"<li>{NOTE_TEXT['unstable'][0].upper() + NOTE_TEXT['unstable'][1:]}</li>" in html
    assert f"<li>{NOTE_TEXT['leaves-frame'][0].upper() + NOTE_TEXT['leaves-frame'][1:]}</li>" in html


def test_a_confident_cutout_lists_no_notes(client, user, photo):
    client.force_login(user)
    cutout = Cutout.objects.filter(photo=photo).latest("revision")
    Cutout.objects.filter(pk=cutout.pk).update(confident=True, notes=[])

    html = client.get(f"/photos/{photo.pk}/cutout/").content.decode()

    assert "No problem detected: still check the edges" in html
    assert 'class="cutout-notes"' not in html
