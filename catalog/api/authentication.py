"""`Authorization: Token <key>`: the API's token authentication, over named, expiring,
revocable ApiToken rows (only the key's sha256 is stored)."""
from datetime import timezone as dt_timezone

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from catalog import selectors, services

KEYWORD = "Token"


def _when(moment) -> str:
    return f"{moment.astimezone(dt_timezone.utc):%Y-%m-%d %H:%M} UTC"


class ApiTokenAuthentication(BaseAuthentication):
    """Accepts `Authorization: Token <key>`. An unknown, revoked or expired key answers 401
    with a message that says which; a request without the header is left to the next class."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the header as 'Authorization: Token <key>', with the key and nothing else after 'Token'.", code="invalid_token")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("That API token is not valid: a key has only letters and digits.", code="invalid_token") from None
        token = selectors.api_token_for_key(key=key)
        if token is None:
            raise AuthenticationFailed(
                "That API token is not valid. Create one on the Settings page or with POST /api/v1/auth/token/.", code="invalid_token"
            )
        if token.revoked_at is not None:
            raise AuthenticationFailed(
                f"The API token “{token.name}” was revoked on {_when(token.revoked_at)}. Create a new one on the Settings page.",
                code="token_revoked",
            )
        if token.expires_at is not None and token.expires_at <= timezone.now():
            raise AuthenticationFailed(
                f"The API token “{token.name}” expired on {_when(token.expires_at)}. Create a new one on the Settings page.",
                code="token_expired",
            )
        if not token.user.is_active:
            raise AuthenticationFailed("The account this API token belongs to is deactivated.", code="account_inactive")
        services.api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return KEYWORD


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The security scheme in the OpenAPI document."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`. Create a key on the Settings page or with `POST /api/v1/auth/token/`; "
            "a key acts in the workspace it was created in, until it expires or is revoked.",
        }
