"""The two signatures a shop sends: the OAuth callback's query HMAC and a webhook's body HMAC.
Both are compared in constant time."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]\.myshopify\.com$")


def shop_domain_valid(shop: str) -> bool:
    return bool(SHOP_DOMAIN.fullmatch(shop or ""))


def oauth_query_hmac(query: Mapping[str, str], *, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of the query without `hmac`: `k=v` pairs sorted, joined by `&`."""
    message = "&".join(f"{key}={value}" for key, value in sorted((k, v) for k, v in query.items() if k != "hmac"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def oauth_query_valid(query: Mapping[str, str], *, secret: str) -> bool:
    given = query.get("hmac", "")
    if not secret or not given:
        return False
    return hmac.compare_digest(oauth_query_hmac(query, secret=secret), given.lower())


def webhook_hmac(body: bytes, *, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_valid(body: bytes, header: str, *, secrets: Iterable[str]) -> bool:
    """True when the raw body was signed with any of the secrets (the previous one counts
    during a rotation). Every secret is tried, so the time does not say which one matched."""
    if not header:
        return False
    matched = False
    for secret in secrets:
        if secret:
            matched |= hmac.compare_digest(webhook_hmac(body, secret=secret).encode(), header.encode())
    return matched
