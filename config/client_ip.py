"""The client's address, the one every door counts by (login lockout, API throttles).

`X-Forwarded-For` is a list anyone can start: a client may send `X-Forwarded-For: 1.2.3.4`
and each proxy on the way appends the address it received the request from. Only the entries
appended by proxies we run can be believed, so we trust exactly VITRINE_TRUSTED_PROXIES hops
from the right: with 0 (the default) the header is ignored and REMOTE_ADDR is the client;
with 1 the last entry (what our one proxy saw) is; with 2 the one before it, and so on.

DRF's throttles compute the same thing from REST_FRAMEWORK["NUM_PROXIES"], which the settings
set to the same number (tests/test_security_doors.py checks the two agree); django-axes calls
this function through AXES_CLIENT_IP_CALLABLE."""
import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address of the client that sent `request`, believing only the trusted proxies' hops."""
    remote_addr = request.META.get("REMOTE_ADDR", "")
    hops = settings.VITRINE_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if hops <= 0 or not forwarded:
        return remote_addr
    entries = [entry.strip() for entry in forwarded.split(",")]
    # Fewer entries than proxies means a proxy did not append (misconfigured); the leftmost
    # one is then the furthest we can see, as DRF's NUM_PROXIES does.
    candidate = entries[-min(hops, len(entries))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        # Our own proxy wrote something that is not an address: count by the socket's peer
        # rather than by a string a client might have shaped.
        return remote_addr
