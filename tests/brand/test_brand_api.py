"""Brand kits and presets over the API: versions, validation, roles, tenant isolation."""
import pytest

from brand.models import BrandKit, ScenePreset

pytestmark = pytest.mark.django_db


def test_defaults_give_every_workspace_a_kit_and_the_bundled_presets(api, manager):
    kits = api.get("/api/v1/brand-kits/").json()["results"]
    presets = api.get("/api/v1/presets/").json()["results"]

    assert [(k["name"], k["is_default"], k["version"]) for k in kits] == [("House style", True, 1)]
    assert sorted(p["style"] for p in presets) == ["concrete", "linen", "marble", "pastel-sweep", "studio-colour", "studio-white", "wood"]
    assert [p["slug"] for p in presets if p["is_default"]] == ["studio-white"]
    assert all(p["thumbnail"] for p in presets)


def test_each_change_bumps_the_version(api, manager):
    kit = BrandKit.objects.get(workspace=manager.workspace)

    first = api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"palette": ["#112233", "#445566"]}, format="json")
    second = api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"banned_terms": ["cheap"]}, format="json")

    assert (first.json()["version"], second.json()["version"]) == (2, 3)
    assert second.json()["palette"] == ["#112233", "#445566"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"palette": ["red", "blue"]}, 'Give 2 or 3 colours as "#rrggbb" (backdrop, surface, accent).'),
        ({"default_channels": ["billboard"]}, "Unknown channel(s): billboard."),
    ],
)
def test_bad_brand_kit_values_are_refused(api, manager, payload, message):
    kit = BrandKit.objects.get(workspace=manager.workspace)

    response = api.patch(f"/api/v1/brand-kits/{kit.pk}/", payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)
    kit.refresh_from_db()
    assert kit.version == 1


def test_preset_with_an_unknown_model_is_refused(api, manager):
    response = api.post("/api/v1/presets/", {"name": "Dream", "model": "dall-e"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Unknown model 'dall-e'.")


def test_making_a_preset_the_default_unsets_the_old_one(api, manager):
    created = api.post("/api/v1/presets/", {"name": "Tiny SD", "model": "sd-inpaint", "is_default": True}, format="json")

    assert created.status_code == 201
    assert list(ScenePreset.objects.filter(workspace=manager.workspace, is_default=True).values_list("slug", flat=True)) == ["tiny-sd"]


@pytest.mark.parametrize("url", ["/api/v1/brand-kits/{kit}/", "/api/v1/presets/{preset}/"])
@pytest.mark.parametrize("method", ["get", "patch"])
def test_another_workspaces_kits_and_presets_are_not_found(other_api, manager, url, method):
    kit = BrandKit.objects.get(workspace=manager.workspace)
    preset = ScenePreset.objects.filter(workspace=manager.workspace).first()

    response = getattr(other_api, method)(url.format(kit=kit.pk, preset=preset.pk), {"name": "Taken"}, format="json")

    assert response.status_code == 404
    kit.refresh_from_db()
    preset.refresh_from_db()
    assert (kit.name, kit.version, preset.version) == ("House style", 1, 1)


def test_lists_show_only_my_workspace(other_api, manager):
    assert other_api.get("/api/v1/brand-kits/").json()["count"] == 0
    assert other_api.get("/api/v1/presets/").json()["count"] == 0
