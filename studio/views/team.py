"""Settings: members and roles, invitations, API tokens, the approval rule; and the page an
invitation link opens. Pages read through selectors and write through one service call; the
rules (who may do what, the last owner) live in catalog.services."""
from datetime import timedelta
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from catalog import selectors, services
from catalog.models import Role

from .base import workspace_page

SETTINGS_TEMPLATE = "studio/settings/settings.html"
#: The session's workspace, as studio.views.base.workspace_page reads it.
SESSION_WORKSPACE = "workspace"


def _expiry_choices() -> list[tuple[str, str]]:
    days = {7: "7 days", 30: "30 days", 90: "90 days", 365: "1 year", settings.VITRINE_API_TOKEN_DAYS: f"{settings.VITRINE_API_TOKEN_DAYS} days"}
    return [(str(n), label) for n, label in sorted(days.items())] + [("never", "Never")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name", help_text="Where the token is used, e.g. “CI uploads”.")
    expires = forms.ChoiceField(label="Expires after")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires"].choices = _expiry_choices()
        self.fields["expires"].initial = str(settings.VITRINE_API_TOKEN_DAYS)

    def expires_at(self):
        choice = self.cleaned_data["expires"]
        return None if choice == "never" else timezone.now() + timedelta(days=int(choice))


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MERCHANT, label="Role")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class NewAccountForm(forms.Form):
    password = forms.CharField(label="Choose a password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(label="Type it again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password_again") and data["password"] != data["password_again"]:
            self.add_error("password_again", "The two passwords differ. Type the same password twice.")
        return data


class SignInForm(forms.Form):
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


def _refusals(view):
    """A service's PermissionDenied (e.g. a merchant posting an owner's form) answers 403 with
    the service's words."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            return HttpResponseForbidden(str(exc) or "You cannot do that in this workspace.")

    return wrapper


def _back(anchor: str):
    return redirect(f"{reverse('settings')}#{anchor}")


def _context(request, **extra) -> dict:
    is_owner = request.membership.role == Role.OWNER
    context = {
        "nav": "settings",
        "is_owner": is_owner,
        "tokens": selectors.api_token_list(workspace=request.workspace, user=None if is_owner else request.user),
        "token_form": TokenForm(),
        "roles": Role.choices,
        "invitation_days": settings.VITRINE_INVITATION_DAYS,
    }
    if is_owner:
        members = list(selectors.member_list(workspace=request.workspace))
        context["members"] = members
        context["owner_count"] = sum(member.role == Role.OWNER for member in members)
        context["invitations"] = selectors.invitation_list(workspace=request.workspace)
        context["invite_form"] = InviteForm()
    context.update(extra)
    return context


def _page(request, status: int = 200, **extra):
    response = render(request, SETTINGS_TEMPLATE, _context(request, **extra), status=status)
    response["Cache-Control"] = "no-store"  # a new token's key may be on it
    return response


@workspace_page
def settings_page(request):
    return _page(request)


# API tokens ------------------------------------------------------------------------------


@require_POST
@workspace_page
def token_create(request):
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, status=400, token_form=form)
    try:
        token, key = services.api_token_create(membership=request.membership, name=form.cleaned_data["name"], expires_at=form.expires_at())
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error("name" if field == "name" else None, errors)
        return _page(request, status=400, token_form=form)
    # The key is on this response only (never stored, never in a redirect or the session).
    return _page(request, new_token=token, new_key=key)


@require_POST
@workspace_page
@_refusals
def token_revoke(request, token_id: int):
    user = None if request.membership.role == Role.OWNER else request.user
    token = selectors.api_token_get(workspace=request.workspace, token_id=token_id, user=user)
    services.api_token_revoke(actor=request.membership, token=token)
    messages.success(request, f"The token “{token.name}” ({token.key_prefix}…) is revoked; requests with it are refused from now on.")
    return _back("tokens")


# Members ---------------------------------------------------------------------------------


@require_POST
@workspace_page
@_refusals
def member_role(request, membership_id: int):
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles: owner, brand manager or merchant.")
        return _back("members")
    membership = selectors.member_get(workspace=request.workspace, membership_id=membership_id)
    try:
        membership = services.member_role_change(actor=request.membership, membership=membership, role=form.cleaned_data["role"])
    except services.TeamConflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
    return _back("members")


@require_POST
@workspace_page
@_refusals
def member_remove(request, membership_id: int):
    membership = selectors.member_get(workspace=request.workspace, membership_id=membership_id)
    try:
        services.member_remove(actor=request.membership, membership=membership)
    except services.TeamConflict as exc:
        messages.error(request, exc.message)
        return _back("members")
    if membership.user_id == request.user.pk:
        # They left: the session must not keep pointing at a workspace they are no longer in.
        request.session.pop(SESSION_WORKSPACE, None)
        return redirect("products")
    messages.success(request, f"{membership.user.email} was removed from {request.workspace.name}; their API tokens here are revoked.")
    return _back("members")


# Invitations -----------------------------------------------------------------------------


@require_POST
@workspace_page
@_refusals
def invitation_create(request):
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _page(request, status=400, invite_form=form)
    link_for = lambda token: request.build_absolute_uri(reverse("invite", kwargs={"token": token}))  # noqa: E731
    try:
        invitation = services.invitation_create(
            actor=request.membership, email=form.cleaned_data["email"], role=form.cleaned_data["role"], link_for=link_for
        )
    except services.TeamConflict as exc:
        form.add_error("email", exc.message)
        return _page(request, status=409, invite_form=form)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _page(request, status=400, invite_form=form)
    messages.success(
        request,
        f"Invitation sent to {invitation.email} as {invitation.get_role_display().lower()}. "
        f"The link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
    )
    return _back("invitations")


@require_POST
@workspace_page
@_refusals
def invitation_revoke(request, invitation_id: int):
    invitation = selectors.invitation_get(workspace=request.workspace, invitation_id=invitation_id)
    try:
        services.invitation_revoke(actor=request.membership, invitation=invitation)
    except services.TeamConflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The invitation to {invitation.email} is revoked; its link no longer works.")
    return _back("invitations")


# The approval rule -----------------------------------------------------------------------


@require_POST
@workspace_page
@_refusals
def approval_rule(request):
    allow = request.POST.get("allow_self_approval") == "on"
    services.workspace_settings_update(actor=request.membership, allow_self_approval=allow)
    if allow:
        messages.success(request, "Saved: brand managers and owners may now approve assets they submitted themselves.")
    else:
        messages.success(request, "Saved: an asset needs someone other than the person who submitted it to approve it.")
    return _back("approval")


# The invitation link ---------------------------------------------------------------------


@never_cache
def invite(request, token: str):
    """/invite/<token>/: a new person sets a password and is signed in; someone with an
    account signs in (or is already); either way they join with the invited role."""
    invitation = selectors.invitation_for_token(token=token)
    problem = services.invitation_problem(invitation)
    if problem is not None:
        status = 404 if problem.code == "invitation_unknown" else 410
        return render(request, "studio/invite_invalid.html", {"problem": problem}, status=status)

    signed_in = request.user if request.user.is_authenticated else None
    other_account = signed_in is not None and signed_in.email.lower() != invitation.email.lower()
    account_exists = selectors.account_exists(email=invitation.email)
    form_class = None if signed_in else (SignInForm if account_exists else NewAccountForm)
    form = form_class(request.POST or None) if form_class else None
    context = {"invitation": invitation, "form": form, "signed_in": signed_in, "other_account": other_account, "account_exists": account_exists}
    if request.method != "POST" or other_account:
        return render(request, "studio/invite.html", context)
    if form is not None and not form.is_valid():
        return render(request, "studio/invite.html", context, status=400)

    user, password = signed_in, None
    if user is None and account_exists:
        user = authenticate(request, email=invitation.email, password=form.cleaned_data["password"])
        if user is None:
            form.add_error("password", f"That is not the password of {invitation.email}. Check it and try again.")
            return render(request, "studio/invite.html", context, status=400)
    elif user is None:
        password = form.cleaned_data["password"]
    try:
        membership = services.invitation_accept(token=token, user=user, password=password)
    except services.InvitationRefused as exc:
        return render(request, "studio/invite_invalid.html", {"problem": exc}, status=400)
    except ValidationError as exc:
        form.add_error("password", exc.message_dict.get("password", exc.messages))
        return render(request, "studio/invite.html", context, status=400)
    if signed_in is None:
        login(request, membership.user, backend=getattr(user, "backend", "django.contrib.auth.backends.ModelBackend"))
    request.session[SESSION_WORKSPACE] = membership.workspace.slug
    return redirect("products")
