"""A preset is refused when it is saved, not on a GPU worker, if its model's backend cannot
sample with what it asks; what it does not say comes from that backend's defaults."""
import pytest

from brand.models import SchedulerName, ScenePreset
from brand.services import preset_create
from generation.pipelines.base import SCHEDULERS

pytestmark = pytest.mark.django_db

FLUX_GUIDANCE = (
    "FLUX.1 Fill uses embedded guidance between 10 and 100 (30 is typical); 7 is outside that range. "
    "Stable Diffusion's classifier-free guidance values (around 7) do not carry over."
)


def sampling(preset: ScenePreset) -> tuple:
    return (preset.model, preset.scheduler, preset.steps, preset.guidance, preset.strength)


def test_scheduler_choices_are_the_engines_names():
    assert SchedulerName.choices == [("euler", "Euler"), ("ddim", "DDIM"), ("dpmpp", "DPM++ 2M")]
    assert SchedulerName.values == list(SCHEDULERS)


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"model": "flux-fill", "guidance": 7.0}, "guidance", FLUX_GUIDANCE),
        ({"model": "flux-fill", "scheduler": "dpmpp"}, "scheduler", "FLUX.1 Fill can only sample with euler; choose it instead of dpmpp."),
        ({"model": "backdrop-mini", "scheduler": "euler"}, "scheduler", "backdrop-mini can only sample with ddim; choose it instead of euler."),
        ({"guidance": 7.5}, "guidance", "backdrop-mini does not use guidance; leave it at 1 (it is 7.5)."),
        ({"model": "sd-inpaint", "guidance": 30.0}, "guidance", (
            "Stable Diffusion inpainting uses classifier-free guidance between 1 and 20 (7 is typical); 30 is outside that range."
        )),
        ({"style": "beach"}, "style", (
            "backdrop-mini has no style 'beach'. Choose one of: studio-white, studio-colour, marble, wood, concrete, linen, pastel-sweep."
        )),
        ({"model": "sdxl-inpaint", "strength": 0.0}, "strength", (
            "SDXL inpainting takes a strength above 0 and at most 1 (1 repaints everything but the product); 0 is outside that range."
        )),
    ],
)
def test_a_preset_its_model_cannot_sample_is_refused_on_the_field(api, manager, payload, field, message):
    before = ScenePreset.objects.count()

    response = api.post("/api/v1/presets/", {"name": "Wrong", **payload}, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid", "message": message, "fields": {field: [message]}}
    assert ScenePreset.objects.count() == before
    assert not ScenePreset.objects.filter(slug="wrong").exists()


def test_every_field_that_is_wrong_is_named(api, manager):
    response = api.post(
        "/api/v1/presets/", {"name": "Wrong", "model": "flux-fill", "scheduler": "ddim", "guidance": 7.0}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "scheduler": ["FLUX.1 Fill can only sample with euler; choose it instead of ddim."],
        "guidance": [FLUX_GUIDANCE],
    }


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, ("backdrop-mini", "ddim", 20, 1.0, 1.0)),
        ({"model": "sd-inpaint"}, ("sd-inpaint", "euler", 30, 7.0, 1.0)),
        ({"model": "flux-fill"}, ("flux-fill", "euler", 28, 30.0, 1.0)),
        ({"model": "flux-fill", "steps": 12}, ("flux-fill", "euler", 12, 30.0, 1.0)),
    ],
)
def test_what_a_new_preset_does_not_say_comes_from_its_models_defaults(api, manager, payload, expected):
    response = api.post("/api/v1/presets/", {"name": "New", **payload}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["model"], body["scheduler"], body["steps"], body["guidance"], body["strength"]) == expected
    assert sampling(ScenePreset.objects.get(pk=body["id"])) == expected


def test_changing_only_the_model_rechecks_the_stored_settings(api, manager):
    preset = ScenePreset.objects.get(workspace=manager.workspace, slug="marble")

    response = api.patch(f"/api/v1/presets/{preset.pk}/", {"model": "flux-fill"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "scheduler": ["FLUX.1 Fill can only sample with euler; choose it instead of ddim."],
        "guidance": [
            "FLUX.1 Fill uses embedded guidance between 10 and 100 (30 is typical); 1 is outside that range. "
            "Stable Diffusion's classifier-free guidance values (around 7) do not carry over."
        ],
    }
    preset.refresh_from_db()
    assert (sampling(preset), preset.version) == (("backdrop-mini", "ddim", 20, 1.0, 1.0), 1)


def test_changing_the_model_with_settings_it_can_use_is_saved(api, manager):
    preset = ScenePreset.objects.get(workspace=manager.workspace, slug="marble")

    response = api.patch(
        f"/api/v1/presets/{preset.pk}/", {"model": "flux-fill", "scheduler": "euler", "guidance": 30.0}, format="json"
    )

    assert response.status_code == 200
    preset.refresh_from_db()
    assert (sampling(preset), preset.version) == (("flux-fill", "euler", 20, 30.0, 1.0), 2)


def test_changing_a_setting_is_checked_against_the_stored_model(api, manager):
    preset = ScenePreset.objects.get(workspace=manager.workspace, slug="wood")

    response = api.patch(f"/api/v1/presets/{preset.pk}/", {"scheduler": "dpmpp"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"scheduler": ["backdrop-mini can only sample with ddim; choose it instead of dpmpp."]}
    preset.refresh_from_db()
    assert (preset.scheduler, preset.version) == ("ddim", 1)


def test_the_bundled_presets_use_backdrop_minis_defaults(manager):
    presets = ScenePreset.objects.filter(workspace=manager.workspace)

    assert {sampling(p) for p in presets} == {("backdrop-mini", "ddim", 20, 1.0, 1.0)}


def test_the_service_refuses_as_the_api_does(workspace):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        preset_create(workspace=workspace, name="Flux", model="flux-fill", guidance=7.0)

    assert info.value.message_dict == {"guidance": [FLUX_GUIDANCE]}
    assert not ScenePreset.objects.filter(workspace=workspace).exists()
