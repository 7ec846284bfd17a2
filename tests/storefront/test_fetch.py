"""The SSRF guard of storefront image fetches. Refusals are asserted to happen before any
connection: connecting fails the test. The only servers spoken to run on 127.0.0.1 in this
process; no test sends traffic off this machine."""
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storefront import fetch
from storefront.fetch import FetchFailed, FetchRefused, image_fetch
from tests.images import image_bytes

PNG = image_bytes("PNG", size=(32, 24))


@pytest.fixture(autouse=True)
def guard_settings(settings):
    settings.VITRINE_STOREFRONT_IMAGE_HOSTS = ["cdn.shopify.com", ".cdn.example", "images.test"]
    settings.VITRINE_STOREFRONT_FETCH_HTTPS_ONLY = True
    settings.VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK = False
    return settings


@pytest.fixture
def no_connections(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def resolving_to(monkeypatch, *addresses, calls=None):
    def getaddrinfo(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "url,words",
    [
        ("http://cdn.shopify.com/s/files/1/a.png", "https"),
        ("ftp://cdn.shopify.com/a.png", "https"),
        ("https://evil.example.com/a.png", "not one of them"),
        ("https://cdn.shopify.com.evil.example/a.png", "not one of them"),
        ("https://user:pw@cdn.shopify.com/a.png", "user name or password"),
        ("https:///a.png", "no host"),
    ],
)
def test_a_url_outside_the_rules_is_refused_before_any_lookup_or_connection(monkeypatch, no_connections, url, words):
    lookups = []
    resolving_to(monkeypatch, "151.101.1.1", calls=lookups)
    with pytest.raises(FetchRefused, match=words):
        image_fetch(url)
    assert lookups == []


@pytest.mark.parametrize(
    "addresses",
    [
        ("10.0.0.5",),
        ("127.0.0.1",),
        ("169.254.169.254",),  # cloud metadata
        ("192.168.1.10",),
        ("100.64.0.1",),  # carrier-grade NAT
        ("0.0.0.0",),
        ("::1",),
        ("fd00::1",),
        ("::ffff:10.0.0.1",),  # an IPv4-mapped private address
        ("151.101.1.1", "10.0.0.5"),  # one private answer among public ones is enough
    ],
)
def test_an_allowlisted_host_resolving_to_a_non_global_address_is_refused_before_connecting(monkeypatch, no_connections, addresses):
    resolving_to(monkeypatch, *addresses)
    with pytest.raises(FetchRefused, match="not on the public internet"):
        image_fetch("https://cdn.shopify.com/s/files/1/a.png")


def test_loopback_is_allowed_only_when_the_setting_says_so(monkeypatch, no_connections, guard_settings):
    resolving_to(monkeypatch, "127.0.0.1")
    guard_settings.VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK = True
    assert fetch.vet_url("https://images.test/a.png").address == "127.0.0.1"
    resolving_to(monkeypatch, "10.0.0.5")  # loopback, not private networks
    with pytest.raises(FetchRefused):
        fetch.vet_url("https://images.test/a.png")


def test_a_subdomain_entry_allows_subdomains_only_of_that_domain(monkeypatch, no_connections):
    resolving_to(monkeypatch, "151.101.1.1")
    assert fetch.vet_url("https://img.cdn.example/a.png").host == "img.cdn.example"
    with pytest.raises(FetchRefused):
        fetch.vet_url("https://img.cdn.example.evil.test/a.png")


# Against real servers on 127.0.0.1 (loopback allowed, http allowed, like tests and the demo) ----


class _Server:
    def __init__(self, handler):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append({"path": self.path, "host": self.headers.get("Host")})
                handler(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(guard_settings):
    guard_settings.VITRINE_STOREFRONT_FETCH_HTTPS_ONLY = False
    guard_settings.VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK = True
    guard_settings.VITRINE_STOREFRONT_IMAGE_HOSTS = ["127.0.0.1", "images.test"]
    servers = []

    def start(handler):
        servers.append(_Server(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def send_png(h, body=PNG, *, length=True):
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    if length:
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def test_an_allowed_image_is_fetched(serve):
    server = serve(send_png)
    fetched = image_fetch(f"http://127.0.0.1:{server.port}/cdn/a.png")
    assert (fetched.data, fetched.content_type) == (PNG, "image/png")


def test_the_connection_goes_to_the_vetted_address_with_no_second_lookup(serve, monkeypatch):
    """A rebinding resolver answers loopback first and a private address after: the fetch
    must use the first (vetted) answer and never ask again."""
    server = serve(send_png)
    answers, lookups = iter(["127.0.0.1", "10.0.0.5", "10.0.0.5"]), []

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    fetched = image_fetch(f"http://images.test:{server.port}/cdn/a.png")
    assert fetched.data == PNG
    assert lookups == ["images.test"]
    assert server.requests == [{"path": "/cdn/a.png", "host": f"images.test:{server.port}"}]


def test_a_redirect_to_another_host_is_refused_without_following_it(serve, monkeypatch):
    def redirect(h):
        h.send_response(302)
        h.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        h.send_header("Content-Length", "0")
        h.end_headers()

    server = serve(redirect)
    with pytest.raises(FetchRefused, match="169.254.169.254 is not one of them"):
        image_fetch(f"http://127.0.0.1:{server.port}/cdn/a.png")
    assert len(server.requests) == 1


def test_a_redirect_within_the_allowed_host_is_vetted_and_followed(serve):
    def handler(h):
        if h.path == "/old.png":
            h.send_response(301)
            h.send_header("Location", "/new.png")
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            send_png(h)

    server = serve(handler)
    fetched = image_fetch(f"http://127.0.0.1:{server.port}/old.png")
    assert fetched.data == PNG
    assert [r["path"] for r in server.requests] == ["/old.png", "/new.png"]


def test_endless_redirects_stop(serve):
    def loop(h):
        h.send_response(302)
        h.send_header("Location", h.path + "x")
        h.send_header("Content-Length", "0")
        h.end_headers()

    server = serve(loop)
    with pytest.raises(FetchRefused, match="too many times"):
        image_fetch(f"http://127.0.0.1:{server.port}/a")
    assert len(server.requests) == 4  # the first address and three redirects


@pytest.mark.parametrize("length", [True, False])
def test_an_image_over_the_size_cap_is_refused(serve, length):
    server = serve(lambda h: send_png(h, b"x" * 5000, length=length))
    with pytest.raises(FetchRefused, match="larger than"):
        image_fetch(f"http://127.0.0.1:{server.port}/big.png", max_bytes=4096)


def test_a_slow_host_hits_the_time_cap(serve):
    import time

    def slow(h):
        time.sleep(1.5)
        send_png(h)

    server = serve(slow)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="in time"):
        image_fetch(f"http://127.0.0.1:{server.port}/slow.png", timeout=0.4)
    assert time.monotonic() - started < 1.4


@pytest.mark.parametrize("status,error", [(404, FetchRefused), (503, FetchFailed)])
def test_errors_are_terminal_or_transient(serve, status, error):
    def answer(h):
        h.send_response(status)
        h.send_header("Content-Length", "0")
        h.end_headers()

    server = serve(answer)
    with pytest.raises(error):
        image_fetch(f"http://127.0.0.1:{server.port}/a.png")
