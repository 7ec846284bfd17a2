"""Credentials at rest: Fernet tokens under VITRINE_CREDENTIALS_KEYS.

The first key encrypts, every key decrypts (MultiFernet), so a key rotation is: put the new
key first, keep the old one listed, re-encrypt (`credentials_rotate`), then drop the old key."""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class CredentialsUnreadable(Exception):
    """A stored credential no configured key decrypts (a key was dropped too early)."""


def _fernets() -> MultiFernet:
    keys = [key.strip() for key in settings.VITRINE_CREDENTIALS_KEYS if key.strip()]
    if not keys:
        # Derived, so that `make run` needs no extra setting; a separate key (set in production)
        # means a leaked DJANGO_SECRET_KEY alone does not open the stored tokens.
        digest = hashlib.sha256(b"vitrine-credentials:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(plaintext: str) -> str:
    """The text as a Fernet token; "" stays "" (no credential)."""
    if not plaintext:
        return ""
    return _fernets().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernets().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsUnreadable("A stored storefront credential cannot be decrypted with VITRINE_CREDENTIALS_KEYS; was a key removed before rotation finished?") from exc


def rotate(token: str) -> str:
    """The same secret re-encrypted under the first (newest) key."""
    if not token:
        return ""
    try:
        return _fernets().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsUnreadable("A stored storefront credential cannot be decrypted with VITRINE_CREDENTIALS_KEYS.") from exc
