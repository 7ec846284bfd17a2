"""A generation job through a diffusers backend, end to end: a tiny real SD inpainting
pipeline saved to a model folder, a preset that names it, a brand kit with a LoRA uploaded
over the API, the job, the locked assets and the recipe replay."""
import io
from dataclasses import replace

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from brand.services import preset_create, workspace_defaults_ensure
from studio.services import photo_add
from generation import registry
from studio.models import Asset, GenerationJob
from tests.generation.pipeline_fixtures import save_lora, save_sd_inpaint
from tests.images import product_on_white

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_sd_inpaint(root / "sd-inpaint")
    save_lora("sd-inpaint", root / "sd-inpaint", root / "lora")
    return root


@pytest.fixture(autouse=True)
def tiny_world(model_root, monkeypatch):
    import torch

    monkeypatch.setenv("VITRINE_MODELS_DIR", str(model_root))
    # the tiny UNet's size, not SD's 512 px
    monkeypatch.setitem(registry.BACKENDS, "sd-inpaint", replace(registry.BACKENDS["sd-inpaint"], native_pixels=64 * 64))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    registry.clear_cache()
    yield
    registry.clear_cache()
    torch.set_num_threads(threads)


@pytest.fixture
def setup(workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = photo_add(workspace=workspace, file=SimpleUploadedFile("box.png", product_on_white(size=(96, 72)))).photo
    workspace_defaults_ensure(workspace=workspace)
    preset = preset_create(workspace=workspace, name="Tiny SD", model="sd-inpaint", prompt="a kitchen counter", scheduler="euler", steps=2, guidance=5.0)
    return photo, preset


def run(api, django_capture_on_commit_callbacks, **body):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/jobs/", {"channels": ["96x72"], **body}, format="json")
    assert response.status_code == 202, response.json()
    return GenerationJob.objects.get(pk=response.json()["id"])


def test_sd_inpaint_job_locks_the_product_and_applies_the_brand_kits_lora(api, setup, model_root, django_capture_on_commit_callbacks, membership):
    photo, preset = setup
    membership.role = "brand_manager"
    membership.save()
    plain = run(api, django_capture_on_commit_callbacks, photo=photo.pk, preset=preset.pk, variants=2, seed=3)
    kit_id = api.get("/api/v1/brand-kits/").json()["results"][0]["id"]
    lora_bytes = (model_root / "lora" / "pytorch_lora_weights.safetensors").read_bytes()
    uploaded = api.post(
        f"/api/v1/brand-kits/{kit_id}/loras/", {"name": "house-look", "weight": "0.8", "file": SimpleUploadedFile("look.safetensors", lora_bytes)},
        format="multipart",
    )
    assert uploaded.status_code == 201
    assert (uploaded.json()["version"], [l["name"] for l in uploaded.json()["loras"]]) == (2, ["house-look"])

    styled = run(api, django_capture_on_commit_callbacks, photo=photo.pk, preset=preset.pk, variants=2, seed=3)

    for job in (plain, styled):
        assert job.status == "succeeded", job.error
        assert [a.lock_certificate["changed_pixels"] for a in job.assets.all()] == [0, 0]
    plain_assets = {a.variant: a for a in plain.assets.all()}
    styled_assets = {a.variant: a for a in styled.assets.all()}
    assert plain_assets[0].sha256 != styled_assets[0].sha256  # the LoRA changed the scene
    recipe = styled_assets[0].recipe
    assert [(l["name"], l["weight"]) for l in recipe["plan"]["loras"]] == [("house-look", 0.8)]
    assert recipe["plan"]["brand_kit"]["version"] == 2
    assert recipe["backend"]["backend"] == "sd-inpaint"
    assert recipe["plan"]["prompt"].startswith("a kitchen counter")


def test_sd_inpaint_recipe_replays_to_the_same_pixels(api, setup, django_capture_on_commit_callbacks):
    photo, preset = setup
    job = run(api, django_capture_on_commit_callbacks, photo=photo.pk, preset=preset.pk, variants=2, seed=8)
    original = job.assets.get(variant=1)

    with django_capture_on_commit_callbacks(execute=True):
        replay_id = api.post(f"/api/v1/assets/{original.pk}/regenerate/").json()["id"]

    again = Asset.objects.get(job_id=replay_id)
    assert (again.variant, again.seed) == (1, 9)
    # The same pixels and certificate; the files differ only in their signed Content
    # Credentials manifest (its own id and signing time).
    replayed, first = (np.asarray(Image.open(a.file.open("rb")).convert("RGB")) for a in (again, original))
    assert np.array_equal(replayed, first)
    assert again.lock_certificate == original.lock_certificate


def test_bundled_model_skips_lora_and_says_so(api, setup, django_capture_on_commit_callbacks, model_root, workspace):
    from brand.models import BrandKit
    from brand.services import lora_add

    photo, _ = setup
    kit = BrandKit.objects.get(workspace=workspace, is_default=True)
    lora_add(kit=kit, name="house-look", data=(model_root / "lora" / "pytorch_lora_weights.safetensors").read_bytes())

    from studio.services import generation_job_create

    job = generation_job_create(photo=photo, user=None, variants=1, seed=1)

    assert (job.plan["loras"], job.plan["loras_skipped"]) == ([], ["house-look"])


def test_a_merchant_cannot_change_brand_kits(api, setup):
    kit_id = api.get("/api/v1/brand-kits/").json()["results"][0]["id"]

    response = api.patch(f"/api/v1/brand-kits/{kit_id}/", {"name": "Mine"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Only owners and brand managers can change brand kits and presets."


def test_lora_upload_that_is_not_safetensors_is_refused(api, setup, membership):
    membership.role = "owner"
    membership.save()
    kit_id = api.get("/api/v1/brand-kits/").json()["results"][0]["id"]

    response = api.post(
        f"/api/v1/brand-kits/{kit_id}/loras/", {"name": "x", "file": SimpleUploadedFile("x.safetensors", b"PK\x03\x04 zip")}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "This is not a LoRA adapter file (.safetensors)."
