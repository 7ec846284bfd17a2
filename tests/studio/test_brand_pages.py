"""The brand pages: kits and presets for brand managers and owners (merchants get 403), the
palette pickers, logo palette extraction, LoRA uploads, validation next to the field, the
version history; and the compose page's truth about which models read the prompt."""
import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from brand import services
from brand.models import BrandKit, BrandKitVersion, LoraAdapter, PresetVersion, ScenePreset
from brand.services import preset_create, workspace_defaults_ensure
from tests.brand.conftest import manager, models_root  # noqa: F401 (fixtures)
from tests.brand.test_loras import safetensors_bytes
from tests.conftest import stored_files
from tests.images import image_bytes

pytestmark = pytest.mark.django_db

TOLERANCE_ERROR = (
    "The palette tolerance is a colour difference (CIEDE2000) from 1 (strict) to 100 (anything goes); 500 is not in that range."
    " 20 suits most brands."
)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def kit(manager):
    return BrandKit.objects.get(workspace=manager.workspace)


def kit_form(kit: BrandKit, **changes) -> dict:
    """The kit page's form as the browser posts it, with `changes`."""
    data = {
        "name": kit.name, "palette_0": kit.palette[0], "palette_1": kit.palette[1], "use_accent": "on",
        "palette_2": kit.palette[2] if len(kit.palette) == 3 else kit.palette[1], "prompt_fragment": kit.prompt_fragment,
        "default_negative_prompt": kit.default_negative_prompt, "banned_terms": "\n".join(kit.banned_terms),
        "default_channels": kit.default_channels, "palette_max_delta_e": str(kit.palette_max_delta_e), "is_default": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# Who may open the pages ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/brand-kits/", "/brand-kits/new/", "/presets/new/"])
def test_brand_pages_require_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", ["/brand-kits/", "/brand-kits/{kit}/", "/brand-kits/new/", "/presets/new/", "/presets/{preset}/"])
def test_a_merchant_gets_403_with_the_reason(signed_in, workspace, url):
    workspace_defaults_ensure(workspace=workspace)
    kit = BrandKit.objects.get(workspace=workspace)
    preset = ScenePreset.objects.filter(workspace=workspace).first()

    response = signed_in.get(url.format(kit=kit.pk, preset=preset.pk))

    assert response.status_code == 403
    assert response.content == b"Only a brand manager or an owner of this workspace can open this page."


def test_a_merchant_cannot_change_a_kit_through_the_page_or_the_api(signed_in, api, workspace):
    workspace_defaults_ensure(workspace=workspace)
    kit = BrandKit.objects.get(workspace=workspace)

    page = signed_in.post(f"/brand-kits/{kit.pk}/", kit_form(kit, palette_0="#000000"))
    logo = signed_in.post(f"/brand-kits/{kit.pk}/logo/", {"file": SimpleUploadedFile("l.png", image_bytes("PNG"))})
    over_api = api.patch(f"/api/v1/brand-kits/{kit.pk}/", {"palette": ["#000000", "#111111"]}, format="json")

    assert (page.status_code, logo.status_code, over_api.status_code) == (403, 403, 403)
    kit.refresh_from_db()
    assert (kit.palette[0], kit.version, kit.logo.name, kit.versions.count()) == ("#efe9e1", 1, "", 1)
    assert stored_files() == sorted(n for n in stored_files() if "/presets/" in n)  # only the default thumbnails


def test_the_nav_shows_brand_kits_to_managers_only(signed_in, membership):
    workspace_defaults_ensure(workspace=membership.workspace)
    link = '<a href="/brand-kits/" >Brand kits</a>'

    as_merchant = signed_in.get("/products/").content.decode()
    membership.role = "brand_manager"
    membership.save()
    as_manager = signed_in.get("/products/").content.decode()
    on_the_page = signed_in.get("/brand-kits/").content.decode()

    assert "Brand kits</a>" not in as_merchant
    assert link in as_manager
    assert '<a href="/brand-kits/" aria-current="page">Brand kits</a>' in on_the_page


# The list and the kit page --------------------------------------------------------------------


def test_the_list_shows_kits_and_presets(signed_in, kit):
    html = signed_in.get("/brand-kits/").content.decode()

    assert f'<a href="/brand-kits/{kit.pk}/">House style</a> <span class="badge">Default</span>' in html
    assert html.count('class="preset-card"') == 7
    assert html.count('<span class="badge">Ignores free text</span>') == 7
    assert "backdrop-mini · marble · v1" in html


def test_the_kit_page_has_labelled_colour_pickers_with_their_hex(signed_in, kit):
    html = signed_in.get(f"/brand-kits/{kit.pk}/").content.decode()

    for index, (label, colour) in enumerate(zip(("Backdrop", "Surface", "Accent"), kit.palette)):
        assert f'<label for="id_palette_{index}">{label}</label>' in html
        assert f'<input type="color" name="palette_{index}" value="{colour}"' in html
        assert f'data-hex-of="id_palette_{index}">{colour}</output>' in html
    for field in ("id_name", "id_prompt_fragment", "id_default_negative_prompt", "id_banned_terms", "id_palette_max_delta_e", "id_file"):
        assert f'<label for="{field}">' in html
    assert '<input type="checkbox" name="default_channels" value="square-2048"' in html
    assert "checked" in html.split('value="square-2048"')[1].split(">")[0]


def test_saving_the_kit_changes_it_and_records_a_version(signed_in, kit, user):
    form = kit_form(
        kit, palette_0="#123456", use_accent=None, banned_terms="cheap\n\n  knife  \n", default_channels=["portrait-4x5", "square-2048"],
        palette_max_delta_e="12.5", prompt_fragment="warm daylight",
    )

    response = signed_in.post(f"/brand-kits/{kit.pk}/", form)

    assert response.status_code == 302
    assert response["Location"] == f"/brand-kits/{kit.pk}/"
    kit.refresh_from_db()
    assert (kit.palette, kit.banned_terms, kit.default_channels, kit.palette_max_delta_e, kit.prompt_fragment, kit.version) == (
        ["#123456", "#d9cbb8"], ["cheap", "knife"], ["portrait-4x5", "square-2048"], 12.5, "warm daylight", 2,
    )
    row = BrandKitVersion.objects.get(kit=kit, version=2)
    assert row.created_by == user and row.snapshot["palette"] == ["#123456", "#d9cbb8"]
    html = signed_in.get(f"/brand-kits/{kit.pk}/").content.decode()
    assert "Saved as version 2." in html
    assert "#efe9e1, #d9cbb8, #8a6f52 →" in html
    assert "<strong>Banned terms:</strong>\n              added cheap, knife" in html
    assert "<strong>Palette tolerance:</strong>\n              20 → 12.5" in html
    assert f"<td>{user.email}</td>" in html


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"palette_max_delta_e": "500"}, "palette_max_delta_e", TOLERANCE_ERROR),
        ({"banned_terms": "x" * 101}, "banned_terms", f"Each banned term is at most 100 characters; &#x27;{'x' * 40}…&#x27; has 101."),
        ({"palette_0": "red"}, "palette_0", "Choose a colour (#rrggbb)."),
        ({"palette_2": ""}, "palette_2", "Choose the accent colour, or untick “Use an accent colour”."),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_a_refused_value_is_shown_next_to_its_field_and_nothing_changes(signed_in, kit, changes, field, message):
    response = signed_in.post(f"/brand-kits/{kit.pk}/", kit_form(kit, **changes))

    assert response.status_code == 400
    assert f'<p class="error" id="id_{field}_error">{message}</p>' in response.content.decode()
    kit.refresh_from_db()
    assert (kit.version, kit.versions.count()) == (1, 1)


def test_a_new_kit_is_created_from_the_page(signed_in, manager, user):
    response = signed_in.post("/brand-kits/new/", {
        "name": "Autumn", "palette_0": "#aa3300", "palette_1": "#f0e0d0", "palette_2": "#000000", "palette_max_delta_e": "20",
        "default_channels": ["square-2048"],
    })

    kit = BrandKit.objects.get(workspace=manager.workspace, name="Autumn")
    assert response.status_code == 302 and response["Location"] == f"/brand-kits/{kit.pk}/"
    assert (kit.palette, kit.is_default, kit.version) == (["#aa3300", "#f0e0d0"], False, 1)
    assert kit.versions.get().created_by == user


def test_a_duplicate_kit_name_is_shown_on_the_name(signed_in, manager):
    response = signed_in.post("/brand-kits/new/", {"name": "House style", "palette_0": "#aa3300", "palette_1": "#f0e0d0", "palette_max_delta_e": "20"})

    assert response.status_code == 400
    assert '<p class="error" id="id_name_error">A brand kit called &#x27;House style&#x27; already exists.</p>' in response.content.decode()
    assert BrandKit.objects.filter(workspace=manager.workspace).count() == 1


@pytest.mark.parametrize("url", ["/brand-kits/{kit}/", "/brand-kits/{kit}/logo/", "/brand-kits/{kit}/loras/", "/presets/{preset}/"])
def test_another_workspaces_kit_or_preset_is_not_found(signed_in, manager, other_membership, url):
    workspace_defaults_ensure(workspace=other_membership.workspace)
    foreign_kit = BrandKit.objects.get(workspace=other_membership.workspace)
    foreign_preset = ScenePreset.objects.filter(workspace=other_membership.workspace).first()
    target = url.format(kit=foreign_kit.pk, preset=foreign_preset.pk)

    if not target.endswith(("logo/", "loras/")):
        assert signed_in.get(target).status_code == 404
    response = signed_in.post(target, kit_form(foreign_kit, palette_0="#000000"))

    assert response.status_code == 404
    foreign_kit.refresh_from_db()
    foreign_preset.refresh_from_db()
    assert (foreign_kit.palette[0], foreign_kit.version, foreign_preset.version) == ("#efe9e1", 1, 1)


# Logo → palette --------------------------------------------------------------------------------


def test_a_logo_is_stored_and_its_three_main_colours_proposed(signed_in, kit):
    logo = np.zeros((50, 100, 3), np.uint8)
    logo[:, :60] = (200, 16, 46)
    logo[:, 60:90] = (242, 242, 242)
    logo[:, 90:] = (26, 26, 26)

    response = signed_in.post(f"/brand-kits/{kit.pk}/logo/", {"file": SimpleUploadedFile("logo.png", png(logo))})

    assert response.status_code == 302
    assert response["Location"] == f"/brand-kits/{kit.pk}/?palette=logo"
    kit.refresh_from_db()
    assert kit.logo.name.startswith(f"brand/{kit.workspace_id}/{kit.pk}/logo-") and kit.version == 2
    assert kit.palette == ["#efe9e1", "#d9cbb8", "#8a6f52"]  # proposed, not applied
    html = signed_in.get(response["Location"]).content.decode()
    assert '<input type="color" name="palette_0" value="#c8102e"' in html
    assert '<input type="color" name="palette_1" value="#f2f2f2"' in html
    assert '<input type="color" name="palette_2" value="#1a1a1a"' in html
    assert "#c8102e (60 % of the logo)" in html and "#1a1a1a (10 % of the logo)" in html
    assert f'src="/api/v1/brand-kits/{kit.pk}/logo/file/?v=2"' in html
    assert signed_in.get(f"/api/v1/brand-kits/{kit.pk}/logo/file/").status_code == 200


def test_a_transparent_logos_background_is_left_out(signed_in, kit):
    logo = np.zeros((100, 100, 4), np.uint8)  # transparent black everywhere
    logo[25:75, 25:55] = (20, 40, 110, 255)
    logo[25:75, 55:75] = (230, 180, 30, 255)

    signed_in.post(f"/brand-kits/{kit.pk}/logo/", {"file": SimpleUploadedFile("logo.png", png(logo))})
    html = signed_in.get(f"/brand-kits/{kit.pk}/?palette=logo").content.decode()

    assert "#14286e (60 % of the logo), " in html and "#e6b41e (40 % of the logo)." in html
    assert '<input type="color" name="palette_0" value="#14286e"' in html
    assert '<input type="color" name="palette_1" value="#e6b41e"' in html
    assert "#000000" not in html.split('id="palette-proposal"')[1].split("</div>")[0]


def test_the_logo_upload_over_the_api_returns_the_proposal(api, kit):
    logo = np.zeros((10, 10, 3), np.uint8)
    logo[:, :7] = (255, 255, 255)
    logo[:, 7:] = (0, 80, 160)

    response = api.post(f"/api/v1/brand-kits/{kit.pk}/logo/", {"file": SimpleUploadedFile("logo.png", png(logo))}, format="multipart")

    assert response.status_code == 201
    assert response.json()["proposed_palette"] == [{"colour": "#ffffff", "share": 0.7}, {"colour": "#0050a0", "share": 0.3}]
    assert response.json()["kit"]["logo"] == f"/api/v1/brand-kits/{kit.pk}/logo/file/"


def test_a_logo_that_is_not_an_image_is_refused_next_to_the_field(signed_in, kit):
    response = signed_in.post(f"/brand-kits/{kit.pk}/logo/", {"file": SimpleUploadedFile("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")})

    assert response.status_code == 400
    assert '<p class="error" id="id_file_error">This file is not a JPEG, PNG, WebP, HEIC or AVIF image.</p>' in response.content.decode()
    kit.refresh_from_db()
    assert (kit.logo.name, kit.version) == ("", 1)
    assert [n for n in stored_files() if "logo" in n] == []


def test_a_logo_over_the_size_cap_is_refused(signed_in, kit, monkeypatch):
    monkeypatch.setattr(services, "LOGO_MAX_BYTES", 100 * 1024)
    data = png(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))

    response = signed_in.post(f"/brand-kits/{kit.pk}/logo/", {"file": SimpleUploadedFile("big.png", data)})

    assert response.status_code == 400
    assert f'<p class="error" id="id_file_error">This file is {len(data):,} bytes; the limit is 102,400 bytes (0.1 MB).</p>' in response.content.decode()
    kit.refresh_from_db()
    assert kit.logo.name == ""
    assert [n for n in stored_files() if "logo" in n] == []


def test_a_new_logo_replaces_the_old_file(signed_in, kit, django_capture_on_commit_callbacks):
    red, blue = np.full((8, 8, 3), (255, 0, 0), np.uint8), np.full((8, 8, 3), (0, 0, 255), np.uint8)
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(f"/brand-kits/{kit.pk}/logo/", {"file": SimpleUploadedFile("a.png", png(red))})
    first = BrandKit.objects.get(pk=kit.pk).logo.name
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(f"/brand-kits/{kit.pk}/logo/", {"file": SimpleUploadedFile("b.png", png(blue))})

    kit.refresh_from_db()
    assert [n for n in stored_files() if "logo" in n] == [kit.logo.name] != [first]
    assert [v.snapshot["logo"] for v in kit.versions.order_by("version")] == ["", first, kit.logo.name]
    html = signed_in.get(f"/brand-kits/{kit.pk}/").content.decode()
    assert "<strong>Logo:</strong>\n              new logo" in html


# LoRAs -------------------------------------------------------------------------------------


def test_a_lora_is_uploaded_from_the_page(signed_in, kit):
    response = signed_in.post(f"/brand-kits/{kit.pk}/loras/", {"name": "house-look", "weight": "0.75", "file": SimpleUploadedFile("a.safetensors", safetensors_bytes())})

    assert response.status_code == 302
    adapter = LoraAdapter.objects.get(brand_kit=kit)
    assert (adapter.name, adapter.weight) == ("house-look", 0.75)
    html = signed_in.get(f"/brand-kits/{kit.pk}/").content.decode()
    assert "LoRA “house-look” added; the kit is now version 2." in html
    assert "<td>house-look</td><td>0.75</td>" in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"definitely not weights", "This is not a LoRA adapter file (.safetensors)."),
        (safetensors_bytes(floats=1024 * 1024), "This file is 4,194,440 bytes; the limit for a LoRA adapter is 1,048,576 bytes (1 MB)."),
    ],
)
def test_a_bad_or_too_large_lora_is_refused_on_the_page(signed_in, kit, monkeypatch, settings, data, message):
    monkeypatch.setattr(services, "LORA_MAX_BYTES", 1024 * 1024)
    # Room in the request's body cap (config/middleware.py) so the service's own rule answers.
    settings.VITRINE_UPLOAD_OVERHEAD_BYTES = 8 * 1024 * 1024

    response = signed_in.post(f"/brand-kits/{kit.pk}/loras/", {"name": "look", "weight": "1", "file": SimpleUploadedFile("a.safetensors", data)})

    assert response.status_code == 400
    assert f'<p class="error" id="id_file_error">{message}</p>' in response.content.decode()
    assert not LoraAdapter.objects.exists()
    assert [n for n in stored_files() if "loras" in n] == []
    kit.refresh_from_db()
    assert kit.version == 1


# Presets ---------------------------------------------------------------------------------------


def test_a_preset_is_created_and_changed_from_the_pages(signed_in, manager, user):
    response = signed_in.post("/presets/new/", {
        "name": "Kitchen", "model": "sd-inpaint", "style": "", "prompt": "a kitchen counter", "negative_prompt": "",
        "scheduler": "dpmpp", "steps": "25", "guidance": "6.5", "strength": "0.9",
    })

    preset = ScenePreset.objects.get(workspace=manager.workspace, slug="kitchen")
    assert response.status_code == 302 and response["Location"] == f"/presets/{preset.pk}/"
    assert (preset.model, preset.scheduler, preset.steps, preset.guidance, preset.strength) == ("sd-inpaint", "dpmpp", 25, 6.5, 0.9)

    edit = signed_in.post(f"/presets/{preset.pk}/", {
        "name": "Kitchen", "slug": "kitchen", "model": "sd-inpaint", "style": "", "prompt": "a marble kitchen counter",
        "negative_prompt": "", "scheduler": "dpmpp", "steps": "25", "guidance": "6.5", "strength": "0.9",
    })

    assert edit.status_code == 302
    assert [(v.version, v.created_by_id) for v in PresetVersion.objects.filter(preset=preset).order_by("version")] == [(1, user.pk), (2, user.pk)]
    html = signed_in.get(f"/presets/{preset.pk}/").content.decode()
    assert "<strong>Prompt:</strong>\n              “a kitchen counter” → “a marble kitchen counter”" in html


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"model": "flux-fill", "scheduler": "euler", "guidance": "7"}, "guidance", (
            "FLUX.1 Fill uses embedded guidance between 10 and 100 (30 is typical); 7 is outside that range. "
            "Stable Diffusion&#x27;s classifier-free guidance values (around 7) do not carry over."
        )),
        ({"strength": "-5"}, "strength", "backdrop-mini always paints the whole scene; leave strength at 1 (it is -5)."),
        ({"guidance": "1e308"}, "guidance", "backdrop-mini does not use guidance; leave it at 1 (it is 1e+308)."),
        ({"scheduler": "euler"}, "scheduler", "backdrop-mini can only sample with ddim; choose it instead of euler."),
        ({"style": "beach"}, "style", "Select a valid choice. beach is not one of the available choices."),
        ({"model": "dall-e"}, "model", "Select a valid choice. dall-e is not one of the available choices."),
    ],
)
def test_preset_errors_are_shown_next_to_the_field(signed_in, manager, changes, field, message):
    form = {"name": "Probe", "model": "backdrop-mini", "style": "marble", "prompt": "", "negative_prompt": "",
            "scheduler": "ddim", "steps": "20", "guidance": "1", "strength": "1", **changes}

    response = signed_in.post("/presets/new/", form)

    assert response.status_code == 400
    assert f'<p class="error" id="id_{field}_error">{message}</p>' in response.content.decode()
    assert not ScenePreset.objects.filter(slug="probe").exists()


def test_the_preset_page_offers_only_installed_models(signed_in, manager, models_root):
    import shutil

    shutil.rmtree(models_root / "flux-fill")

    html = signed_in.get("/presets/new/").content.decode()

    assert '<option value="sd-inpaint">' in html
    assert 'value="flux-fill"' not in html


# Compose: the truth about prompts ----------------------------------------------------------------


def test_compose_says_when_the_chosen_model_ignores_free_text(signed_in, manager, upload_product_photo):
    photo = upload_product_photo(size=(64, 48))

    html = signed_in.get(f"/photos/{photo.pk}/compose/").content.decode()

    assert (
        '<p class="prompt-hint" id="prompt-hint" aria-live="polite">'
        "backdrop-mini ignores free text: it follows the preset's style and the brand palette.</p>"
    ) in html
    assert 'aria-describedby="prompt-hint"' in html


def test_compose_shows_the_prompt_plainly_for_a_model_that_reads_it(signed_in, manager, upload_product_photo):
    photo = upload_product_photo(size=(64, 48))
    sd = preset_create(workspace=manager.workspace, name="Kitchen", model="sd-inpaint", is_default=True)

    html = signed_in.get(f"/photos/{photo.pk}/compose/").content.decode()

    assert '<p class="prompt-hint" id="prompt-hint" aria-live="polite"></p>' in html
    assert f'value="{sd.pk}" checked data-prompt-note="">' in html
    # the other presets carry their note for when they are chosen
    assert html.count("data-prompt-note=\"backdrop-mini ignores free text") == 7
