"""The Admin API client (REST and GraphQL) a connection talks through.

Every call has a timeout. The client paces itself from what the shop says about its limits
(REST `X-Shopify-Shop-Api-Call-Limit`, GraphQL `extensions.cost.throttleStatus`), honours
`Retry-After`, and retries 429/THROTTLED, 5xx and timeouts with bounded exponential backoff.
Other 4xx are terminal: `StorefrontRefused` carries words a merchant can act on.

A write has no idempotency key on the shop's side, so a write whose outcome is unknown (it
timed out after being sent, or a 5xx) is not resent here: `StorefrontAmbiguous` goes back to
the caller, which looks for its own marker before writing again."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

logger = logging.getLogger(__name__)

#: Requests left free in the REST bucket before the client waits for it to drain.
REST_HEADROOM = 2
REST_LEAK_PER_SECOND = 2.0
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0


class StorefrontError(Exception):
    """A call to the shop did not succeed; `message` is for the merchant."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class StorefrontRefused(StorefrontError):
    """A terminal 4xx (or GraphQL user error): retrying will not help."""


class StorefrontUnavailable(StorefrontError):
    """Still failing (429, 5xx, timeouts) after every retry."""


class StorefrontAmbiguous(StorefrontError):
    """A write was sent and its outcome is unknown: it may have been applied."""


_REFUSALS = {
    401: "The shop refused Vitrine's access token. Reconnect the storefront on the Storefronts page.",
    402: "The shop is frozen or unpaid; the storefront admin must settle it before Vitrine can write.",
    403: "The access token lacks a permission Vitrine needs ({scopes}). Reinstall the app granting read_products and write_products.",
    404: "The shop has no such item any more (it may have been deleted in the storefront admin).",
    423: "The shop is locked; try again once the storefront admin unlocks it.",
}


@dataclass
class Response:
    status: int
    headers: dict
    body: object
    links: dict = field(default_factory=dict)


class AdminClient:
    def __init__(
        self,
        *,
        base_url: str,
        access_token: str,
        timeout: float = 20.0,
        max_attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._token = access_token
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.session = session or requests.Session()
        self._rest_wait = 0.0
        self._graphql_wait = 0.0

    def __repr__(self) -> str:  # never the token
        return f"AdminClient({self.base_url!r})"

    # --- REST ---------------------------------------------------------------------------------
    def rest(self, method: str, path: str, *, params: dict | None = None, json: dict | None = None, url: str | None = None) -> Response:
        """One REST call; `url` (a `Link` next page) replaces path and params."""
        write = method.upper() not in {"GET", "HEAD"}
        target = url or f"{self.base_url}/{path.lstrip('/')}"
        for attempt in range(1, self.max_attempts + 1):
            if self._rest_wait > 0:
                self.sleep(self._rest_wait)
                self._rest_wait = 0.0
            raw = self._send(method, target, attempt=attempt, write=write, params=None if url else params, json=json)
            if raw is None:
                continue
            self._pace_rest(raw.headers.get("X-Shopify-Shop-Api-Call-Limit", ""))
            if raw.status_code == 429:
                self._wait_retry_after(raw, attempt)
                continue
            if raw.status_code >= 500:
                if write:
                    raise StorefrontAmbiguous(f"The shop answered {raw.status_code}; the change may or may not have been made.", status=raw.status_code)
                self._backoff(attempt, f"HTTP {raw.status_code}")
                continue
            if raw.status_code >= 400:
                raise self._refusal(raw)
            return Response(status=raw.status_code, headers=dict(raw.headers), body=_json(raw), links={rel: link["url"] for rel, link in raw.links.items()})
        raise StorefrontUnavailable("The shop kept refusing or failing the request; Vitrine will try again later.")

    # --- GraphQL ------------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict | None = None, *, write: bool = False) -> dict:
        """`data` of one GraphQL document; THROTTLED is waited out under HTTP 200 and 429 alike."""
        target = f"{self.base_url}/graphql.json"
        for attempt in range(1, self.max_attempts + 1):
            if self._graphql_wait > 0:
                self.sleep(self._graphql_wait)
                self._graphql_wait = 0.0
            raw = self._send("POST", target, attempt=attempt, write=write, json={"query": query, "variables": variables or {}})
            if raw is None:
                continue
            if raw.status_code >= 500:
                if write:
                    raise StorefrontAmbiguous(f"The shop answered {raw.status_code}; the change may or may not have been made.", status=raw.status_code)
                self._backoff(attempt, f"HTTP {raw.status_code}")
                continue
            body = _json(raw)
            cost = (body.get("extensions") or {}).get("cost") if isinstance(body, dict) else None
            errors = body.get("errors") if isinstance(body, dict) else None
            throttled = raw.status_code == 429 or any(((e or {}).get("extensions") or {}).get("code") == "THROTTLED" for e in (errors or []) if isinstance(e, dict))
            if throttled:
                wait = _throttle_wait(cost) or _retry_after(raw) or _backoff_seconds(attempt)
                logger.info("storefront.client.throttled", extra={"wait_seconds": wait, "api": "graphql"})
                self.sleep(wait)
                continue
            self._pace_graphql(cost)
            if raw.status_code >= 400:
                raise self._refusal(raw)
            if errors:
                message = "; ".join(str((e or {}).get("message", e)) for e in errors if e)
                raise StorefrontRefused(f"The shop refused the request: {message}", status=raw.status_code)
            return body.get("data") or {}
        raise StorefrontUnavailable("The shop kept throttling or failing the request; Vitrine will try again later.")

    # --- helpers ------------------------------------------------------------------------------
    def _send(self, method: str, target: str, *, attempt: int, write: bool, **kwargs):
        """The raw response, or None after a backoff when the request may simply be resent."""
        try:
            return self.session.request(method, target, headers=self._headers(), timeout=self.timeout, **kwargs)
        except requests.ConnectTimeout:
            self._backoff(attempt, "connect timeout")  # never reached the shop: safe to resend
            return None
        except (requests.Timeout, requests.ConnectionError) as exc:
            if write:
                raise StorefrontAmbiguous("The shop did not answer in time; the change may or may not have been made.") from exc
            self._backoff(attempt, "timeout")
            return None

    def _headers(self) -> dict:
        return {"X-Shopify-Access-Token": self._token, "Accept": "application/json"}

    def _pace_rest(self, header: str) -> None:
        used, _, size = header.partition("/")
        try:
            used_n, size_n = int(used), int(size)
        except ValueError:
            return
        over = used_n - (size_n - REST_HEADROOM)
        if over >= 0:
            # The bucket leaks at a fixed rate: wait until the next call leaves the headroom free.
            self._rest_wait = (over + 1) / REST_LEAK_PER_SECOND

    def _pace_graphql(self, cost: dict | None) -> None:
        wait = _throttle_wait(cost)
        if wait:
            self._graphql_wait = wait

    def _wait_retry_after(self, raw, attempt: int) -> None:
        wait = _retry_after(raw) or _backoff_seconds(attempt)
        logger.info("storefront.client.throttled", extra={"wait_seconds": wait, "api": "rest"})
        self.sleep(wait)

    def _backoff(self, attempt: int, reason: str) -> None:
        if attempt >= self.max_attempts:
            raise StorefrontUnavailable(f"The shop could not be reached ({reason}) after {attempt} tries; Vitrine will try again later.")
        wait = _backoff_seconds(attempt)
        logger.info("storefront.client.retry", extra={"reason": reason, "attempt": attempt, "wait_seconds": wait})
        self.sleep(wait)

    def _refusal(self, raw) -> StorefrontRefused:
        status = raw.status_code
        if status in _REFUSALS:
            return StorefrontRefused(_REFUSALS[status].format(scopes=raw.headers.get("X-Shopify-Access-Scopes", "read_products, write_products")), status=status)
        body = _json(raw)
        errors = body.get("errors") if isinstance(body, dict) else body
        return StorefrontRefused(f"The shop refused the request ({status}): {_words(errors)}", status=status)


def _json(raw):
    try:
        return raw.json()
    except ValueError:
        return {}


def _words(errors) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{key} {', '.join(map(str, value)) if isinstance(value, list) else value}" for key, value in errors.items())
    if isinstance(errors, list):
        return "; ".join(map(str, errors))
    return str(errors or "no reason given")


def _retry_after(raw) -> float:
    try:
        return max(0.0, float(raw.headers.get("Retry-After", "")))
    except ValueError:
        return 0.0


def _backoff_seconds(attempt: int) -> float:
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))


def _throttle_wait(cost: dict | None) -> float:
    """Seconds until the bucket holds the last query's cost again; 0 when it already does."""
    if not cost:
        return 0.0
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost.get("requestedQueryCost") or 0)
        available = float(status["currentlyAvailable"])
        restore = float(status["restoreRate"]) or 1.0
    except (KeyError, TypeError, ValueError):
        return 0.0
    return max(0.0, (needed - available) / restore)
