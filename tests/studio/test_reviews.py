"""Review and approval: who may move an asset from which state, pinned approvals, QA gates
and their overrides, bulk actions, notifications, history."""
import csv
import hashlib
import io
import json
import zipfile

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from brand.models import ScenePreset
from brand.services import workspace_defaults_ensure
from catalog.models import Role
from studio import reviews
from studio.models import Asset, AuditEvent, GenerationJob, AuditVerb, Notification, Review, ReviewState
from tests.conftest import _client_for
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

ROLES = (Role.OWNER, Role.BRAND_MANAGER, Role.MERCHANT)
STATES = (ReviewState.GENERATED, ReviewState.IN_REVIEW, ReviewState.APPROVED, ReviewState.CHANGES_REQUESTED, ReviewState.REJECTED)
FAILING_GATE = {"name": "cutout", "status": "fail", "reason": "The cutout may be wrong.", "value": None, "limit": None}


@pytest.fixture
def team(workspace, membership):
    """The workspace's people: the merchant of the `workspace` fixture, an owner and two brand managers."""
    return {
        Role.MERCHANT: membership.user,
        Role.OWNER: MembershipFactory(workspace=workspace, role=Role.OWNER).user,
        Role.BRAND_MANAGER: MembershipFactory(workspace=workspace, role=Role.BRAND_MANAGER).user,
        "second_manager": MembershipFactory(workspace=workspace, role=Role.BRAND_MANAGER).user,
    }


_MADE: dict = {}


def _generate(api, photo, capture) -> list[Asset]:
    with capture(execute=True):
        job = api.post("/api/v1/jobs/", {"photo": photo.pk, "variants": 2, "channels": ["as-photo"]}, format="json").json()
    made = list(Asset.objects.filter(job_id=job["id"]).order_by("variant"))
    assert len(made) == 2
    return made


@pytest.fixture
def generated(api, workspace, upload_product_photo, django_capture_on_commit_callbacks):
    """Two images generated for real, through the API and the task, with their audit events."""
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    return _generate(api, upload_product_photo((96, 72)), django_capture_on_commit_callbacks)


@pytest.fixture
def assets(api, user, workspace, upload_product_photo, django_capture_on_commit_callbacks):
    """Two real generated images of one finished job (the bundled model, as-photo channel).

    The first test that asks generates them for real; later tests store the same files and
    rows again for a fresh photo and job (the review rules do not depend on the pixels, and
    generating for each of ~90 tests would take minutes)."""
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    photo = upload_product_photo((96, 72))
    if not _MADE:
        made = _generate(api, photo, django_capture_on_commit_callbacks)
        _MADE["job"] = GenerationJob.objects.values("plan", "seed", "channels", "variants").get(pk=made[0].job_id)
        _MADE["assets"] = [
            {**{f: getattr(a, f) for f in _COPIED}, "png": a.file.read(), "preview_bytes": a.preview.read()} for a in made
        ]
        return made
    spec = _MADE["job"]
    job = GenerationJob.objects.create(
        workspace=workspace, photo=photo, cutout=photo.cutouts.get(), status="succeeded", progress=100, created_by=user, **spec,
    )
    made = []
    for data in _MADE["assets"]:
        name = default_storage.save(f"assets/{workspace.pk}/{job.pk}/copy-{data['variant']}.png", ContentFile(data["png"]))
        preview = default_storage.save(f"assets/{workspace.pk}/{job.pk}/copy-{data['variant']}.webp", ContentFile(data["preview_bytes"]))
        made.append(Asset.objects.create(
            workspace=workspace, job=job, photo=photo, cutout=job.cutout, file=name, preview=preview,
            **{f: data[f] for f in _COPIED},
        ))
    return made


_COPIED = ("variant", "seed", "channel", "sha256", "width", "height", "lock_certificate", "preflight", "preflight_passed", "recipe", "gates", "gates_passed")


def _put_in_state(asset: Asset, state: str, *, submitter) -> None:
    Asset.objects.filter(pk=asset.pk).update(review_state=state)
    if state == ReviewState.IN_REVIEW:
        Review.objects.create(workspace_id=asset.workspace_id, asset=asset, submitted_by=submitter)
    asset.refresh_from_db()


def _attempt(transition: str, asset: Asset, actor):
    if transition == "submit":
        return reviews.review_submit(asset=asset, actor=actor)
    if transition == "approve":
        return reviews.review_approve(asset=asset, actor=actor)
    if transition == "request_changes":
        return reviews.review_request_changes(asset=asset, actor=actor, comment="Lighter background, please.")
    return reviews.review_reject(asset=asset, actor=actor, comment="Wrong product colour.")


def _expected(transition: str, role: str, state: str):
    """The rules: anyone submits from generated/changes requested; only owners and brand
    managers decide, and only on an image in review."""
    if transition == "submit":
        return ReviewState.IN_REVIEW if state in (ReviewState.GENERATED, ReviewState.CHANGES_REQUESTED) else reviews.ReviewConflict
    if role == Role.MERCHANT:
        return PermissionDenied
    if state != ReviewState.IN_REVIEW:
        return reviews.ReviewConflict
    return {"approve": ReviewState.APPROVED, "request_changes": ReviewState.CHANGES_REQUESTED, "reject": ReviewState.REJECTED}[transition]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("transition", ["submit", "approve", "request_changes", "reject"])
def test_every_role_transition_and_state(assets, team, transition, role, state):
    asset = assets[0]
    _put_in_state(asset, state, submitter=team["second_manager"])
    events_before = AuditEvent.objects.count()
    expected = _expected(transition, role, state)

    if isinstance(expected, type) and issubclass(expected, Exception):
        with pytest.raises(expected):
            _attempt(transition, asset, team[role])
        asset.refresh_from_db()
        assert asset.review_state == state
        assert AuditEvent.objects.count() == events_before
    else:
        _attempt(transition, asset, team[role])
        asset.refresh_from_db()
        assert asset.review_state == expected
        assert AuditEvent.objects.filter(asset=asset).latest("pk").actor == team[role]
        assert Review.objects.filter(asset=asset, decision="").count() == (1 if expected == ReviewState.IN_REVIEW else 0)


def test_an_approval_pins_the_files_sha256_and_the_cutout_revision(assets, team):
    asset = assets[0]
    reviews.review_submit(asset=asset, actor=team[Role.MERCHANT])
    review = reviews.review_approve(asset=asset, actor=team[Role.BRAND_MANAGER], comment="Ship it")

    assert review.asset_sha256 == asset.sha256
    assert review.cutout_revision == asset.cutout.revision == 1
    assert review.decided_by == team[Role.BRAND_MANAGER]


def test_a_file_that_changed_after_it_was_made_cannot_be_approved(assets, team):
    asset = assets[0]
    reviews.review_submit(asset=asset, actor=team[Role.MERCHANT])
    asset.file.storage.delete(asset.file.name)
    asset.file.storage.save(asset.file.name, ContentFile(b"not the generated image"))

    with pytest.raises(reviews.ReviewConflict, match="no longer matches"):
        reviews.review_approve(asset=asset, actor=team[Role.BRAND_MANAGER])
    asset.refresh_from_db()
    assert asset.review_state == ReviewState.IN_REVIEW


def test_approving_your_own_submission_needs_the_workspace_setting(assets, team, workspace):
    asset = assets[0]
    manager = team[Role.BRAND_MANAGER]
    reviews.review_submit(asset=asset, actor=manager)

    with pytest.raises(PermissionDenied, match="someone else"):
        reviews.review_approve(asset=asset, actor=manager)
    workspace.allow_self_approval = True
    workspace.save()
    reviews.review_approve(asset=asset, actor=manager)

    asset.refresh_from_db()
    assert asset.review_state == ReviewState.APPROVED


def test_a_failing_gate_blocks_approval_until_a_reason_is_written_and_the_reason_is_in_history(api, assets, team):
    asset = assets[0]
    Asset.objects.filter(pk=asset.pk).update(gates=[*asset.gates[:1], FAILING_GATE], gates_passed=False)
    asset.refresh_from_db()
    reviews.review_submit(asset=asset, actor=team[Role.MERCHANT])

    with pytest.raises(ValidationError, match="override reason"):
        reviews.review_approve(asset=asset, actor=team[Role.BRAND_MANAGER])
    with pytest.raises(ValidationError):
        reviews.review_approve(asset=asset, actor=team[Role.BRAND_MANAGER], override_reason="   ")
    review = reviews.review_approve(asset=asset, actor=team[Role.BRAND_MANAGER], override_reason="Checked the edges by eye at 1:1")

    assert review.overridden == ["cutout"]
    history = api.get(f"/api/v1/assets/{asset.pk}/history/").json()
    approved = [e for e in history if e["verb"] == AuditVerb.REVIEW_APPROVED]
    assert approved[0]["detail"]["override_reason"] == "Checked the edges by eye at 1:1"
    assert approved[0]["detail"]["overridden"] == ["cutout"]


def test_a_merchants_approval_over_the_api_is_refused_and_changes_nothing(api, assets, team):
    asset = assets[0]
    reviews.review_submit(asset=asset, actor=team[Role.MERCHANT])

    response = api.post(f"/api/v1/assets/{asset.pk}/approve/", {"override_reason": "I like it"}, format="json")
    bulk = api.post("/api/v1/assets/bulk/", {"action": "approve", "ids": [asset.pk]}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert bulk.status_code == 403
    asset.refresh_from_db()
    assert asset.review_state == ReviewState.IN_REVIEW
    assert not Review.objects.exclude(decision="").exists()


def test_the_api_walks_an_image_through_review(api, assets, team):
    manager_api = _client_for(team[Role.BRAND_MANAGER])
    first, second = assets

    submitted = api.post(f"/api/v1/jobs/{first.job_id}/submit/", {}, format="json").json()
    again = api.post(f"/api/v1/assets/{first.pk}/submit/", {}, format="json")
    rejected = manager_api.post(f"/api/v1/assets/{first.pk}/reject/", {"comment": "The label is cut off."}, format="json")
    no_comment = manager_api.post(f"/api/v1/assets/{second.pk}/reject/", {}, format="json")
    approved = manager_api.post(f"/api/v1/assets/{second.pk}/approve/", {}, format="json")

    assert sorted(submitted["done"]) == [first.pk, second.pk]
    assert again.status_code == 409 and again.json()["error"]["code"] == "review_conflict"
    assert rejected.status_code == 200 and rejected.json()["review_state"] == "rejected"
    assert no_comment.status_code == 400 and "comment" in no_comment.json()["error"]["fields"]
    assert approved.json()["review_state"] == "approved"
    comments = api.get(f"/api/v1/assets/{first.pk}/comments/").json()
    assert [c["body"] for c in comments] == ["The label is cut off."]
    rounds = api.get(f"/api/v1/assets/{second.pk}/reviews/").json()
    assert rounds[0]["decision"] == "approved" and rounds[0]["asset_sha256"] == second.sha256


def test_bulk_approve_takes_only_images_whose_gates_all_pass(assets, team):
    passing, failing = assets
    Asset.objects.filter(pk=failing.pk).update(gates=[FAILING_GATE], gates_passed=False)
    failing.refresh_from_db()
    reviews.reviews_submit(assets=assets, actor=team[Role.MERCHANT])

    result = reviews.reviews_decide(assets=[passing, failing], actor=team[Role.BRAND_MANAGER], decision="approved")

    assert [a.pk for a in result.done] == [passing.pk]
    assert [a.pk for a, _ in result.skipped] == [failing.pk]
    assert "Cutout confidence" in result.skipped[0][1]
    assert Asset.objects.get(pk=failing.pk).review_state == ReviewState.IN_REVIEW


def test_bulk_with_an_id_from_another_workspace_moves_nothing(api, other_api, assets, team):
    reviews.reviews_submit(assets=assets, actor=team[Role.MERCHANT])
    manager_api = _client_for(team[Role.BRAND_MANAGER])

    response = manager_api.post("/api/v1/assets/bulk/", {"action": "reject", "ids": [assets[0].pk, 999999], "comment": "no"}, format="json")
    foreign = other_api.post("/api/v1/assets/bulk/", {"action": "submit", "ids": [assets[0].pk]}, format="json")

    assert response.status_code == 404
    assert foreign.status_code == 404
    assert set(Asset.objects.filter(pk__in=[a.pk for a in assets]).values_list("review_state", flat=True)) == {ReviewState.IN_REVIEW}


def test_submitting_notifies_the_deciders_and_a_decision_notifies_the_submitter(assets, team, workspace):
    merchant, manager = team[Role.MERCHANT], team[Role.BRAND_MANAGER]
    reviews.reviews_submit(assets=assets, actor=merchant)
    deciders = {team[Role.OWNER], manager, team["second_manager"]}
    notified = set(Notification.objects.filter(kind="awaiting_review").values_list("recipient", flat=True))
    assert notified == {u.pk for u in deciders}
    assert Notification.objects.get(recipient=manager).message == f"{merchant.email} submitted 2 image(s) for review."

    reviews.review_reject(asset=assets[0], actor=manager, comment="Too dark")
    mine = Notification.objects.get(recipient=merchant)
    assert mine.kind == "decided" and mine.message == f"{manager.email} rejected your image."
    assert not Notification.objects.filter(recipient=merchant, kind="awaiting_review").exists()


def test_notifications_are_emailed_after_commit(assets, team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reviews.reviews_submit(assets=assets[:1], actor=team[Role.MERCHANT])

    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in (team[Role.OWNER], team[Role.BRAND_MANAGER], team["second_manager"]))
    assert "submitted an image for review" in mail.outbox[0].subject


def test_notifications_api_lists_and_marks_read_only_the_callers(api, assets, team):
    reviews.reviews_submit(assets=assets, actor=team[Role.BRAND_MANAGER])
    reviews.review_request_changes(asset=assets[0], actor=team["second_manager"], comment="Crop tighter")
    manager_api = _client_for(team[Role.BRAND_MANAGER])

    listed = manager_api.get("/api/v1/notifications/?unread=true").json()["results"]
    marked = manager_api.post("/api/v1/notifications/read/", {}, format="json").json()

    assert [n["message"] for n in listed] == [f"{team['second_manager'].email} changes requested your image."]
    assert marked == {"marked": 1}
    assert api.get("/api/v1/notifications/").json()["results"] == []


def test_regenerating_an_approved_image_makes_a_new_image_in_review(api, generated, team, django_capture_on_commit_callbacks):
    asset = generated[0]
    reviews.review_submit(asset=asset, actor=team[Role.MERCHANT])
    reviews.review_approve(asset=asset, actor=team[Role.BRAND_MANAGER])

    with django_capture_on_commit_callbacks(execute=True):
        job = api.post(f"/api/v1/assets/{asset.pk}/regenerate/").json()
    new = Asset.objects.get(job_id=job["id"])

    assert new.pk != asset.pk
    assert new.regenerated_from_id == asset.pk
    assert new.review_state == ReviewState.IN_REVIEW
    assert Asset.objects.get(pk=asset.pk).review_state == ReviewState.APPROVED
    submitted = AuditEvent.objects.get(asset=new, verb=AuditVerb.REVIEW_SUBMITTED)
    assert submitted.detail["automatic"] == f"regenerated from image {asset.pk}"


def test_regenerating_an_image_nobody_submitted_leaves_the_new_one_unsubmitted(api, generated, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = api.post(f"/api/v1/assets/{generated[0].pk}/regenerate/").json()

    assert Asset.objects.get(job_id=job["id"]).review_state == ReviewState.GENERATED


def test_history_tells_the_whole_story_in_order(api, generated, team):
    asset = generated[0]
    reviews.review_submit(asset=asset, actor=team[Role.MERCHANT])
    reviews.asset_comment_add(asset=asset, actor=team[Role.MERCHANT], body="Is the shadow too strong?")
    reviews.review_approve(asset=asset, actor=team[Role.BRAND_MANAGER])

    history = api.get(f"/api/v1/assets/{asset.pk}/history/").json()

    assert [e["verb"] for e in history] == [
        "photo.uploaded", "cutout.made", "asset.generated", "review.submitted", "review.commented", "review.approved",
    ]
    assert history[2]["detail"]["model"] == "backdrop-mini"
    assert history[5]["actor"] == team[Role.BRAND_MANAGER].email


def test_gates_are_computed_when_an_image_is_made(generated):
    gates = {g["name"]: g for g in generated[0].gates}

    assert list(gates) == ["lock", "cutout", "edge-halo", "preflight", "resolution", "palette", "banned-terms"]
    assert gates["lock"]["status"] == "pass"
    assert "Product pixels identical to your photo" in gates["lock"]["reason"]
    assert generated[0].gates_passed is all(g["status"] != "fail" for g in gates.values())


def test_a_zip_of_a_selection_holds_the_files_and_both_manifests(assets, team):
    reviews.review_submit(asset=assets[0], actor=team[Role.MERCHANT])
    reviews.review_approve(asset=assets[0], actor=team[Role.BRAND_MANAGER])
    manager_api = _client_for(team[Role.BRAND_MANAGER])

    response = manager_api.post("/api/v1/assets/download/", {"ids": [a.pk for a in assets]}, format="json")

    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert len([n for n in names if n.endswith(".png")]) == 2 and "manifest.csv" in names and "manifest.json" in names
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    by_id = {int(r["asset_id"]): r for r in rows}
    assert by_id[assets[0].pk]["review_state"] == "approved"
    assert by_id[assets[0].pk]["decided_by"] == team[Role.BRAND_MANAGER].email
    assert by_id[assets[1].pk]["decided_by"] == ""
    for row in rows:
        assert hashlib.sha256(archive.read(row["file"])).hexdigest() == row["sha256"]
    full = json.loads(archive.read("manifest.json"))
    assert full["assets"][0]["lock_certificate"]["changed_pixels"] == 0


def test_the_audit_trail_downloads_as_csv_for_deciders_only(api, assets, team):
    reviews.review_submit(asset=assets[0], actor=team[Role.MERCHANT])

    refused = api.get("/api/v1/audit/")
    response = _client_for(team[Role.OWNER]).get("/api/v1/audit/")

    assert refused.status_code == 403
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "actor", "action", "photo", "cutout", "asset", "detail"]
    assert [r[2] for r in rows[1:]][-1] == "Submitted for review"
    assert len(rows) - 1 == AuditEvent.objects.filter(workspace=assets[0].workspace).count()


@pytest.mark.parametrize("query", ["product=abc", "review_state=maybe", "gates=sometimes", "job=1.5"])
def test_a_bad_filter_is_a_400_not_a_500(api, query):
    response = api.get(f"/api/v1/assets/?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_a_not_confident_cutout_makes_images_that_need_an_override(api, workspace, team, upload_product_photo, django_capture_on_commit_callbacks):
    workspace_defaults_ensure(workspace=workspace)
    ScenePreset.objects.filter(workspace=workspace).update(steps=2)
    photo = upload_product_photo((96, 72))
    photo.cutouts.update(confident=False, notes=["weak-edges"])
    made = _generate(api, photo, django_capture_on_commit_callbacks)
    asset = made[0]
    cutout_gate = next(g for g in asset.gates if g["name"] == "cutout")
    reviews.review_submit(asset=asset, actor=team[Role.MERCHANT])

    assert cutout_gate["status"] == "fail" and "edges may be wrong" in cutout_gate["reason"]
    assert asset.gates_passed is False
    with pytest.raises(reviews.GatesBlockApproval):
        reviews.review_approve(asset=asset, actor=team[Role.OWNER])
    reviews.review_approve(asset=asset, actor=team[Role.OWNER], override_reason="Outline checked by hand")
    assert Review.objects.get(asset=asset, decision="approved").overridden == ["cutout"]


def test_an_image_taken_out_of_approval_while_it_was_sent_is_recorded_as_in_the_shop_and_keeps_its_state(assets):
    # The shop holds the image already when the connector reports it: that is recorded, never
    # refused (refusing would lose the shop's id for an image that is there).
    rejected, approved = assets
    Asset.objects.filter(pk=rejected.pk).update(review_state=ReviewState.REJECTED)
    Asset.objects.filter(pk=approved.pk).update(review_state=ReviewState.APPROVED)

    kept = reviews.asset_published(asset=rejected, where="shop.example", remote_id="gid://shopify/MediaImage/1")
    published = reviews.asset_published(asset=approved, where="shop.example", remote_id="gid://shopify/MediaImage/2")

    assert (kept.review_state, published.review_state) == (ReviewState.REJECTED, ReviewState.PUBLISHED)
    events = AuditEvent.objects.filter(verb=AuditVerb.ASSET_EXPORTED).order_by("pk")
    assert [(e.asset_id, e.detail["remote_id"], e.detail["review_state"]) for e in events] == [
        (rejected.pk, "gid://shopify/MediaImage/1", "rejected"), (approved.pk, "gid://shopify/MediaImage/2", "published"),
    ]
