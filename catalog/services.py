"""Every write in the catalog: workspaces, people, products, photos, jobs."""
from __future__ import annotations

import logging
import secrets
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterable

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import Http404
from django.http import Http404
from django.utils import timezone
from django.utils.text import slugify

from generation.decoding import UploadRejected, image_decode, image_header_check

from .files import delete_files, photo_dir
from .jobs import ACTIVE_JOB_STATUSES
from .models import (
    ApiToken,
    Invitation,
    JobKind,
    Membership,
    PhotoJob,
    Product,
    ProductPhoto,
    Role,
    User,
    Workspace,
    WorkerHeartbeat,
    secret_hash,
)
from .tasks import photo_decode_task, photo_thumbnail_task
from .work import upload_limits

logger = logging.getLogger(__name__)

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic", "AVIF": "avif"}


# Workspaces and people -------------------------------------------------------------------


def workspace_create(*, name: str, owner: User, slug: str | None = None) -> Workspace:
    with transaction.atomic():
        workspace = Workspace.objects.create(name=name, slug=slug or slugify(name)[:80])
        Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


def member_add(*, workspace: Workspace, email: str, role: str, password: str | None = None) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first() or User.objects.create_user(email=email, password=password)
        membership, _ = Membership.objects.update_or_create(workspace=workspace, user=user, defaults={"role": role})
    return membership


DEMO_PASSWORD = "vitrine-demo"
DEMO_USERS = (
    ("merchant@demo.vitrine", Role.MERCHANT),
    ("brand@demo.vitrine", Role.BRAND_MANAGER),
    ("owner@demo.vitrine", Role.OWNER),  # manages Settings: members, invitations, the approval rule
)


def demo_workspace_seed() -> Workspace:
    """The demo workspace and its two logins; refuses outside demo mode."""
    if not settings.VITRINE_DEMO:
        raise RuntimeError("The demo workspace is only created when VITRINE_DEMO is true.")
    with transaction.atomic():
        workspace, _ = Workspace.objects.get_or_create(slug="demo", defaults={"name": "Demo Store"})
        for email, role in DEMO_USERS:
            user, created = User.objects.get_or_create(email=email)
            if created or not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            Membership.objects.update_or_create(workspace=workspace, user=user, defaults={"role": role})
        for title, sku in (("Amber glass bottle", "AGB-100"), ("Ceramic mug", "CM-220"), ("Leather wallet", "LW-030")):
            Product.objects.get_or_create(workspace=workspace, handle=slugify(title), defaults={"title": title, "sku": sku})
    return workspace


# Products --------------------------------------------------------------------------------


def _unique_handle_error(handle: str) -> ValidationError:
    return ValidationError({"handle": f"Another product in this workspace already uses the handle '{handle}'."})


def product_create(*, workspace: Workspace, title: str, handle: str = "", sku: str = "", storefront_product_id: str = "") -> Product:
    handle = handle or slugify(title)
    if not handle:
        raise ValidationError({"title": "Give the product a title with at least one letter or digit."})
    try:
        with transaction.atomic():
            return Product.objects.create(
                workspace=workspace, title=title, handle=handle, sku=sku, storefront_product_id=storefront_product_id
            )
    except IntegrityError:
        raise _unique_handle_error(handle) from None


def product_update(*, product: Product, **fields) -> Product:
    """Change a product's fields; an empty handle is derived from the title, as on create."""
    allowed = {"title", "handle", "sku", "storefront_product_id"}
    if "handle" in fields and not fields["handle"]:
        fields["handle"] = slugify(fields.get("title", product.title))
        if not fields["handle"]:
            raise ValidationError({"title": "Give the product a title with at least one letter or digit."})
    for name, value in fields.items():
        if name not in allowed:
            raise TypeError(f"product_update() got an unexpected field {name!r}")
        setattr(product, name, value)
    try:
        with transaction.atomic():
            product.save()
    except IntegrityError:
        raise _unique_handle_error(product.handle) from None
    return product


def product_delete(*, product: Product) -> None:
    """Delete a product. Its photos stay in the workspace's library, attached to no product
    (ProductPhoto.product is SET_NULL), with their cutouts and generated images."""
    product.delete()


# Photos ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoUploadResult:
    photo: ProductPhoto
    created: bool  # False: the same bytes were already in this workspace


def photo_upload(
    *,
    workspace: Workspace,
    file: File,
    uploaded_by: User | None = None,
    product: Product | None = None,
    then: Callable[[ProductPhoto], object] | None = None,
) -> PhotoUploadResult:
    """Validate, store and register one photo, then enqueue its thumbnail.

    A photo of at most VITRINE_UPLOAD_INLINE_MAX_PIXELS (weighted by its decode's memory:
    `ImageHeader.decode_pixels`, 1.5× with alpha or 16 bits) is fully decoded here and stored with
    its working copy. A larger one (up to the pixel cap) passes here only the rules that need
    no pixel decoded (`image_header_check`: size, format, declared dimensions, metadata
    budgets): its original is stored and the photo is *checking*, with a decode job on the cpu
    queue that makes the working copy, then queues the thumbnail and sends
    `catalog.signals.photo_decoded` (`catalog.work.photo_decode_make`). Decoding 100 MP in
    the web process would cost it ~1.4 GB; 12.5 MP of 8-bit RGB at most ≈ 87 MB (docs/benchmarks.md).

    `then(photo)` runs inside the same transaction for a new photo: the work other apps
    start on it (studio's audit and cutout, which waits for `photo_decoded` on a photo still
    checking), so that a failure there leaves nothing behind either. A rejection raises
    UploadRejected and leaves no row and no file; the same bytes uploaded twice return the
    first photo."""
    if product is not None and product.workspace_id != workspace.pk:
        raise UploadRejected("That product does not exist in this workspace.", "unknown_product")
    limits = upload_limits()
    header = image_header_check(file, size_bytes=file.size, **limits)
    existing = ProductPhoto.objects.filter(workspace=workspace, original_sha256=header.sha256).first()
    if existing is not None:
        return PhotoUploadResult(photo=existing, created=False)
    accepted = None
    if header.decode_pixels <= settings.VITRINE_UPLOAD_INLINE_MAX_PIXELS:
        accepted = image_decode(file, header=header, max_pixels=limits["max_pixels"], working_max_side=settings.VITRINE_WORKING_MAX_SIDE)

    directory = photo_dir(workspace_id=workspace.pk, sha256=header.sha256)
    stored: list[str] = []
    try:
        file.seek(0)
        stored.append(default_storage.save(f"{directory}/original.{_EXTENSIONS[header.format]}", file))
        if accepted is not None:
            stored.append(default_storage.save(f"{directory}/working.png", ContentFile(accepted.working_png)))
            decoded = {
                "working": stored[1], "working_sha256": accepted.working_sha256,
                "width": accepted.width, "height": accepted.height, "has_alpha": accepted.has_alpha,
            }
        else:
            decoded = {}  # checking: the decode job fills these
        with transaction.atomic():
            photo = ProductPhoto.objects.create(
                workspace=workspace,
                product=product,
                uploaded_by=uploaded_by,
                original=stored[0],
                original_sha256=header.sha256,
                original_name=(getattr(file, "name", "") or "photo")[:255],
                original_format=header.format,
                original_bytes=header.size_bytes,
                original_width=header.width,
                original_height=header.height,
                **decoded,
            )
            if accepted is not None:
                job_enqueue(photo=photo, kind=JobKind.THUMBNAIL, task=photo_thumbnail_task)
            else:
                job_enqueue(photo=photo, kind=JobKind.DECODE, task=photo_decode_task)
            if then is not None:
                then(photo)
    except IntegrityError:
        # A concurrent upload of the same bytes won the race: keep theirs, drop ours.
        delete_files(stored)
        return PhotoUploadResult(photo=ProductPhoto.objects.get(workspace=workspace, original_sha256=header.sha256), created=False)
    except BaseException:
        delete_files(stored)
        raise
    logger.info(
        "catalog.photo.uploaded", extra={"photo_id": photo.pk, "workspace_id": workspace.pk, "checking": accepted is None}
    )
    return PhotoUploadResult(photo=photo, created=True)


def photo_delete(*, photo: ProductPhoto) -> None:
    names = [f.name for f in (photo.original, photo.working, photo.thumbnail) if f]
    with transaction.atomic():
        photo.delete()
        transaction.on_commit(lambda: delete_files(names))


def photo_assign(*, photo: ProductPhoto, product: Product | None) -> ProductPhoto:
    if product is not None and product.workspace_id != photo.workspace_id:
        raise ValidationError({"product": "That product does not exist in this workspace."})
    photo.product = product
    photo.save(update_fields=["product"])
    return photo


def photos_assign(*, workspace: Workspace, photo_ids: Iterable[int], product: Product | None) -> list[int]:
    """Attach many photos of `workspace` to `product` (None: to no product), all or none.

    Every id must name a photo of this workspace: one that does not (another workspace's, or
    deleted meanwhile) raises Http404 naming it, and no photo moves. Returns the moved ids."""
    ids = sorted({int(pk) for pk in photo_ids})
    if product is not None and product.workspace_id != workspace.pk:
        raise ValidationError({"product": "That product does not exist in this workspace."})
    with transaction.atomic():
        if product is not None and not Product.objects.select_for_update().filter(pk=product.pk).exists():
            # Deleted since the caller looked it up: the update would break the foreign key.
            raise Http404(f"No product with id {product.pk}")
        # Locked in id order, so two overlapping bulk moves wait for each other instead of
        # deadlocking, and a photo deleted meanwhile is noticed before anything moves.
        found = set(
            ProductPhoto.objects.select_for_update(no_key=True).filter(workspace=workspace, pk__in=ids).order_by("pk").values_list("pk", flat=True)
        )
        missing = [pk for pk in ids if pk not in found]
        if missing:
            raise Http404(f"No photo with id {', '.join(map(str, missing))} in this workspace; no photo was moved.")
        ProductPhoto.objects.filter(pk__in=ids).update(product=product)
    logger.info(
        "catalog.photos.assigned", extra={"workspace_id": workspace.pk, "product_id": product.pk if product else None, "photos": len(ids)}
    )
    return ids


# Jobs ------------------------------------------------------------------------------------


def job_enqueue(*, photo: ProductPhoto, kind: str, task, params: dict | None = None) -> PhotoJob:
    """Create the job row (or return the live one of that kind, whatever its params) and send
    `task` (a Celery task taking the job id, owned by the app that does the work) once the row
    is committed."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                job = PhotoJob.objects.create(
                    workspace_id=photo.workspace_id, photo=photo, kind=kind, params=params or {}, task_name=task.name
                )
        except IntegrityError:
            return PhotoJob.objects.get(photo=photo, kind=kind, status__in=ACTIVE_JOB_STATUSES)
        transaction.on_commit(lambda: task.delay(job.pk))
    return job


# Workers ---------------------------------------------------------------------------------


def worker_heartbeat_record(*, hostname: str, queues: list[str]) -> None:
    WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"queues": queues, "seen_at": timezone.now()})


# Team: roles, invitations, API tokens, the approval rule ----------------------------------


class TeamConflict(Exception):
    """The change would break a rule of the team (the last owner, an open invitation, an
    existing member); the message says what to do instead. The API answers 409."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


class InvitationRefused(Exception):
    """The invitation link cannot be used as asked (unknown, used, revoked, expired, or meant
    for another account); the message says why in words. The API answers 400."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


def _require_owner(actor: Membership, doing: str) -> None:
    if actor.role != Role.OWNER:
        raise PermissionDenied(f"Only an owner of this workspace can {doing}.")


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})


def _lock_team(actor: Membership) -> None:
    # Every change to who owns a workspace takes this row lock first, so two owners demoting
    # (or removing) each other at once cannot both see "another owner is left"; under it the
    # actor must still be an owner (not demoted by someone else a moment ago).
    Workspace.objects.select_for_update(no_key=True).filter(pk=actor.workspace_id).first()
    if not Membership.objects.filter(pk=actor.pk, role=Role.OWNER).exists():
        raise PermissionDenied("You are no longer an owner of this workspace.")


def workspace_settings_update(*, actor: Membership, allow_self_approval: bool) -> Workspace:
    """Set the approval rule: whether a member may approve an asset they submitted. Owners only."""
    _require_owner(actor, "change the approval rule")
    workspace = actor.workspace
    workspace.allow_self_approval = allow_self_approval
    workspace.save(update_fields=["allow_self_approval"])
    logger.info(
        "catalog.workspace.approval_rule_changed",
        extra={"workspace_id": workspace.pk, "allow_self_approval": allow_self_approval, "user_id": actor.user_id},
    )
    return workspace


def _locked_member(membership: Membership) -> Membership:
    current = Membership.objects.select_for_update().select_related("user").filter(pk=membership.pk).first()
    if current is None:
        raise Http404("That person is no longer a member of this workspace.")
    return current


def _refuse_last_owner(membership: Membership, doing: str) -> None:
    if membership.role != Role.OWNER:
        return
    if Membership.objects.filter(workspace_id=membership.workspace_id, role=Role.OWNER).count() <= 1:
        raise TeamConflict(
            f"{membership.user.email} is the only owner of this workspace, so you cannot {doing}. "
            "Make another member an owner first.",
            "last_owner",
        )


def member_role_change(*, actor: Membership, membership: Membership, role: str) -> Membership:
    """Give a member another role. Owners only; the workspace always keeps one owner."""
    _require_owner(actor, "change roles")
    _check_role(role)
    with transaction.atomic():
        _lock_team(actor)
        membership = _locked_member(membership)
        if role != Role.OWNER:
            _refuse_last_owner(membership, "change their role")
        membership.role = role
        membership.save(update_fields=["role"])
    logger.info("catalog.member.role_changed", extra={"membership_id": membership.pk, "role": role, "by": actor.user_id})
    return membership


def member_remove(*, actor: Membership, membership: Membership) -> None:
    """Remove a member from the workspace (the account stays) and revoke their API tokens
    for it. Owners only; the last owner cannot be removed."""
    _require_owner(actor, "remove members")
    with transaction.atomic():
        _lock_team(actor)
        membership = _locked_member(membership)
        _refuse_last_owner(membership, "remove them")
        ApiToken.objects.filter(user_id=membership.user_id, workspace_id=membership.workspace_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        membership.delete()
    logger.info("catalog.member.removed", extra={"workspace_id": actor.workspace_id, "user_id": membership.user_id, "by": actor.user_id})


def _normalised_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address, like name@example.com."}) from None
    return email


def invitation_create(*, actor: Membership, email: str, role: str, link_for: Callable[[str], str]) -> Invitation:
    """Invite an email address into the actor's workspace with a role, and email the
    one-time link `link_for(token)` once the invitation is committed. Owners only.

    Refused (TeamConflict) when the address is already a member or already has an open
    invitation; an expired one is retired and replaced."""
    _require_owner(actor, "invite people")
    email = _normalised_email(email)
    _check_role(role)
    workspace = actor.workspace
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise TeamConflict(f"{email} is already a member of this workspace.", "already_member")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        Invitation.objects.filter(
            workspace=workspace, email=email, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__lte=now
        ).update(revoked_at=now)
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    workspace=workspace,
                    email=email,
                    role=role,
                    token_hash=secret_hash(token),
                    invited_by=actor.user,
                    expires_at=now + timedelta(days=settings.VITRINE_INVITATION_DAYS),
                )
        except IntegrityError:
            raise TeamConflict(
                f"An invitation to {email} is already open. Revoke it first if you want to send a new link.", "invitation_open"
            ) from None
        link = link_for(token)
        transaction.on_commit(lambda: _invitation_email_send(invitation=invitation, link=link))
    logger.info("catalog.invitation.created", extra={"invitation_id": invitation.pk, "workspace_id": workspace.pk})
    return invitation


def _invitation_email_send(*, invitation: Invitation, link: str) -> None:
    inviter = invitation.invited_by.email if invitation.invited_by else "An owner"
    workspace = invitation.workspace.name
    body = (
        f"{inviter} invited you to join {workspace} on Vitrine as {Role(invitation.role).label.lower()}.\n\n"
        f"Accept the invitation:\n{link}\n\n"
        f"The link works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
        "If you did not expect this email, you can ignore it.\n"
    )
    try:
        send_mail(f"{inviter} invited you to {workspace} on Vitrine", body, None, [invitation.email])
    except (smtplib.SMTPException, OSError):
        # The invitation stays open and listed; the owner can revoke it and invite again once
        # mail works. A failing mail server must not turn the owner's request into a 500.
        logger.exception("catalog.invitation.email_failed", extra={"invitation_id": invitation.pk})


def invitation_revoke(*, actor: Membership, invitation: Invitation) -> Invitation:
    """Make an open invitation's link stop working. Owners only; revoking twice is a no-op."""
    _require_owner(actor, "revoke invitations")
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise TeamConflict(
                f"{invitation.email} already accepted this invitation; remove them under Members instead.", "invitation_accepted"
            )
        if invitation.revoked_at is None:
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
    logger.info("catalog.invitation.revoked", extra={"invitation_id": invitation.pk, "by": actor.user_id})
    return invitation


def invitation_problem(invitation: Invitation | None) -> InvitationRefused | None:
    """Why a link cannot be used (in words), or None when it can."""
    if invitation is None:
        return InvitationRefused(
            "This invitation link is not valid. Check that you opened the whole link from the email, "
            "or ask an owner of the workspace for a new invitation.",
            "invitation_unknown",
        )
    status = invitation.status
    if status == "accepted":
        return InvitationRefused(
            "This invitation link was already used. Sign in with the account that accepted it.", "invitation_used"
        )
    if status == "revoked":
        return InvitationRefused(
            "This invitation was withdrawn by an owner of the workspace. Ask them for a new one if you still need access.",
            "invitation_revoked",
        )
    if status == "expired":
        return InvitationRefused(
            f"This invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Ask an owner of the workspace to invite you again.",
            "invitation_expired",
        )
    return None


def invitation_accept(*, token: str, user: User | None = None, password: str | None = None) -> Membership:
    """Use an invitation link: join its workspace with its role.

    The invitation is for one email address. When an account with that address exists,
    `user` must be that account, already signed in (the caller checked its password); when
    none exists, `password` creates it. Anything else raises InvitationRefused (or
    ValidationError for a password the validators refuse) and changes nothing."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update().select_related("workspace").filter(token_hash=secret_hash(token or "")).first()
        )
        problem = invitation_problem(invitation)
        if problem is not None:
            raise problem
        account = User.objects.filter(email__iexact=invitation.email).first()
        if user is not None and (account is None or user.pk != account.pk):
            raise InvitationRefused(
                f"This invitation is for {invitation.email}, but you are signed in as {user.email}. "
                "Sign out, then open the link again.",
                "invitation_other_account",
            )
        if account is None:
            if not password:
                raise ValidationError({"password": "Choose a password for your new account."})
            try:
                validate_password(password, user=User(email=invitation.email))
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from None
            try:
                with transaction.atomic():
                    account = User.objects.create_user(email=invitation.email, password=password)
            except IntegrityError:
                # Another invitation to the same address was accepted a moment ago.
                raise InvitationRefused(
                    f"An account for {invitation.email} was just created. Sign in with it, then open the link again.",
                    "sign_in_required",
                ) from None
        elif user is None:
            raise InvitationRefused(
                f"An account for {invitation.email} already exists. Sign in with its password to accept.", "sign_in_required"
            )
        membership, _ = Membership.objects.select_related("workspace", "user").get_or_create(
            workspace=invitation.workspace, user=account, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
    logger.info("catalog.invitation.accepted", extra={"invitation_id": invitation.pk, "user_id": account.pk})
    return membership


#: `api_token_create(expires_at=DEFAULT_EXPIRY)`: VITRINE_API_TOKEN_DAYS from now.
DEFAULT_EXPIRY = object()


def api_token_create(*, membership: Membership, name: str, expires_at=DEFAULT_EXPIRY) -> tuple[ApiToken, str]:
    """A new named API key for a member in their workspace. Returns the row and the key; the
    key is not stored (only its sha256 and first 8 characters), so this is the one time
    anyone sees it. `expires_at=None` makes a key that never expires."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name that says where it is used, e.g. “CI uploads”."})
    if len(name) > 100:
        raise ValidationError({"name": "Keep the name to 100 characters or fewer."})
    now = timezone.now()
    if expires_at is DEFAULT_EXPIRY:
        expires_at = now + timedelta(days=settings.VITRINE_API_TOKEN_DAYS)
    elif expires_at is not None and expires_at <= now:
        raise ValidationError({"expires_at": "Pick an expiry in the future, or none for a token that does not expire."})
    key = secrets.token_hex(20)
    token = ApiToken.objects.create(
        user=membership.user,
        workspace=membership.workspace,
        name=name,
        key_prefix=key[:8],
        key_hash=secret_hash(key),
        expires_at=expires_at,
    )
    logger.info("catalog.api_token.created", extra={"token_id": token.pk, "user_id": membership.user_id, "workspace_id": membership.workspace_id})
    return token, key


def api_token_revoke(*, actor: Membership, token: ApiToken) -> ApiToken:
    """Make a token stop working at once. A member revokes their own; an owner anyone's in the
    workspace. Revoking twice keeps the first time."""
    if token.workspace_id != actor.workspace_id:
        raise Http404("No API token with that id in this workspace.")
    if token.user_id != actor.user_id and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner of this workspace can revoke another member's API token.")
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    logger.info("catalog.api_token.revoked", extra={"token_id": token.pk, "by": actor.user_id})
    return token


#: How stale `last_used_at` may get: a script calling the API in a loop writes at most once a minute.
API_TOKEN_TOUCH_SECONDS = 60


def api_token_touch(*, token: ApiToken) -> None:
    """Record that a token was just used (at most once a minute per token)."""
    now = timezone.now()
    if token.last_used_at is not None and (now - token.last_used_at).total_seconds() < API_TOKEN_TOUCH_SECONDS:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
