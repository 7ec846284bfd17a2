"""Sign-in lockout (django-axes): who is counted, until when they wait, and what they are told.

Failures are counted per account *and* client address (AXES_LOCKOUT_PARAMETERS in
config/settings/base.py): VITRINE_LOGIN_FAILURE_LIMIT wrong passwords within
VITRINE_LOGIN_COOLOFF_MINUTES lock that account from that address until the cool-off has
passed since the last counted failure. Attempts during the lockout, the right password
included, are refused and do not extend it, so the time we tell people stays true.
The same rules hold for the sign-in page, the token endpoint and invitation acceptance: all of
them go through `django.contrib.auth.authenticate(request, ...)`."""
from __future__ import annotations

import math
from datetime import datetime

from axes.helpers import get_client_ip_address, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone


def lockout_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The account a sign-in attempt is for, as axes counts it (AXES_USERNAME_CALLABLE).

    The page's form sends `username`, the API and invitations `email`; both are emails, and
    case must not give an attacker a fresh count ("Alice@" and "alice@" are one account)."""
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if value is None:
        data = getattr(request, "data", None) or request.POST
        value = data.get("email") or data.get("username")
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower()


def lockout_until(request: HttpRequest, credentials: dict | None = None) -> datetime:
    """When the lockout of this account from this address ends."""
    cool_off = get_cool_off(request)
    last = (
        AccessAttempt.objects.filter(username=lockout_username(request, credentials), ip_address=get_client_ip_address(request))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    return (last or timezone.now()) + cool_off


def lockout_message(until: datetime, *, now: datetime | None = None) -> str:
    """What a locked-out person reads: why, and when to try again, in words."""
    now = now or timezone.now()
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    at = timezone.localtime(until).strftime("%H:%M %Z")
    return (
        f"Signing in to this account from your address is paused after {settings.VITRINE_LOGIN_FAILURE_LIMIT} failed "
        f"attempts. Try again after {at} (in {minutes} minute{'s' if minutes != 1 else ''})."
    )


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the page a locked-out browser gets instead of the sign-in form
    (429). A JSON client gets the API's one error format instead."""
    until = lockout_until(request, credentials)
    message = lockout_message(until)
    retry_after = str(max(1, math.ceil((until - timezone.now()).total_seconds())))
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse({"error": {"code": "locked_out", "message": message}}, status=429)
    else:
        response = render(request, "lockout.html", {"message": message, "until": until}, status=429)
    response["Retry-After"] = retry_after
    return response
