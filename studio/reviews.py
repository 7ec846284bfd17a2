"""Review and approval: the state machine of an asset's review, and who may move it.

    generated ─submit─► in review ─approve──────────► approved ─(export)─► published
        ▲                   │      ─request changes─► changes requested ─submit─► in review
        └───────────────────┘      ─reject──────────► rejected

Every transition is a service here: it locks the asset row (`select_for_update`), checks the
state and the actor's role inside the transaction, writes the review row and an audit event,
and notifies the people concerned after commit. Members of any role submit; only brand
managers and owners decide; a member approves their own submission only where the
workspace allows it. An approval pins the asset's exact bytes (sha256 re-read from storage)
and its cutout revision; failing QA gates block it unless a written override reason is
given, which the audit trail keeps."""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from catalog.models import Membership, Role, User, Workspace
from generation.gates import GATE_TITLES

from .audit import audit_record
from .models import Asset, AssetComment, AuditVerb, Notification, NotificationKind, Review, ReviewDecision, ReviewState

logger = logging.getLogger(__name__)

DECIDER_ROLES = (Role.OWNER, Role.BRAND_MANAGER)
SUBMITTABLE = (ReviewState.GENERATED, ReviewState.CHANGES_REQUESTED)
COMMENT_MAX = 4000


class ReviewNotAllowed(PermissionDenied):
    """The actor's role (or the workspace's approval rule) does not allow this decision."""


class ReviewConflict(Exception):
    """The asset is not in a state this transition starts from; the message says where it is."""

    code = "review_conflict"


class GatesBlockApproval(ValidationError):
    """Failing QA gates block the approval; a brand manager may override with a reason."""

    def __init__(self, failing: list[dict]):
        names = ", ".join(GATE_TITLES.get(g["name"], g["name"]) for g in failing)
        super().__init__({"override_reason": f"This image fails {len(failing)} QA gate(s) ({names}). Fix them, or approve with a written override reason."})
        self.failing = failing


@dataclass
class BulkResult:
    """What a bulk action did: the assets it moved, and each one it left with the reason."""

    done: list[Asset] = field(default_factory=list)
    skipped: list[tuple[Asset, str]] = field(default_factory=list)


def role_of(*, workspace: Workspace | int, user: User) -> str | None:
    workspace_id = getattr(workspace, "pk", workspace)
    return Membership.objects.filter(workspace_id=workspace_id, user=user).values_list("role", flat=True).first()


def can_decide(*, workspace: Workspace | int, user: User) -> bool:
    return role_of(workspace=workspace, user=user) in DECIDER_ROLES


def _locked(asset: Asset) -> Asset:
    return Asset.objects.select_for_update(no_key=True).select_related("workspace", "cutout", "job", "photo").get(pk=asset.pk)


def _state_words(asset: Asset) -> str:
    return ReviewState(asset.review_state).label.lower()


# Submit ----------------------------------------------------------------------------------


def review_submit(*, asset: Asset, actor: User, comment: str = "") -> Review:
    """Put one asset in front of the brand managers. Any member may submit an image of a
    finished job that is not submitted yet or came back with changes requested."""
    result = reviews_submit(assets=[asset], actor=actor, comment=comment)
    if result.skipped:
        raise ReviewConflict(result.skipped[0][1])
    return Review.objects.get(asset=result.done[0], decision="")


def reviews_submit(*, assets: list[Asset], actor: User, comment: str = "", automatic: str = "") -> BulkResult:
    """Submit several assets at once (a job's images, a selection); each that cannot be
    submitted is skipped with the reason. Brand managers get one notification for the lot."""
    _check_comment(comment, required=False)
    result = BulkResult()
    with transaction.atomic():
        for asset in sorted(assets, key=lambda a: a.pk):
            locked = _locked(asset)
            if role_of(workspace=locked.workspace_id, user=actor) is None:
                raise ReviewNotAllowed("You are not a member of this workspace.")
            if locked.job.status != "succeeded":
                result.skipped.append((locked, "Its generation job has not finished, so it cannot be submitted yet."))
                continue
            if locked.review_state not in SUBMITTABLE:
                result.skipped.append((locked, f"It is {_state_words(locked)} already."))
                continue
            Review.objects.create(workspace_id=locked.workspace_id, asset=locked, submitted_by=actor, comment=comment)
            Asset.objects.filter(pk=locked.pk).update(review_state=ReviewState.IN_REVIEW)
            locked.review_state = ReviewState.IN_REVIEW
            audit_record(
                workspace_id=locked.workspace_id, verb=AuditVerb.REVIEW_SUBMITTED, actor=actor, photo=locked.photo,
                asset=locked, detail={"comment": comment, "sha256": locked.sha256, **({"automatic": automatic} if automatic else {})},
            )
            result.done.append(locked)
        if result.done:
            workspace_id = result.done[0].workspace_id
            deciders = User.objects.filter(memberships__workspace_id=workspace_id, memberships__role__in=DECIDER_ROLES).exclude(pk=actor.pk)
            count = len(result.done)
            who = actor.email
            message = f"{who} submitted {count} image(s) for review." if count > 1 else f"{who} submitted an image for review."
            _notify(
                workspace_id=workspace_id, recipients=list(deciders), kind=NotificationKind.AWAITING_REVIEW,
                message=message, asset=result.done[0], count=count,
            )
    return result


# Decide ----------------------------------------------------------------------------------


def review_approve(*, asset: Asset, actor: User, comment: str = "", override_reason: str = "") -> Review:
    """Approve an asset in review, pinned to its exact bytes and cutout revision."""
    return _decide(asset=asset, actor=actor, decision=ReviewDecision.APPROVED, comment=comment, override_reason=override_reason)


def review_request_changes(*, asset: Asset, actor: User, comment: str) -> Review:
    """Send an asset back to its submitter with what to change (a comment is required)."""
    return _decide(asset=asset, actor=actor, decision=ReviewDecision.CHANGES_REQUESTED, comment=comment)


def review_reject(*, asset: Asset, actor: User, comment: str) -> Review:
    """Reject an asset for good (a comment saying why is required)."""
    return _decide(asset=asset, actor=actor, decision=ReviewDecision.REJECTED, comment=comment)


def reviews_decide(*, assets: list[Asset], actor: User, decision: str, comment: str = "") -> BulkResult:
    """One decision on a selection. Bulk approval takes only assets whose every gate passes
    (an override needs its own reason, one image at a time); the rest are skipped with why."""
    if decision not in ReviewDecision.values:
        raise ValidationError({"decision": f"Choose one of: {', '.join(ReviewDecision.values)}."})
    _require_decider(workspace_id=assets[0].workspace_id if assets else None, actor=actor)
    _check_comment(comment, required=decision != ReviewDecision.APPROVED)
    result = BulkResult()
    with transaction.atomic():
        for asset in sorted(assets, key=lambda a: a.pk):
            try:
                with transaction.atomic():
                    if decision == ReviewDecision.APPROVED and not asset.gates_passed:
                        raise GatesBlockApproval(asset.failing_gates)
                    _decide(asset=asset, actor=actor, decision=decision, comment=comment, notify=False)
            except (ReviewConflict, ReviewNotAllowed, GatesBlockApproval) as exc:
                result.skipped.append((asset, _message(exc)))
            else:
                result.done.append(asset)
        _notify_decisions(result.done, actor=actor, decision=decision)
    return result


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(msg for msgs in exc.message_dict.values() for msg in msgs)
    return str(exc)


def _require_decider(*, workspace_id, actor: User) -> None:
    if workspace_id is not None and not can_decide(workspace=workspace_id, user=actor):
        raise ReviewNotAllowed("Only a brand manager or an owner of this workspace can approve, reject or request changes.")


def _check_comment(comment: str, *, required: bool) -> None:
    if required and not comment.strip():
        raise ValidationError({"comment": "Say what is wrong, so the person who submitted it knows what to change."})
    if len(comment) > COMMENT_MAX:
        raise ValidationError({"comment": f"Keep the comment under {COMMENT_MAX:,} characters (this one has {len(comment):,})."})


def _file_sha256(asset: Asset) -> str:
    digest = hashlib.sha256()
    with asset.file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _decide(*, asset: Asset, actor: User, decision: str, comment: str, override_reason: str = "", notify: bool = True) -> Review:
    _check_comment(comment, required=decision != ReviewDecision.APPROVED)
    with transaction.atomic():
        locked = _locked(asset)
        _require_decider(workspace_id=locked.workspace_id, actor=actor)
        if locked.review_state != ReviewState.IN_REVIEW:
            raise ReviewConflict(f"This image is {_state_words(locked)}, not in review: there is nothing to decide.")
        review = Review.objects.select_for_update(no_key=True).get(asset=locked, decision="")
        detail: dict = {"comment": comment}
        if decision == ReviewDecision.APPROVED:
            if review.submitted_by_id == actor.pk and not locked.workspace.allow_self_approval:
                raise ReviewNotAllowed(
                    "You submitted this image, and this workspace needs someone else to approve it. "
                    "Ask another brand manager, or an owner can allow self-approval in Settings."
                )
            failing = locked.failing_gates
            if failing and not override_reason.strip():
                raise GatesBlockApproval(failing)
            sha256 = _file_sha256(locked)
            if sha256 != locked.sha256:
                # The stored file is not the one the gates and the certificate describe.
                raise ReviewConflict("This image's file no longer matches what was generated and checked, so it cannot be approved. Regenerate it.")
            review.asset_sha256, review.cutout_revision = sha256, locked.cutout.revision
            if failing:
                review.override_reason, review.overridden = override_reason.strip(), [g["name"] for g in failing]
            detail.update(sha256=sha256, cutout_revision=locked.cutout.revision, override_reason=review.override_reason, overridden=review.overridden)
        review.decision, review.decided_by, review.decided_at = decision, actor, timezone.now()
        if comment:
            review.comment = f"{review.comment}\n\n{comment}".strip() if review.comment else comment
        review.save()
        Asset.objects.filter(pk=locked.pk).update(review_state=decision)
        locked.review_state = decision
        verb = {ReviewDecision.APPROVED: AuditVerb.REVIEW_APPROVED, ReviewDecision.CHANGES_REQUESTED: AuditVerb.REVIEW_CHANGES_REQUESTED, ReviewDecision.REJECTED: AuditVerb.REVIEW_REJECTED}[decision]
        audit_record(workspace_id=locked.workspace_id, verb=verb, actor=actor, photo=locked.photo, asset=locked, detail=detail)
        if comment:
            AssetComment.objects.create(workspace_id=locked.workspace_id, asset=locked, author=actor, body=comment)
        if notify:
            _notify_decisions([locked], actor=actor, decision=decision)
        asset.review_state = decision
    return review


def _notify_decisions(assets: list[Asset], *, actor: User, decision: str) -> None:
    """Tell each submitter what was decided about their images (one message per person)."""
    words = ReviewDecision(decision).label.lower()
    mine: dict[int, list[Asset]] = defaultdict(list)
    people: dict[int, User] = {}
    seen: set[int] = set()
    reviews = Review.objects.filter(asset__in=assets, decision=decision, decided_by=actor).select_related("submitted_by", "asset")
    for review in reviews.order_by("asset_id", "-decided_at"):
        if review.asset_id in seen or review.submitted_by is None or review.submitted_by_id == actor.pk:
            continue
        seen.add(review.asset_id)
        mine[review.submitted_by_id].append(review.asset)
        people[review.submitted_by_id] = review.submitted_by
    for user_id, theirs in mine.items():
        count = len(theirs)
        message = f"{actor.email} {words} {count} of your images." if count > 1 else f"{actor.email} {words} your image."
        _notify(workspace_id=theirs[0].workspace_id, recipients=[people[user_id]], kind=NotificationKind.DECIDED, message=message, asset=theirs[0], count=count)


# Published -------------------------------------------------------------------------------


def asset_published(*, asset: Asset, where: str, remote_id: str, url: str = "", actor: User | None = None, detail: dict | None = None) -> Asset:
    """The storefront holds the approved image now: approved → published, with an audit event
    saying where (the shop), when and the shop's id for it. An image already published (to
    another shop, or again after a retry) stays published and gets its own event. The
    connector calls this once the shop reports the image ready; it passes plain values, so
    studio knows nothing of storefronts."""
    with transaction.atomic():
        locked = _locked(asset)
        # The shop holds the image already: record that whatever happened meanwhile. An image
        # taken out of approval while it was being sent keeps its new state (the returned
        # asset says which; the connector tells the merchant).
        if locked.review_state == ReviewState.APPROVED:
            Asset.objects.filter(pk=locked.pk).update(review_state=ReviewState.PUBLISHED)
            locked.review_state = ReviewState.PUBLISHED
        audit_record(
            workspace_id=locked.workspace_id, verb=AuditVerb.ASSET_EXPORTED, actor=actor, photo=locked.photo, asset=locked,
            detail={"where": where, "remote_id": remote_id, "url": url, "sha256": locked.sha256, "review_state": locked.review_state, **(detail or {})},
        )
    logger.info("review.asset.published", extra={"asset_id": asset.pk, "where": where, "remote_id": remote_id})
    return locked


# Comments --------------------------------------------------------------------------------


def asset_comment_add(*, asset: Asset, actor: User, body: str) -> AssetComment:
    """A comment on an asset's thread, from any member of its workspace."""
    if not body.strip():
        raise ValidationError({"body": "Write a comment first."})
    _check_comment(body, required=True)
    if role_of(workspace=asset.workspace_id, user=actor) is None:
        raise ReviewNotAllowed("You are not a member of this workspace.")
    with transaction.atomic():
        comment = AssetComment.objects.create(workspace_id=asset.workspace_id, asset=asset, author=actor, body=body.strip())
        audit_record(workspace_id=asset.workspace_id, verb=AuditVerb.REVIEW_COMMENTED, actor=actor, asset=asset, detail={"comment": body.strip()})
    return comment


# Regenerated assets ----------------------------------------------------------------------


def regenerated_assets_submit(*, job) -> BulkResult:
    """A job that regenerated a submitted or approved asset puts its new image straight into
    review: the old approval covered other pixels, so the new one needs its own decision."""
    source_id = job.plan.get("regenerated_from")
    if not source_id or not job.plan.get("submit_for_review") or job.created_by is None:
        return BulkResult()
    assets = list(Asset.objects.filter(job=job, review_state=ReviewState.GENERATED))
    return reviews_submit(assets=assets, actor=job.created_by, automatic=f"regenerated from image {source_id}")


# Notifications ---------------------------------------------------------------------------


def _notify(*, workspace_id: int, recipients: list[User], kind: str, message: str, asset: Asset | None, count: int) -> None:
    rows = Notification.objects.bulk_create(
        [Notification(workspace_id=workspace_id, recipient=user, kind=kind, message=message, asset=asset, count=count) for user in recipients]
    )
    if rows:
        addresses = [user.email for user in recipients if user.email]
        transaction.on_commit(lambda: _email(addresses, message, asset))


def _email(addresses: list[str], message: str, asset: Asset | None) -> None:
    """Email after commit; a mail server that is down does not undo the decision (the in-app
    notification is already there), it is logged."""
    link = f"{settings.VITRINE_BASE_URL.rstrip('/')}/review/" if asset is not None else settings.VITRINE_BASE_URL
    body = f"{message}\n\nOpen Vitrine: {link}\n"
    for address in addresses:
        try:
            send_mail(subject=f"Vitrine: {message}", message=body, from_email=None, recipient_list=[address])
        except Exception:  # noqa: BLE001 - any mail failure is logged, never raised into a decision
            logger.warning("review.notification_email_failed", extra={"to": address}, exc_info=True)


def notifications_mark_read(*, user: User, workspace: Workspace, ids: list[int] | None = None) -> int:
    """Mark the caller's notifications read (all of them, or the given ids); returns how many."""
    rows = Notification.objects.filter(recipient=user, workspace=workspace, read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(read_at=timezone.now())
