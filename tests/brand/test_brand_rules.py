"""The rules a brand kit or preset is saved under, over the API and the services: the values
an attacker's probe sent (issue 14) are refused with a field message and change nothing."""
import shutil

import pytest
from django.core.exceptions import ValidationError

from brand.models import BrandKit, BrandKitVersion, PresetVersion, ScenePreset
from brand.services import brand_kit_create, brand_kit_snapshot, brand_kit_update, preset_create

pytestmark = pytest.mark.django_db

DELTA_E = (
    "The palette tolerance is a colour difference (CIEDE2000) from 1 (strict) to 100 (anything goes); {} is not in that range."
    " 20 suits most brands."
)
BANNED_TYPE = 'Give the banned terms as a list of words or phrases, e.g. ["cheap", "knife"].'
CHANNELS_TYPE = (
    'Give the default channels as a list of names, e.g. ["square-2048"]. Known: marketplace-white, square-2048, portrait-4x5, landscape-1.91.'
)


def kit_of(manager) -> BrandKit:
    return BrandKit.objects.get(workspace=manager.workspace)


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"guidance": 1e308}, "guidance", "backdrop-mini does not use guidance; leave it at 1 (it is 1e+308)."),
        ({"model": "sd-inpaint", "guidance": 1e308}, "guidance", (
            "Stable Diffusion inpainting uses classifier-free guidance between 1 and 20 (7 is typical); 1e+308 is outside that range."
        )),
        ({"strength": -5}, "strength", "backdrop-mini always paints the whole scene; leave strength at 1 (it is -5)."),
        ({"model": "sd-inpaint", "strength": -5}, "strength", (
            "Stable Diffusion inpainting takes a strength above 0 and at most 1 (1 repaints everything but the product); -5 is outside that range."
        )),
        ({"style": "beach"}, "style", (
            "backdrop-mini has no style 'beach'. Choose one of: studio-white, studio-colour, marble, wood, concrete, linen, pastel-sweep."
        )),
        ({"model": "sd-inpaint", "style": "beach"}, "style", (
            "There is no style 'beach'. Leave it empty (sd-inpaint follows the prompt) or choose one of: studio-white, studio-colour,"
            " marble, wood, concrete, linen, pastel-sweep."
        )),
    ],
)
def test_out_of_range_preset_values_are_refused_on_the_field(api, manager, payload, field, message):
    before = ScenePreset.objects.count()

    response = api.post("/api/v1/presets/", {"name": "Probe", **payload}, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid", "message": message, "fields": {field: [message]}}
    assert ScenePreset.objects.count() == before
    assert not PresetVersion.objects.filter(preset__slug="probe").exists()


def test_a_model_that_is_not_installed_is_refused(api, manager, models_root):
    shutil.rmtree(models_root / "flux-fill")

    response = api.post("/api/v1/presets/", {"name": "Flux", "model": "flux-fill"}, format="json")

    message = (
        "The model 'flux-fill' is not installed on this server. Ask whoever runs Vitrine to run `python manage.py models pull flux-fill`,"
        " or choose an installed model: backdrop-mini, sd-inpaint, sdxl-inpaint."
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"model": [message]}
    assert not ScenePreset.objects.filter(slug="flux").exists()


def test_changing_a_preset_to_a_model_that_is_not_installed_is_refused(api, manager, models_root):
    preset = ScenePreset.objects.get(workspace=manager.workspace, slug="marble")
    shutil.rmtree(models_root / "sd-inpaint")

    response = api.patch(f"/api/v1/presets/{preset.pk}/", {"model": "sd-inpaint", "scheduler": "euler"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["model"]
    preset.refresh_from_db()
    assert (preset.model, preset.version, preset.versions.count()) == ("backdrop-mini", 1, 1)


def test_a_preset_keeps_working_when_its_model_is_later_removed(api, manager, models_root):
    preset = preset_create(workspace=manager.workspace, name="Tiny SD", model="sd-inpaint")
    shutil.rmtree(models_root / "sd-inpaint")

    response = api.patch(f"/api/v1/presets/{preset.pk}/", {"prompt": "a kitchen counter"}, format="json")

    assert response.status_code == 200
    assert response.json()["version"] == 2


def test_the_installed_models_are_listed_with_whether_they_read_prompts(api, manager, models_root):
    shutil.rmtree(models_root / "sdxl-inpaint")

    body = api.get("/api/v1/presets/models/").json()

    assert [(m["name"], m["reads_prompt"]) for m in body] == [("backdrop-mini", False), ("sd-inpaint", True), ("flux-fill", True)]
    assert body[0]["schedulers"] == ["ddim"] and body[0]["guidance_range"] == [1.0, 1.0]
    presets = api.get("/api/v1/presets/").json()["results"]
    assert {p["reads_prompt"] for p in presets} == {False}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"banned_terms": 123}, BANNED_TYPE),
        ({"banned_terms": "abc"}, BANNED_TYPE),
        ({"banned_terms": ["cheap", 5]}, BANNED_TYPE),
        ({"banned_terms": {"cheap": True}}, BANNED_TYPE),
        ({"banned_terms": ["cheap", "  "]}, "A banned term cannot be empty; remove the blank entry."),
        ({"banned_terms": ["x" * 101]}, f"Each banned term is at most 100 characters; '{'x' * 40}…' has 101."),
        ({"banned_terms": [f"term{i}" for i in range(201)]}, "A brand kit can ban at most 200 terms; this list has 201."),
        ({"default_channels": 5}, CHANNELS_TYPE),
        ({"default_channels": "square-2048"}, CHANNELS_TYPE),
        ({"default_channels": [5]}, CHANNELS_TYPE),
        ({"palette_max_delta_e": 0.5}, DELTA_E.format("0.5")),
        ({"palette_max_delta_e": 101}, DELTA_E.format("101")),
        ({"palette_max_delta_e": 1e308}, DELTA_E.format("1e+308")),
        ({"palette": "#112233"}, 'Give 2 or 3 colours as "#rrggbb" (backdrop, surface, accent).'),
        ({"palette": ["#112233", "#445566", "#778899", "#aabbcc"]}, 'Give 2 or 3 colours as "#rrggbb" (backdrop, surface, accent).'),
    ],
)
def test_malformed_kit_values_get_400_and_change_nothing(api, manager, payload, message):
    kit = kit_of(manager)
    field = next(iter(payload))

    response = api.patch(f"/api/v1/brand-kits/{kit.pk}/", payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid", "message": message, "fields": {field: [message]}}
    kit.refresh_from_db()
    assert (kit.version, kit.banned_terms, kit.default_channels, kit.palette_max_delta_e) == (1, [], ["square-2048"], 20.0)
    assert kit.versions.count() == 1


def test_every_wrong_kit_field_is_named_at_once(api, manager):
    kit = kit_of(manager)

    response = api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"banned_terms": "abc", "default_channels": 5, "palette_max_delta_e": 0}, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["error"]["fields"]) == ["banned_terms", "default_channels", "palette_max_delta_e"]


def test_creating_a_kit_without_a_palette_is_a_400_naming_it(api, manager):
    response = api.post("/api/v1/brand-kits/", {"name": "No colours"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"palette": ["This field is required."]}
    assert not BrandKit.objects.filter(name="No colours").exists()


@pytest.mark.parametrize("value", [1, 100, 35.5])
def test_palette_tolerance_within_range_is_saved_and_in_the_snapshot(api, manager, value):
    kit = kit_of(manager)

    response = api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"palette_max_delta_e": value}, format="json")

    assert response.status_code == 200
    assert response.json()["palette_max_delta_e"] == value
    kit.refresh_from_db()
    assert brand_kit_snapshot(kit)["palette_max_delta_e"] == value


def test_the_job_plan_carries_the_kits_palette_tolerance(manager):
    from studio.services import generation_plan

    kit = brand_kit_update(kit=kit_of(manager), palette_max_delta_e=12.5)
    preset = ScenePreset.objects.get(workspace=manager.workspace, slug="marble")

    plan = generation_plan(preset=preset, brand_kit=kit, prompt="", seed=1, variants=1, channels=["square-2048"])

    assert (plan["brand_kit"]["palette_max_delta_e"], plan["brand_kit"]["version"]) == (12.5, 2)


def test_banned_terms_are_trimmed_and_duplicates_dropped(api, manager):
    kit = kit_of(manager)

    response = api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"banned_terms": [" cheap ", "CHEAP", "knife", "ｃｈｅａｐ"]}, format="json")

    assert response.status_code == 200
    assert response.json()["banned_terms"] == ["cheap", "knife"]


def test_the_service_refuses_a_bad_tolerance_as_the_api_does(workspace):
    with pytest.raises(ValidationError) as info:
        brand_kit_create(workspace=workspace, name="Strict", palette=["#000000", "#ffffff"], palette_max_delta_e=float("nan"))

    assert info.value.message_dict == {"palette_max_delta_e": [DELTA_E.format("nan")]}
    assert not BrandKit.objects.filter(workspace=workspace).exists()


def test_the_database_refuses_a_tolerance_out_of_range_too(workspace):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        BrandKit.objects.create(workspace=workspace, name="Raw", palette=["#000000", "#ffffff"], palette_max_delta_e=500)


# Versions --------------------------------------------------------------------------------


def test_every_create_and_change_records_a_version_with_its_author(api, manager, user):
    created = api.post("/api/v1/brand-kits/", {"name": "Autumn", "palette": ["#AA3300", "#f0e0d0"]}, format="json").json()
    api.patch(f"/api/v1/brand-kits/{created['id']}/", {"palette": ["#aa3300", "#102030"], "banned_terms": ["cheap"]}, format="json")
    kit = BrandKit.objects.get(pk=created["id"])

    rows = list(BrandKitVersion.objects.filter(kit=kit).order_by("version"))

    assert [(r.version, r.created_by_id) for r in rows] == [(1, user.pk), (2, user.pk)]
    assert rows[0].snapshot["palette"] == ["#aa3300", "#f0e0d0"]
    assert rows[1].snapshot == brand_kit_snapshot(kit)


def test_the_history_says_what_changed(api, manager):
    kit = kit_of(manager)
    api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"palette": ["#112233", "#445566"], "banned_terms": ["cheap", "knife"]}, format="json")
    api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"banned_terms": ["knife"], "prompt_fragment": "warm light"}, format="json")

    versions = api.get(f"/api/v1/brand-kits/{kit.pk}/versions/").json()

    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [(c["field"], c["text"]) for c in versions[0]["changes"]] == [
        ("prompt_fragment", "(empty) → “warm light”"), ("banned_terms", "removed cheap"),
    ]
    assert [(c["field"], c["text"]) for c in versions[1]["changes"]] == [
        ("palette", "#efe9e1, #d9cbb8, #8a6f52 → #112233, #445566"), ("banned_terms", "added cheap, knife"),
    ]
    assert versions[2]["changes"] == [] and versions[2]["created_by"] is None


def test_a_refused_change_records_no_version(api, manager):
    kit = kit_of(manager)

    api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"palette": ["nope"]}, format="json")

    assert list(kit.versions.values_list("version", flat=True)) == [1]


def test_preset_versions_are_recorded_and_listed(api, manager, user):
    preset = ScenePreset.objects.get(workspace=manager.workspace, slug="wood")

    api.patch(f"/api/v1/presets/{preset.pk}/", {"prompt": "oak table", "steps": 30}, format="json")
    versions = api.get(f"/api/v1/presets/{preset.pk}/versions/").json()

    assert [(v["version"], v["created_by"]) for v in versions] == [(2, user.email), (1, None)]
    assert [(c["field"], c["text"]) for c in versions[0]["changes"]] == [
        ("prompt", "“product on a warm wooden table top” → “oak table”"), ("steps", "20 → 30"),
    ]
    assert versions[0]["snapshot"]["steps"] == 30


def test_another_workspaces_history_is_not_found(other_api, manager):
    kit = kit_of(manager)
    preset = ScenePreset.objects.filter(workspace=manager.workspace).first()

    assert other_api.get(f"/api/v1/brand-kits/{kit.pk}/versions/").status_code == 404
    assert other_api.get(f"/api/v1/presets/{preset.pk}/versions/").status_code == 404


def test_a_merchant_reads_kits_but_cannot_change_them(api, membership):
    from brand.services import workspace_defaults_ensure

    workspace_defaults_ensure(workspace=membership.workspace)
    kit = BrandKit.objects.get(workspace=membership.workspace)

    assert api.get(f"/api/v1/brand-kits/{kit.pk}/").status_code == 200
    response = api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"palette": ["#000000", "#111111"]}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Only owners and brand managers can change brand kits and presets."
    kit.refresh_from_db()
    assert (kit.palette[0], kit.version, kit.versions.count()) == ("#efe9e1", 1, 1)
