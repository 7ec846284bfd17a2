"""Generation jobs and assets: the default model end to end, recipes, cancellation, the API."""
import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from brand.models import BrandKit, ScenePreset
from catalog.models import JobStatus
from studio.services import photo_add
from generation import registry
from generation.lock import ProductLayer, verify_lock
from studio.models import Asset, GenerationJob
from generation.provenance import DIGITAL_SOURCE_TYPE, read_xmp
from studio.selectors import cutout_result
from studio.services import generation_job_cancel, generation_job_create
from tests.images import product_on_white

pytestmark = pytest.mark.django_db

W, H = 160, 120


@pytest.fixture
def photo(upload_product_photo):
    return upload_product_photo((W, H))


@pytest.fixture(autouse=True)
def fast_presets(workspace):
    """The real bundled model, with 4 sampling steps instead of 20 to keep the suite quick."""
    from brand.services import workspace_defaults_ensure

    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=4)


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Run whatever is enqueued inside the block, like a worker would once it is committed."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_smallest_request_makes_locked_marked_assets_from_the_defaults(api, photo, run_jobs):
    with run_jobs():
        response = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 2, "seed": 5}, format="json")

    assert response.status_code == 202
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.progress, job.error) == (JobStatus.SUCCEEDED, 100, "")
    assert (job.preset.slug, job.brand_kit.name, job.channels, job.plan["seeds"]) == ("studio-white", "House style", ["square-2048"], [5, 6])
    assets = list(Asset.objects.filter(job=job).order_by("variant"))
    # A 160×120 photo has too few pixels for 2048 px: the square's smallest size, the product
    # enlarged (never silently: the resolution gate warns with the sizes).
    assert [(a.channel, a.variant, a.seed, a.width, a.height) for a in assets] == [("square-2048", 0, 5, 1024, 1024), ("square-2048", 1, 6, 1024, 1024)]
    layer = ProductLayer.from_segmentation(cutout_result(job.cutout))
    for asset in assets:
        data = asset.file.open("rb").read()
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        certificate = verify_lock(image=pixels, layer=layer, transform=_transform(asset))
        assert (certificate.passed, certificate.locked_pixels) == (True, asset.lock_certificate["locked_pixels"])
        assert asset.lock_certificate["changed_pixels"] == 0 and asset.lock_certificate["locked_pixels"] > 10_000
        assert DIGITAL_SOURCE_TYPE in read_xmp(data)
        assert [c["name"] for c in asset.preflight] == ["size", "long-side", "megapixels", "edge-halo"]
        assert asset.recipe["placement"]["reason"] == "enlarged" and asset.lock_certificate["kind"] == "resampled"
        resolution = next(g for g in asset.gates if g["name"] == "resolution")
        assert resolution["status"] == "warn" and "This photo is 160 px" in resolution["reason"] and "Square 2048 wants 2,048 px" in resolution["reason"]
    assert assets[0].sha256 != assets[1].sha256  # different seeds, different scenes


def _transform(asset):
    from generation.lock import Transform

    return Transform(**asset.recipe["transform"])


def test_recipe_records_everything_needed_to_replay(api, photo, run_jobs):
    with run_jobs():
        job_id = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "seed": 11, "prompt": "on a sunny sill", "channels": ["as-photo"]}, format="json").json()["id"]

    recipe = Asset.objects.get(job_id=job_id).recipe
    assert recipe["seed"] == 11
    assert recipe["plan"]["prompt"].startswith("on a sunny sill, clean white studio sweep")
    assert recipe["plan"]["preset"]["version"] == 1 and recipe["plan"]["brand_kit"]["version"] == 1
    assert recipe["cutout"]["revision"] == 1
    assert recipe["backend"]["model"] == "backdrop-mini"
    assert len(recipe["backend"]["weights_sha256"]) >= 1
    assert set(recipe) >= {"transform", "native_size", "vitrine_version", "channel"}


def test_regenerate_from_recipe_gives_the_same_pixels(api, photo, run_jobs):
    with run_jobs():
        job_id = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 2, "seed": 3, "channels": ["as-photo"]}, format="json").json()["id"]
    original = Asset.objects.get(job_id=job_id, variant=1)

    with run_jobs():
        response = api.post(f"/api/v1/assets/{original.pk}/regenerate/")

    assert response.status_code == 202
    again = Asset.objects.get(job_id=response.json()["id"])
    assert (again.seed, again.variant, again.channel, again.cutout_id) == (original.seed, 1, original.channel, original.cutout_id)
    assert GenerationJob.objects.get(pk=response.json()["id"]).variants == 1
    # The same pixels and the same lock certificate. The files' bytes differ: each carries its
    # own signed Content Credentials manifest (a new manifest id and signing time).
    replayed, first = (np.asarray(Image.open(a.file.open("rb")).convert("RGB")) for a in (again, original))
    assert np.array_equal(replayed, first)
    assert again.lock_certificate == original.lock_certificate


def test_channels_each_get_their_canvas_and_checks(api, photo, run_jobs):
    with run_jobs():
        job_id = api.post(
            "/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "seed": 1, "channels": ["marketplace-white", "portrait-4x5"]}, format="json"
        ).json()["id"]

    assets = {a.channel: a for a in Asset.objects.filter(job_id=job_id)}
    # The 160×120 photo is too small for either channel's full size: the portrait's smallest
    # size (half), the marketplace's 1000 px minimum, the product enlarged with a warning.
    assert (assets["portrait-4x5"].width, assets["portrait-4x5"].height) == (540, 675)
    white = assets["marketplace-white"]
    assert (white.width, white.height) == (1000, 1000)
    checks = {c["name"]: c["passed"] for c in white.preflight}
    assert checks["white-background"] is True and checks["product-fill"] is True and checks["long-side"] is True
    assert white.lock_certificate["changed_pixels"] == 0
    for asset in assets.values():
        assert asset.lock_certificate["kind"] == "resampled" and asset.lock_certificate["transform"]["scale"] > 1
        assert next(g for g in asset.gates if g["name"] == "resolution")["status"] == "warn"


def test_a_photo_large_enough_keeps_its_own_pixels_on_the_channel(api, upload_product_photo, run_jobs):
    """Placement that prefers identity, through the worker: a 1200×900 photo's product
    (400×450 px) fills 39 % of a 1350 px portrait at its own size, so the asset is
    pixel-identical, the badge says so, and the independent verifier agrees."""
    from generation.verify import verify_asset

    photo = upload_product_photo((1200, 900))
    with run_jobs():
        job_id = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "seed": 2, "channels": ["portrait-4x5"]}, format="json").json()["id"]

    asset = Asset.objects.get(job_id=job_id)
    cert = asset.lock_certificate
    assert (asset.width, asset.height, asset.recipe["placement"]["reason"]) == (1080, 1350, "native")
    assert (cert["kind"], cert["transform"]["scale"], cert["badge"]) == ("pixel-identical", 1.0, "Product pixels identical to your photo")
    assert next(g for g in asset.gates if g["name"] == "resolution")["status"] == "pass"
    verdict = verify_asset(asset.file.open("rb").read(), photo.original.open("rb").read())
    assert verdict.verdict == "identical" and verdict.changed_pixels == 0, verdict.summary()


def test_a_display_p3_photo_carries_its_colour_record_to_the_certificate(api, workspace, run_jobs):
    """The certificate names what the ingest decode did (profile, its hash, intent), read
    from the original at render time; the verifier re-derives and checks it; the delivered
    product is within ΔE00 1 of the photo as a colour-managed viewer shows it."""
    import hashlib

    from generation.colour import delta_e_2000, srgb_to_lab
    from generation.verify import verify_asset
    from tests.generation.icc_fixtures import display_p3
    from tests.generation.test_decoding_colour import _encode_in

    icc = display_p3()
    seen = np.asarray(Image.open(io.BytesIO(product_on_white(size=(1200, 900), seed=4))).convert("RGB"))
    stored = _encode_in(seen, icc)  # the photo as a P3 camera stores it
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="PNG", icc_profile=icc)
    with run_jobs():
        photo = photo_add(workspace=workspace, file=SimpleUploadedFile("p3.png", buffer.getvalue())).photo
    with run_jobs():
        job_id = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "seed": 2, "channels": ["portrait-4x5"]}, format="json").json()["id"]

    asset = Asset.objects.get(job_id=job_id)
    cert = asset.lock_certificate
    assert cert["colour_conversion"] == {
        "source_profile": "Display P3 (test)", "profile_sha256": hashlib.sha256(icc).hexdigest(), "intent": "relative", "converted": True,
    }
    data = asset.file.open("rb").read()
    verdict = verify_asset(data, photo.original.open("rb").read())
    assert verdict.verdict == "identical", verdict.summary()

    # The delivered file (untagged: sRGB) against the colours the P3 file shows, on the product.
    delivered = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    mask = np.asarray(Image.open(asset.cutout.mask.open("rb")).convert("L")) >= 128
    t = cert["transform"]
    ys, xs = np.nonzero(mask)
    product = delivered[ys + t["dy"], xs + t["dx"]]
    delta = delta_e_2000(srgb_to_lab(seen[ys, xs]), srgb_to_lab(product))
    assert float(delta.mean()) <= 0.25 and float(np.percentile(delta, 99)) <= 1.0, (float(delta.mean()), float(np.percentile(delta, 99)))
    # Dropping the profile instead would be far off: the measurement can fail.
    assert float(delta_e_2000(srgb_to_lab(seen[ys, xs]), srgb_to_lab(stored[ys, xs])).mean()) > 2.0


def test_banned_term_in_the_prompt_is_refused(api, photo, workspace):
    from brand.services import workspace_defaults_ensure

    workspace_defaults_ensure(workspace=workspace)
    BrandKit.objects.filter(workspace=workspace).update(banned_terms=["cheap"])

    response = api.post("/api/v1/jobs/", {"photo": photo.pk, "prompt": "Cheap plastic look"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The prompt uses 'cheap', which this brand kit does not allow. Reword it and try again."
    assert GenerationJob.objects.count() == 0


def test_unknown_channel_is_refused(api, photo):
    response = api.post("/api/v1/jobs/", {"photo": photo.pk, "channels": ["billboard"]}, format="json")

    assert response.status_code == 400
    assert "Unknown: billboard." in response.json()["error"]["message"]


def test_a_queued_job_is_cancelled_at_once(photo, user):
    job = generation_job_create(photo=photo, user=user, variants=1, seed=1)

    generation_job_cancel(job=job)

    assert job.status == JobStatus.CANCELLED


def test_a_running_job_stops_at_its_next_step(photo, user, django_capture_on_commit_callbacks):
    from studio.tasks import generate_scenes_task

    job = generation_job_create(photo=photo, user=user, variants=2, seed=1)
    GenerationJob.objects.filter(pk=job.pk).update(cancel_requested=True)  # as if a user clicked while it ran

    generate_scenes_task.apply(args=[job.pk])

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert Asset.objects.filter(job=job).count() == 0


def test_a_job_waits_for_the_photos_cutout(workspace, user, django_capture_on_commit_callbacks):
    from catalog.jobs import JobWaiting
    from studio.work import generation_run

    photo = photo_add(workspace=workspace, file=SimpleUploadedFile("late.png", product_on_white(size=(W, H), seed=9))).photo
    job = generation_job_create(photo=photo, user=user, variants=1, seed=1)

    with pytest.raises(JobWaiting):
        generation_run(job=job, progress=lambda p: None)


def test_missing_model_fails_the_job_with_what_to_do(api, photo, run_jobs, workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(tmp_path))
    registry.clear_cache()

    with run_jobs():
        job_id = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "channels": ["as-photo"]}, format="json").json()["id"]

    job = GenerationJob.objects.get(pk=job_id)
    registry.clear_cache()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("The scene model 'backdrop-mini' is not installed on this worker")


def test_out_of_memory_is_retried_with_smaller_batches(api, photo, run_jobs, monkeypatch):
    from generation.pipelines.base import OutOfMemory

    backend = registry.load_scene_backend("backdrop-mini")
    real = backend.generate
    calls = []

    def flaky(request, *, callback=None):
        calls.append(len(request.seeds))
        if len(calls) == 1:
            raise OutOfMemory("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(request, callback=callback)

    monkeypatch.setattr(backend, "generate", flaky)

    with run_jobs():
        job_id = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 4, "seed": 2, "channels": ["as-photo"]}, format="json").json()["id"]

    job = GenerationJob.objects.get(pk=job_id)
    assert job.status == JobStatus.SUCCEEDED
    assert calls == [4, 2, 2]
    assert Asset.objects.filter(job=job).count() == 4


def test_progress_is_recorded_and_the_job_api_shows_it(api, photo, run_jobs):
    with run_jobs():
        job_id = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "seed": 4, "channels": ["as-photo"]}, format="json").json()["id"]

    body = api.get(f"/api/v1/jobs/{job_id}/").json()
    assert (body["status"], body["progress"], body["message"]) == ("succeeded", 100, "1 image(s) ready")
    listing = api.get(f"/api/v1/assets/?job={job_id}").json()
    assert listing["count"] == 1
    assert listing["results"][0]["lock_verified_pixels"] > 2000
    assert listing["results"][0]["lock_kind"] == "pixel-identical"
    assert listing["results"][0]["lock_badge"] == "Product pixels identical to your photo"
    # The stored file checks out against the uploaded bytes, by the independent verifier.
    from generation.verify import verify_asset

    asset = Asset.objects.get(pk=listing["results"][0]["id"])
    with asset.file.open("rb") as fh, photo.original.open("rb") as original:
        verdict = verify_asset(fh.read(), original.read())
    assert verdict.verdict == "identical", verdict.summary()


# Tenant isolation --------------------------------------------------------------------------


def test_another_workspace_cannot_see_or_touch_jobs_and_assets(api, other_api, photo, run_jobs):
    with run_jobs():
        job_id = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "seed": 4, "channels": ["as-photo"]}, format="json").json()["id"]
    asset = Asset.objects.get(job_id=job_id)

    assert other_api.get(f"/api/v1/jobs/{job_id}/").status_code == 404
    assert other_api.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 404
    assert other_api.get(f"/api/v1/assets/{asset.pk}/").status_code == 404
    assert other_api.get(f"/api/v1/assets/{asset.pk}/file/").status_code == 404
    assert other_api.post(f"/api/v1/assets/{asset.pk}/regenerate/").status_code == 404
    assert other_api.post("/api/v1/jobs/", {"photo": photo.pk}, format="json").status_code == 404
    assert other_api.get("/api/v1/assets/").json()["count"] == 0
    assert other_api.get("/api/v1/jobs/").json()["count"] == 0
    assert GenerationJob.objects.count() == 1


def test_another_workspaces_preset_cannot_be_used(api, other_api, photo, other_membership):
    from brand.services import workspace_defaults_ensure

    workspace_defaults_ensure(workspace=other_membership.workspace)
    foreign = ScenePreset.objects.filter(workspace=other_membership.workspace).first()

    response = api.post("/api/v1/jobs/", {"photo": photo.pk, "preset": foreign.pk}, format="json")

    assert response.status_code == 404
    assert GenerationJob.objects.count() == 0
