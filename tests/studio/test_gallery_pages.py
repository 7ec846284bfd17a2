"""The gallery, one image's page (recipe, review rounds, comments, history), the ZIP of a
selection and the audit trail, as a signed-in member sees them in the browser."""
import csv
import hashlib
import io
import re
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.models import Role
from studio import reviews
from studio.audit import audit_record
from studio.models import Asset, AssetComment, AuditEvent, AuditVerb, GenerationJob, Review, ReviewState
from studio.views.gallery import PAGE_SIZE
from tests.factories import MembershipFactory, ProductFactory

pytestmark = pytest.mark.django_db

FAILING = [
    {"name": "cutout", "status": "fail", "reason": "The cutout may be wrong.", "value": None, "limit": None, "title": "Cutout confidence"},
    {"name": "palette", "status": "fail", "reason": "Off palette.", "value": 31.0, "limit": 20.0, "title": "Brand palette"},
]


@pytest.fixture
def team(workspace, membership):
    return {
        Role.MERCHANT: membership.user,
        Role.OWNER: MembershipFactory(workspace=workspace, role=Role.OWNER).user,
        Role.BRAND_MANAGER: MembershipFactory(workspace=workspace, role=Role.BRAND_MANAGER).user,
    }


@pytest.fixture
def assets(api, workspace, upload_product_photo, django_capture_on_commit_callbacks):
    """Two real generated images of one finished job (the bundled model, as-photo channel),
    made from a photo of the product "Amber bottle"."""
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    photo = upload_product_photo((96, 72))
    photo.product = ProductFactory(workspace=workspace, title="Amber bottle")
    photo.save(update_fields=["product"])
    with django_capture_on_commit_callbacks(execute=True):
        job = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 2, "channels": ["as-photo"]}, format="json").json()
    found = list(Asset.objects.filter(job_id=job["id"]).order_by("variant"))
    assert len(found) == 2
    return found


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _signed_in_as(client, user):
    client.force_login(user)
    return client


def _card_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="card asset-card" data-asset-id="(\d+)"', html)]


def _clone(asset: Asset, variant: int) -> Asset:
    """Another image row of the same job (same file), for pages of many images."""
    fields = {f.attname: getattr(asset, f.attname) for f in Asset._meta.concrete_fields if f.name not in ("id", "created_at")}
    return Asset.objects.create(**{**fields, "variant": variant})


# Gallery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/gallery/", "/assets/1/", "/audit.csv"])
def test_the_pages_need_a_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", ["/gallery/download/", "/gallery/submit/", "/assets/1/comments/", "/assets/1/submit/", "/assets/1/regenerate/"])
def test_actions_take_only_posts(signed_in, url):
    assert signed_in.get(url).status_code == 405


def test_the_gallery_shows_each_image_with_state_gates_product_channel_and_a_labelled_checkbox(signed_in, assets):
    passing, failing = assets
    Asset.objects.filter(pk=failing.pk).update(gates=[*passing.gates[:1], *FAILING], gates_passed=False, review_state=ReviewState.IN_REVIEW)

    html = signed_in.get("/gallery/").content.decode()

    assert _card_ids(html) == [passing.pk, failing.pk]
    for asset in assets:
        assert f'<input type="checkbox" name="ids" value="{asset.pk}"> Select<span class="visually-hidden"> image {asset.pk}</span>' in html
        assert f'href="/assets/{asset.pk}/"' in html
        assert f'src="/api/v1/assets/{asset.pk}/preview/"' in html
    assert html.count(">All gates pass</span>") == 1
    assert html.count(">2 gates fail</span>") == 1
    assert html.count(">Not submitted</span>") == 1
    assert html.count(">In review</span>") == 1
    assert html.count(">Amber bottle</a>") == 2
    assert html.count("as-photo · 96×72 · variant") == 2
    assert '<a href="/gallery/" aria-current="page">Gallery</a>' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("review_state=in_review", [1]),
        ("review_state=approved", []),
        ("gates=fail", [1]),
        ("gates=pass", [0]),
        ("channel=as-photo", [0, 1]),
        ("channel=square-2048", []),
        ("product={ours}", [0, 1]),
        ("product={theirs}", []),
        ("preset={preset}", [0, 1]),
        ("preset={other_preset}", []),
        ("gates=pass&review_state=in_review", []),
    ],
)
def test_the_gallery_filters(signed_in, assets, workspace, query, expected):
    Asset.objects.filter(pk=assets[1].pk).update(gates=FAILING, gates_passed=False, review_state=ReviewState.IN_REVIEW)
    job = GenerationJob.objects.get(pk=assets[0].job_id)
    other_preset = ScenePreset.objects.filter(workspace=workspace).exclude(pk=job.preset_id).first()
    ids = {"ours": assets[0].photo.product_id, "theirs": ProductFactory(workspace=workspace).pk, "preset": job.preset_id, "other_preset": other_preset.pk}

    response = signed_in.get(f"/gallery/?{query.format(**ids)}")

    assert response.status_code == 200
    assert _card_ids(response.content.decode()) == [assets[i].pk for i in expected]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("product=abc", "'abc' is not an id: use a whole number."),
        ("preset=1.5", "'1.5' is not an id: use a whole number."),
        ("review_state=maybe", "Choose one of: generated, in_review, approved, changes_requested, rejected, published."),
        ("gates=sometimes", "Choose 'pass' or 'fail'."),
    ],
)
def test_a_bad_filter_is_a_message_on_the_page_not_a_500(signed_in, assets, query, message):
    response = signed_in.get(f"/gallery/?{query}")

    assert response.status_code == 400
    html = response.content.decode()
    assert f"These filters could not be used: {message} Showing every image instead." in html.replace("&#x27;", "'")
    assert _card_ids(html) == [a.pk for a in assets]


def test_the_gallery_pages_by_48_newest_job_first_with_a_fixed_number_of_queries(signed_in, assets, workspace, upload_product_photo, django_capture_on_commit_callbacks, api):
    with CaptureQueriesContext(connection) as few:
        signed_in.get("/gallery/")
    for variant in range(2, PAGE_SIZE):  # 48 images of the first job, then one newer
        _clone(assets[0], variant)
    photo = upload_product_photo((96, 72), seed=3)
    with django_capture_on_commit_callbacks(execute=True):
        newest = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 1, "channels": ["as-photo"]}, format="json").json()
    newest_asset = Asset.objects.get(job_id=newest["id"])

    with CaptureQueriesContext(connection) as many:
        first = signed_in.get("/gallery/").content.decode()
    second = signed_in.get("/gallery/?page=2").content.decode()

    assert len(many) == len(few)
    first_ids = _card_ids(first)
    assert len(first_ids) == PAGE_SIZE
    assert first_ids[0] == newest_asset.pk
    assert _card_ids(second) == [Asset.objects.get(job_id=assets[0].job_id, variant=PAGE_SIZE - 1).pk]
    assert "Page 1 of 2" in first and 'href="?page=2" rel="next"' in first
    assert "Page 2 of 2" in second and 'href="?page=1" rel="prev"' in second


def test_an_empty_gallery_says_what_to_do(signed_in):
    html = signed_in.get("/gallery/").content.decode()

    assert "No generated images yet." in html
    assert "Generate scenes from a photo's page" in html.replace("&#x27;", "'")
    assert 'id="gallery-selection"' not in html


def test_the_audit_trail_link_is_shown_to_deciders_only(client, assets, team):
    merchant = _signed_in_as(client, team[Role.MERCHANT]).get("/gallery/").content.decode()
    manager = _signed_in_as(client, team[Role.BRAND_MANAGER]).get("/gallery/").content.decode()

    assert 'href="/audit.csv"' not in merchant
    assert '<a href="/audit.csv" download>Download audit trail (CSV)</a>' in manager


# ZIP of a selection ----------------------------------------------------------------------


def test_the_zip_of_the_selection_holds_exactly_the_selected_files_and_both_manifests(signed_in, assets, workspace):
    chosen = assets[1]

    response = signed_in.post("/gallery/download/", {"ids": [str(chosen.pk)], "query": "channel=as-photo"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="vitrine-{workspace.slug}-1-image.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert sorted(names) == sorted([f"{chosen.photo.product.handle}/as-photo-v1-asset{chosen.pk}.png", "manifest.csv", "manifest.json"])
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [int(r["asset_id"]) for r in rows] == [chosen.pk]
    assert rows[0]["product_title"] == "Amber bottle"
    assert hashlib.sha256(archive.read(rows[0]["file"])).hexdigest() == chosen.sha256 == rows[0]["sha256"]
    assert '"asset_id": %d' % chosen.pk in archive.read("manifest.json").decode()


def test_a_zip_of_both_images_holds_both(signed_in, assets):
    response = signed_in.post("/gallery/download/", {"ids": [str(a.pk) for a in assets]})

    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert sorted(int(r["asset_id"]) for r in rows) == sorted(a.pk for a in assets)
    assert len([n for n in archive.namelist() if n.endswith(".png")]) == 2


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([], "Select one or more images first: tick the box on each card, or “Select all on this page”."),
        ([str(i) for i in range(1, 502)], "You selected 501 images; one ZIP holds at most 500. Narrow the gallery with the filters and download in several parts."),
        (["seven"], "Give asset ids as whole numbers."),
    ],
)
def test_a_zip_that_cannot_be_made_goes_back_to_the_gallery_with_why(signed_in, assets, ids, message):
    response = signed_in.post("/gallery/download/", {"ids": ids, "query": "gates=pass&page=1"})

    assert response.status_code == 302
    assert response["Location"] == "/gallery/?gates=pass&page=1"
    html = signed_in.get(response["Location"]).content.decode()
    assert f'<p class="notice notice-error" role="alert">{message}</p>' in html
    assert message not in signed_in.get("/gallery/").content.decode()  # said once


def test_a_zip_with_another_workspaces_image_is_a_404(signed_in, assets, other_membership):
    foreign = _clone(assets[0], 7)
    Asset.objects.filter(pk=foreign.pk).update(workspace=other_membership.workspace)

    response = signed_in.post("/gallery/download/", {"ids": [str(assets[0].pk), str(foreign.pk)]})

    assert response.status_code == 404
    assert response.get("Content-Type") != "application/zip"


# Submitting a selection ------------------------------------------------------------------


def test_submit_selected_says_how_many_went_and_why_each_other_did_not(signed_in, assets, team):
    reviews.review_submit(asset=assets[1], actor=team[Role.BRAND_MANAGER])

    response = signed_in.post("/gallery/submit/", {"ids": [str(a.pk) for a in assets], "query": ""})

    assert response.status_code == 302 and response["Location"] == "/gallery/"
    assert Asset.objects.get(pk=assets[0].pk).review_state == ReviewState.IN_REVIEW
    assert Review.objects.get(asset=assets[0], decision="").submitted_by == team[Role.MERCHANT]
    assert Review.objects.filter(asset=assets[1]).count() == 1
    html = signed_in.get("/gallery/").content.decode()
    assert "Submitted 1 image for review. The brand managers have been notified." in html
    assert "1 image was not submitted:" in html
    assert f'<li><a href="/assets/{assets[1].pk}/">Image {assets[1].pk} (Amber bottle, as-photo, variant 2)</a>: It is in review already.</li>' in html


def test_submit_selected_with_another_workspaces_image_submits_nothing(signed_in, assets, other_membership):
    foreign = _clone(assets[0], 9)
    Asset.objects.filter(pk=foreign.pk).update(workspace=other_membership.workspace)
    events = AuditEvent.objects.count()

    response = signed_in.post("/gallery/submit/", {"ids": [str(assets[0].pk), str(foreign.pk)]})

    assert response.status_code == 404
    assert not Review.objects.exists()
    assert AuditEvent.objects.count() == events
    assert set(Asset.objects.values_list("review_state", flat=True)) == {ReviewState.GENERATED}


# One image -------------------------------------------------------------------------------


def test_the_asset_page_shows_the_lock_gates_recipe_and_actions(signed_in, assets):
    asset = assets[0]
    lock = next(g for g in asset.gates if g["name"] == "lock")
    plan = asset.recipe["plan"]

    html = signed_in.get(f"/assets/{asset.pk}/").content.decode()

    assert f'<span class="badge lock-badge badge-gate-pass" data-status="pass">{lock["reason"]}</span>'.replace("'", "&#x27;") in html
    assert "pixels verified" not in html
    assert html.count('data-gate="') == len(asset.gates) == 7
    assert f"<dt>Model</dt><dd>{plan['model']}</dd>" in html
    assert f"<dt>Preset</dt><dd>{plan['preset']['name']} (version {plan['preset']['version']})</dd>" in html
    assert f"<dt>Brand kit</dt><dd>{plan['brand_kit']['name']} (version {plan['brand_kit']['version']})</dd>" in html
    assert f"<dt>Seed</dt><dd>{asset.seed}</dd>" in html
    assert "<dt>Cutout</dt><dd>revision 1</dd>" in html
    assert f'action="/assets/{asset.pk}/submit/"' in html
    assert f'action="/assets/{asset.pk}/regenerate/"' in html
    assert f'href="/api/v1/assets/{asset.pk}/file/" download>Download PNG</a>' in html
    assert "The new image needs its own review; this one keeps its state." in html
    assert 'class="compare-range"' in html


def test_a_resized_products_lock_badge_says_it_was_resized(signed_in, assets):
    asset = assets[0]
    gates = [{**g, "reason": "All 1,234 product pixels equal your photo resized 0.50×; nothing else changed them."} if g["name"] == "lock" else g for g in asset.gates]
    Asset.objects.filter(pk=asset.pk).update(gates=gates)

    html = signed_in.get(f"/assets/{asset.pk}/").content.decode()

    assert 'data-status="pass">All 1,234 product pixels equal your photo resized 0.50×; nothing else changed them.</span>' in html


def test_another_workspaces_asset_page_and_actions_are_404_and_change_nothing(client, assets, other_membership):
    outsider = _signed_in_as(client, other_membership.user)
    asset = assets[0]
    jobs = GenerationJob.objects.count()

    assert outsider.get(f"/assets/{asset.pk}/").status_code == 404
    assert outsider.post(f"/assets/{asset.pk}/comments/", {"body": "Mine now"}).status_code == 404
    assert outsider.post(f"/assets/{asset.pk}/submit/").status_code == 404
    assert outsider.post(f"/assets/{asset.pk}/regenerate/").status_code == 404
    assert not AssetComment.objects.exists()
    assert not Review.objects.exists()
    assert GenerationJob.objects.count() == jobs


def test_submitting_from_the_asset_page_and_a_second_time(signed_in, assets, team):
    asset = assets[0]

    first = signed_in.post(f"/assets/{asset.pk}/submit/")
    page = signed_in.get(first["Location"]).content.decode()
    second = signed_in.post(f"/assets/{asset.pk}/submit/")
    again = signed_in.get(second["Location"]).content.decode()

    assert first["Location"] == f"/assets/{asset.pk}/"
    assert "Submitted for review. The brand managers have been notified." in page
    assert f'action="/assets/{asset.pk}/submit/"' not in page  # nothing left to submit
    assert '<td>Awaiting a decision</td>' in page
    assert '<p class="notice notice-error" role="alert">It is in review already.</p>' in again
    assert Review.objects.filter(asset=asset).count() == 1
    assert Review.objects.get(asset=asset).submitted_by == team[Role.MERCHANT]


def test_regenerating_from_the_asset_page_queues_a_new_job_and_says_it_needs_its_own_review(signed_in, assets):
    asset = assets[0]

    response = signed_in.post(f"/assets/{asset.pk}/regenerate/")

    job = GenerationJob.objects.latest("pk")
    assert job.plan["regenerated_from"] == asset.pk
    assert job.plan["channels"] == [asset.channel] and job.plan["keep_variants"] == [asset.variant]
    html = signed_in.get(response["Location"]).content.decode()
    assert f'A new image is being made from this recipe: <a href="/jobs/{job.pk}/">follow its progress</a>. It is a new image and needs its own review; this one keeps its state.' in html
    assert Asset.objects.get(pk=asset.pk).review_state == ReviewState.GENERATED
    # The message belongs to this image's page only.
    assert "A new image is being made" not in signed_in.get(f"/assets/{asset.pk}/").content.decode()


def test_comments_are_added_from_the_asset_page(signed_in, assets, team):
    asset = assets[0]

    response = signed_in.post(f"/assets/{asset.pk}/comments/", {"body": "  Is the shadow too strong?  "})

    assert response.status_code == 302
    assert response["Location"] == f"/assets/{asset.pk}/#comments"
    comment = AssetComment.objects.get(asset=asset)
    assert (comment.body, comment.author) == ("Is the shadow too strong?", team[Role.MERCHANT])
    html = signed_in.get(f"/assets/{asset.pk}/").content.decode()
    assert f"{team[Role.MERCHANT].email} · " in html
    assert "<p>Is the shadow too strong?</p>" in html


@pytest.mark.parametrize(
    ("body", "message"),
    [("   ", "Write a comment first."), ("x" * 4001, "Keep the comment under 4,000 characters (this one has 4,001).")],
)
def test_a_refused_comment_keeps_the_words_and_says_why(signed_in, assets, body, message):
    asset = assets[0]
    events = AuditEvent.objects.count()

    response = signed_in.post(f"/assets/{asset.pk}/comments/", {"body": body})

    assert response.status_code == 400
    html = response.content.decode()
    assert f'<p class="error" id="comment-error" role="alert">{message}</p>' in html
    assert f">{body}</textarea>" in html
    assert not AssetComment.objects.exists()
    assert AuditEvent.objects.count() == events


def test_the_history_table_shows_every_event_in_order_with_who_did_it(signed_in, assets, team):
    asset = assets[0]
    merchant, manager = team[Role.MERCHANT], team[Role.BRAND_MANAGER]
    reviews.review_submit(asset=asset, actor=merchant)
    reviews.asset_comment_add(asset=asset, actor=merchant, body="Is the shadow too strong?")
    reviews.review_approve(asset=asset, actor=manager, comment="Fine as it is")

    html = signed_in.get(f"/assets/{asset.pk}/").content.decode()

    history = html.split('<table class="asset-history">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-verb="([^"]+)">\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>', history)
    assert [(verb, who, what) for verb, who, what, _ in rows] == [
        ("photo.uploaded", "Not recorded", "Photo uploaded"),
        ("cutout.made", "Vitrine (automatic)", "Cutout made"),
        ("asset.generated", merchant.email, "Image generated"),
        ("review.submitted", merchant.email, "Submitted for review"),
        ("review.commented", merchant.email, "Commented"),
        ("review.approved", manager.email, "Approved"),
    ]
    details = [d.replace("&#x27;", "'") for *_, d in rows]
    assert details[0].startswith("box.png (")
    assert details[1].startswith(f"Revision 1, by {asset.cutout.backend}")
    assert details[2].startswith(f"Model {asset.recipe['plan']['model']}, preset ")
    assert f"seed {asset.seed}, channel as-photo, cutout revision 1" in details[2]
    assert details[4] == "“Is the shadow too strong?”"
    assert details[5] == f"“Fine as it is”; pinned sha256 {asset.sha256[:12]}…, cutout revision 1"
    rounds = html.split('<table class="review-rounds">', 1)[1].split("</table>", 1)[0]
    assert f"<td>{merchant.email}</td>" in rounds and f"<td>{manager.email}</td>" in rounds
    assert f"<code>{asset.sha256}</code>" in rounds
    assert "Fine as it is" in rounds


# Audit trail -----------------------------------------------------------------------------


def test_a_merchant_cannot_download_the_audit_trail(signed_in, assets):
    response = signed_in.get("/audit.csv")

    assert response.status_code == 403
    assert b"Only a brand manager or an owner" in response.content


@pytest.mark.parametrize("role", [Role.BRAND_MANAGER, Role.OWNER])
def test_deciders_download_the_whole_audit_trail_as_csv(client, assets, team, workspace, other_membership, role):
    reviews.review_submit(asset=assets[0], actor=team[Role.MERCHANT])
    audit_record(workspace_id=other_membership.workspace_id, verb=AuditVerb.REVIEW_COMMENTED, detail={"comment": "another shop's note"})

    response = _signed_in_as(client, team[role]).get("/audit.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="vitrine-{workspace.slug}-audit.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "actor", "action", "photo", "cutout", "asset", "detail"]
    assert len(rows) - 1 == AuditEvent.objects.filter(workspace=workspace).count()
    assert rows[-1][1:3] == [team[Role.MERCHANT].email, "Submitted for review"]
    assert not any("another shop" in row[6] for row in rows[1:])
