"""Fetching a product image from a shop's CDN, guarded against server-side request forgery.

A shop (or whoever forged a webhook body that passed no check) names the URL, so the address
is vetted before any connection is made: https only (unless the setting allows http for the
loopback fake), only allowlisted CDN hosts, and every address the host resolves to must be
global — a host that resolves to one private address among public ones is refused. The
connection then goes to the vetted address itself (no second DNS lookup a rebinding server
could answer differently); TLS still checks the certificate against the host name. A redirect
is vetted like the first URL; bytes and time are capped."""
from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024


class FetchRefused(Exception):
    """The URL or its answer is not one Vitrine takes; fetching again will not help."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class FetchFailed(Exception):
    """A transient failure (timeout, connection reset, 5xx): a later sync tries again."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Fetched:
    url: str
    data: bytes
    content_type: str


def _host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().strip()
        if entry.startswith(".") and (host.endswith(entry) or host == entry[1:]):
            return True
        if host == entry:
            return True
    return False


def _address_ok(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if ip.is_global and not ip.is_multicast:
        return True
    return bool(settings.VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK and ip.is_loopback)


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


def vet_url(url: str) -> _Target:
    """Check a URL against every rule and resolve it; raises FetchRefused. Makes no connection
    (name resolution only)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused("The image address is not a valid URL.") from None
    scheme = parts.scheme.lower()
    allowed_schemes = {"https"} if settings.VITRINE_STOREFRONT_FETCH_HTTPS_ONLY else {"https", "http"}
    if scheme not in allowed_schemes:
        raise FetchRefused(f"Images are fetched over {' or '.join(sorted(allowed_schemes))} only; this address uses {scheme or 'no scheme'}.")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("The image address carries a user name or password; Vitrine does not fetch such addresses.")
    host = (parts.hostname or "").lower()
    if not host:
        raise FetchRefused("The image address has no host.")
    if not _host_allowed(host, settings.VITRINE_STOREFRONT_IMAGE_HOSTS):
        raise FetchRefused(f"Images are fetched only from the shop's CDN ({', '.join(settings.VITRINE_STOREFRONT_IMAGE_HOSTS)}); {host} is not one of them.")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchFailed(f"The image host {host} could not be resolved.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise FetchFailed(f"The image host {host} could not be resolved.")
    bad = [address for address in addresses if not _address_ok(address)]
    if bad:
        # One non-global answer is enough: a resolver that mixes them is the attack.
        raise FetchRefused(f"The image host {host} resolves to an address that is not on the public internet ({bad[0]}); Vitrine does not fetch from it.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def _connect(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to a numeric address, with no name resolution at all (not even the
    numeric getaddrinfo `socket.create_connection` does)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the vetted address; the Host header still names the host."""

    def __init__(self, target: _Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = _connect(self._address, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above over TLS: the certificate is verified against the host name (SNI too)."""

    def __init__(self, target: _Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self):
        sock = _connect(self._address, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def image_fetch(url: str, *, max_bytes: int | None = None, timeout: float | None = None) -> Fetched:
    """The bytes behind an image URL of a shop, under every guard of this module. Raises
    FetchRefused (terminal, in words) or FetchFailed (transient)."""
    max_bytes = settings.VITRINE_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
    timeout = settings.VITRINE_STOREFRONT_FETCH_TIMEOUT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    current = url
    for _ in range(settings.VITRINE_STOREFRONT_FETCH_MAX_REDIRECTS + 1):
        target = vet_url(current)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed("Fetching the image took too long.")
        connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        connection = connection_class(target, timeout=remaining)
        try:
            connection.request("GET", target.path, headers={"Accept": "image/*", "User-Agent": "Vitrine storefront import"})
            response = connection.getresponse()
            if response.status in _REDIRECTS:
                location = response.getheader("Location") or ""
                if not location:
                    raise FetchRefused(f"The image address answered a redirect ({response.status}) without a location.")
                current = urljoin(current, location)
                continue  # vetted again at the top of the loop, like the first address
            if response.status >= 500:
                raise FetchFailed(f"The image host answered {response.status}.")
            if response.status != 200:
                raise FetchRefused(f"The image host answered {response.status} for this image.")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchRefused(f"The image is larger than {max_bytes // (1024 * 1024)} MB, the upload limit.")
            data = _read_capped(response, max_bytes=max_bytes, deadline=deadline)
            return Fetched(url=current, data=data, content_type=response.getheader("Content-Type") or "")
        except (TimeoutError, socket.timeout):
            raise FetchFailed("The image host did not answer in time.") from None
        except ssl.SSLError as exc:
            raise FetchRefused(f"The image host's TLS certificate was not accepted ({exc.reason or 'TLS error'}).") from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchFailed(f"The image could not be downloaded ({exc.__class__.__name__}).") from None
        finally:
            connection.close()
    raise FetchRefused("The image address redirected too many times.")


def _read_capped(response, *, max_bytes: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchFailed("Downloading the image took too long.")
        chunk = response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise FetchRefused(f"The image is larger than {max_bytes // (1024 * 1024)} MB, the upload limit.")
        chunks.append(chunk)
