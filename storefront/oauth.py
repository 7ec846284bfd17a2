"""The OAuth authorization-code flow of a non-embedded app (STOREFRONT.md, "OAuth").

`oauth_begin` makes the shop's authorize URL with a fresh random `state`; the caller keeps the
state (the page keeps it in the session). `oauth_complete` checks the callback — `state`, the
shop pattern, the query HMAC with the app's client secret — before it spends the code, then
exchanges the code for a token and connects the shop. Every refusal is a ValidationError with
words a merchant can act on, and nothing is stored unless every check passed. The token never
leaves this module except into `services.connection_create`, which encrypts it."""
from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from catalog.models import User, Workspace

from . import services
from .services import shop_base_url
from .models import ConnectionMethod, StorefrontConnection
from .signatures import oauth_query_valid, shop_domain_valid

logger = logging.getLogger(__name__)

SHOP_DOMAIN_HELP = "A shop domain looks like your-shop.myshopify.com (lowercase letters, digits and dashes)."


@dataclass(frozen=True)
class OAuthStart:
    authorize_url: str
    state: str
    shop_domain: str


def oauth_configured() -> bool:
    return bool(settings.VITRINE_STOREFRONT_CLIENT_ID and settings.VITRINE_STOREFRONT_CLIENT_SECRET)


def _shop_checked(shop_domain: str) -> str:
    shop_domain = (shop_domain or "").strip().lower()
    if not shop_domain_valid(shop_domain):
        raise ValidationError({"shop_domain": SHOP_DOMAIN_HELP})
    return shop_domain


def oauth_begin(*, shop_domain: str, redirect_uri: str) -> OAuthStart:
    """The authorize URL to send the person to, and the `state` to expect back."""
    if not oauth_configured():
        raise ValidationError("OAuth is not set up on this Vitrine (VITRINE_STOREFRONT_CLIENT_ID and _SECRET); connect with a custom app's access token instead.")
    shop_domain = _shop_checked(shop_domain)
    state = secrets.token_urlsafe(24)
    query = urlencode({
        "client_id": settings.VITRINE_STOREFRONT_CLIENT_ID,
        "scope": settings.VITRINE_STOREFRONT_SCOPES,
        "redirect_uri": redirect_uri,
        "state": state,
    })
    return OAuthStart(authorize_url=f"{shop_base_url(shop_domain)}/admin/oauth/authorize?{query}", state=state, shop_domain=shop_domain)


@sensitive_variables("token", "body", "response")  # an error report shows locals: never the token
def _token_exchange(*, shop_domain: str, code: str) -> tuple[str, str]:
    """`POST /admin/oauth/access_token` → (access token, granted scopes)."""
    try:
        response = requests.post(
            f"{shop_base_url(shop_domain)}/admin/oauth/access_token",
            json={"client_id": settings.VITRINE_STOREFRONT_CLIENT_ID, "client_secret": settings.VITRINE_STOREFRONT_CLIENT_SECRET, "code": code},
            headers={"Accept": "application/json"},
            timeout=settings.VITRINE_STOREFRONT_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        logger.warning("storefront.oauth.exchange_unreachable", extra={"shop": shop_domain, "error": type(exc).__name__})
        raise ValidationError("The shop could not be reached to finish connecting. Try “Connect with OAuth” again in a minute.") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(token, str) or not token:
        logger.warning("storefront.oauth.exchange_refused", extra={"shop": shop_domain, "status": response.status_code})
        raise ValidationError("The shop did not accept the authorization (the code may have expired or been used). Start “Connect with OAuth” again.")
    scope = body.get("scope") if isinstance(body.get("scope"), str) else ""
    return token, scope


@sensitive_variables("token")
def oauth_complete(*, workspace: Workspace, query: Mapping[str, str], expected_state: str, expected_shop: str = "", created_by: User | None = None) -> StorefrontConnection:
    """Check the callback, spend the code, connect the shop. Refused: ValidationError, nothing stored."""
    state = query.get("state", "")
    # The state ties the callback to the person who pressed "Connect" in this browser session.
    if not expected_state or not state or not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise ValidationError("This authorization link does not belong to a connection you started here (or it was already used). Start “Connect with OAuth” again.")
    shop_domain = (query.get("shop") or "").strip().lower()
    if not shop_domain_valid(shop_domain):
        raise ValidationError("The shop in the authorization answer is not a valid shop domain; nothing was connected.")
    if expected_shop and shop_domain != expected_shop:
        raise ValidationError(f"The authorization came back from {shop_domain}, not from {expected_shop} you asked to connect; nothing was connected.")
    if not oauth_query_valid(query, secret=settings.VITRINE_STOREFRONT_CLIENT_SECRET):
        logger.warning("storefront.oauth.bad_hmac", extra={"shop": shop_domain})
        raise ValidationError("The authorization answer is not signed by the shop (its HMAC does not match); nothing was connected.")
    code = query.get("code", "")
    if not code:
        raise ValidationError("The shop's answer carries no authorization code; start “Connect with OAuth” again.")
    token, scopes = _token_exchange(shop_domain=shop_domain, code=code)
    connection = services.connection_create(
        workspace=workspace,
        shop_domain=shop_domain,
        access_token=token,
        method=ConnectionMethod.OAUTH,
        api_base_url=services.default_api_base_url(shop_domain),
        scopes=scopes or settings.VITRINE_STOREFRONT_SCOPES,
        created_by=created_by,
    )
    logger.info("storefront.oauth.connected", extra={"connection_id": connection.pk, "shop": shop_domain})
    return connection
