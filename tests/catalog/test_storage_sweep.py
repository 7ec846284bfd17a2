"""`manage.py storage_sweep`: stored files no row points to are listed, and removed on request."""
import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from catalog.services import photo_upload
from tests.conftest import stored_files
from tests.images import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def orphan(workspace):
    photo_upload(workspace=workspace, file=SimpleUploadedFile("a.jpg", image_bytes("JPEG")))
    return default_storage.save("photos/999/ab/abandoned/working.png", ContentFile(b"left behind by a killed worker"))


def _sweep(*args) -> tuple[list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("storage_sweep", "--min-age", "0", *args, stdout=out, stderr=err)
    return out.getvalue().split(), err.getvalue().strip()


def test_orphans_are_listed_and_nothing_is_removed_without_delete(orphan):
    before = stored_files()

    listed, summary = _sweep()

    assert listed == [orphan]
    assert summary == "1 orphan file(s) found (run with --delete to remove them); 2 file(s) in use"
    assert stored_files() == before


def test_delete_removes_only_the_orphans(orphan):
    before = stored_files()

    listed, _ = _sweep("--delete")

    assert listed == [orphan]
    assert stored_files() == sorted(set(before) - {orphan})


def test_young_files_are_left_alone(orphan):
    out = io.StringIO()
    call_command("storage_sweep", "--delete", stdout=out, stderr=io.StringIO())

    assert out.getvalue() == ""
    assert orphan in stored_files()


def test_a_queued_touch_ups_uploaded_mask_is_not_an_orphan(workspace, orphan):
    from catalog.models import JobKind, PhotoJob, ProductPhoto

    photo = ProductPhoto.objects.get(workspace=workspace)
    pending = default_storage.save(f"photos/{workspace.pk}/touch-ups/waiting.png", ContentFile(b"a mask"))
    PhotoJob.objects.create(workspace=workspace, photo=photo, kind=JobKind.TOUCH_UP, params={"mask": pending})

    listed, _ = _sweep("--delete")

    assert listed == [orphan]
    assert pending in stored_files()


def test_a_write_that_fails_half_way_leaves_no_partial_file(monkeypatch):
    import os

    from django.core.files.storage import default_storage

    from catalog.files import save_files
    from tests.conftest import stored_files

    default_storage.exists("")  # the lazy default storage resolves to its real class
    storage_class = type(default_storage._wrapped)
    real_save = storage_class._save

    def full_disk(self, name, content):
        if name.endswith("second.png"):
            path = self.path(name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(b"half")  # what a full disk leaves behind
            raise OSError(28, "No space left on device")
        return real_save(self, name, content)

    monkeypatch.setattr(storage_class, "_save", full_disk)

    with pytest.raises(OSError):
        save_files([("assets/1/first.png", b"one"), ("assets/1/second.png", b"two")])

    assert stored_files() == []
