"""Assets are deliverable only once their job has succeeded: a crashed or cancelled job's
images so far are not shown anywhere."""
import pytest

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.jobs import JobStatus
from studio.models import Asset, GenerationJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def job_id(api, workspace, upload_product_photo, django_capture_on_commit_callbacks):
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    photo = upload_product_photo((96, 72))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 2, "channels": ["as-photo"]}, format="json")
    return response.json()["id"]


def test_a_finished_jobs_assets_are_listed_and_downloadable(api, job_id):
    listed = api.get(f"/api/v1/assets/?job={job_id}").json()["results"]

    assert len(listed) == 2
    assert api.get(f"/api/v1/assets/{listed[0]['id']}/file/").status_code == 200


@pytest.mark.parametrize("status", [JobStatus.RUNNING, JobStatus.FAILED])
def test_a_job_that_has_not_succeeded_delivers_nothing(api, job_id, status):
    asset = Asset.objects.filter(job_id=job_id).first()
    GenerationJob.objects.filter(pk=job_id).update(status=status)

    assert api.get(f"/api/v1/assets/?job={job_id}").json()["results"] == []
    assert api.get(f"/api/v1/assets/{asset.pk}/").status_code == 404
    assert api.get(f"/api/v1/assets/{asset.pk}/file/").status_code == 404
