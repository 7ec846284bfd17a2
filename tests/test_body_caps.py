"""Request bodies are capped before they are read (config/middleware.py).

Over real sockets: a client declares a huge body and streams it; the server must answer 413
having taken in at most a few MB (the kernel's socket buffers), not the whole body."""
import io
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParser

from config.middleware import RequestBodyCapMiddleware

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
#: What may pass into the server before it answers: its receive buffer and our send buffer.
FEW_MB = 4 * MiB
BOUNDARY = "vitrineboundary"


def _address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname, parsed.port


def stream_until_answered(address, head: bytes, body_bytes: int, *, chunked: bool = False, timeout: float = 60) -> tuple[bytes, int]:
    """Send `head`, then stream up to `body_bytes` of body (raw or chunk-framed) while
    watching for the answer. Returns (the response's head, body bytes the server took)."""
    sock = socket.create_connection(address)
    # A small send buffer of our own, so "sent" is close to what the server received.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.sendall(head)
    sock.setblocking(False)
    piece = b"\0" * (64 * 1024)
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    pending = b""
    sent = 0
    response = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and b"\r\n\r\n" not in response:
            readable, writable, _ = select.select([sock], [sock] if sent < body_bytes else [], [], 1)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                response += data
                continue
            if writable:
                pending = pending or frame
                try:
                    n = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    break
                pending = pending[n:]
                sent += n
        sock.setblocking(True)
        sock.settimeout(5)
        while b"\r\n\r\n" not in response:
            data = sock.recv(65536)
            if not data:
                break
            response += data
    except (ConnectionResetError, TimeoutError, OSError):
        pass
    finally:
        sock.close()
    print(f"body bytes taken before the answer: {sent:,}")
    return response, sent


def _head(method: str, path: str, headers: dict) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *[f"{k}: {v}" for k, v in headers.items()], "", ""]
    return "\r\n".join(lines).encode()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.fixture
def parses(monkeypatch):
    """Counts multipart parses: a body that reaches a form parser is spooled."""
    calls = []
    real = MultiPartParser.parse

    def counting(self):
        calls.append(self)
        return real(self)

    monkeypatch.setattr(MultiPartParser, "parse", counting)
    return calls


@pytest.mark.django_db(transaction=True)
def test_a_declared_200_mb_upload_is_answered_413_after_at_most_a_few_mb(live_server, parses):
    head = _head("POST", "/api/v1/photos/", {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(200 * 1000 * 1000)})

    response, sent = stream_until_answered(_address(live_server.url), head, 200 * 1000 * 1000)

    assert _status(response) == 413
    assert b"Content-Type: application/json" in response
    assert sent <= FEW_MB, f"the server took {sent:,} bytes before answering"
    assert parses == []


@pytest.mark.django_db(transaction=True)
def test_an_anonymous_60_mb_login_post_is_refused_without_spooling(live_server, settings, tmp_path, parses):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    # With a CSRF cookie the CSRF check reads the form, which used to spool the whole body.
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(60 * MiB),
        "Cookie": "csrftoken=" + "a" * 32,
    }

    response, sent = stream_until_answered(_address(live_server.url), _head("POST", "/login/", headers), 60 * MiB)

    assert _status(response) == 413
    assert b"Content-Type: text/html; charset=utf-8" in response
    assert sent <= FEW_MB
    assert parses == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_a_small_login_post_still_reaches_the_form_parser(live_server, parses):
    # The counter above can fail: an ordinary login form is parsed.
    body = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="username"\r\n\r\nx@y.z\r\n--{BOUNDARY}--\r\n'.encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(len(body)), "Cookie": "csrftoken=" + "a" * 32}
    sock = socket.create_connection(_address(live_server.url))
    sock.sendall(_head("POST", "/login/", headers) + body)
    response = sock.recv(65536)
    sock.close()

    assert _status(response) == 403  # the CSRF check read the form and found no token
    assert len(parses) == 1


def test_a_chunked_body_on_a_server_that_cannot_hand_it_over_is_answered_411(live_server):
    # Django's own server reads a body without Content-Length as empty: say so, do not drop it.
    head = _head("POST", "/api/v1/auth/token/", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})

    response, _ = stream_until_answered(_address(live_server.url), head, 64 * 1024, chunked=True)

    assert _status(response) == 411
    # The head is what arrives first; the JSON error body follows it.
    assert b"Content-Type: application/json" in response


@pytest.fixture
def gunicorn_server():
    """The shipped gunicorn configuration serving the app (the body caps' production path)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--config", "docker/gunicorn.conf.py"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("gunicorn did not start in 30 s")
    yield ("127.0.0.1", port)
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.parametrize(("path", "cap"), [("/login/", MiB), ("/api/v1/photos/", 50 * MiB + 256 * 1024)], ids=["login", "photo-upload"])
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_cap(gunicorn_server, path, cap):
    head = _head("POST", path, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Transfer-Encoding": "chunked"})

    response, sent = stream_until_answered(gunicorn_server, head, 200 * 1000 * 1000, chunked=True)

    assert _status(response) == 413
    # Read up to the cap, then refused: never much past it.
    assert cap < sent <= cap + FEW_MB, f"{sent:,} bytes sent for a cap of {cap:,}"


def test_a_content_length_over_the_cap_is_refused_by_the_shipped_gunicorn(gunicorn_server):
    head = _head("POST", "/api/v1/auth/token/", {"Content-Type": "application/json", "Content-Length": str(60 * MiB)})

    response, sent = stream_until_answered(gunicorn_server, head, 60 * MiB)

    assert _status(response) == 413
    assert sent <= FEW_MB


def _wsgi_request(*, path: str, body: bytes, chunked: bool, terminated: bool = True) -> WSGIRequest:
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_TYPE": "application/x-www-form-urlencoded",
    }
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = terminated
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    return WSGIRequest(environ)


def test_a_chunked_body_under_the_cap_is_handed_to_the_view_whole():
    seen = {}

    def view(request):
        seen["POST"] = request.POST.dict()
        return HttpResponse("ok")

    response = RequestBodyCapMiddleware(view)(_wsgi_request(path="/login/", body=b"username=a%40b.c&password=" + b"p" * 5000, chunked=True))

    assert response.status_code == 200
    assert seen["POST"] == {"username": "a@b.c", "password": "p" * 5000}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/api/v1/photos/", "upload"),
        ("/api/v1/cutouts/", "upload"),
        ("/api/v1/brand-kits/7/logo/", "upload"),
        ("/brand-kits/7/logo/", "upload"),
        ("/api/v1/brand-kits/7/loras/", "lora"),
        ("/brand-kits/7/loras/", "lora"),
        ("/login/", "request"),
        ("/api/v1/auth/token/", "request"),
        ("/api/v1/photos/3/", "request"),
        ("/api/v1/brand-kits/", "request"),
    ],
)
def test_each_route_gets_its_cap_and_one_byte_more_is_refused(settings, monkeypatch, path, kind):
    from brand import services as brand_services

    settings.VITRINE_REQUEST_MAX_BYTES = 1000
    settings.VITRINE_UPLOAD_MAX_BYTES = 3000
    settings.VITRINE_UPLOAD_OVERHEAD_BYTES = 100
    monkeypatch.setattr(brand_services, "LORA_MAX_BYTES", 5000)
    cap = {"request": 1000, "upload": 3100, "lora": 5100}[kind]
    reached = []

    def view(request):
        reached.append(request.path)
        return HttpResponse("ok")

    middleware = RequestBodyCapMiddleware(view)
    at_cap = middleware(_wsgi_request(path=path, body=b"x" * cap, chunked=False))
    over = middleware(_wsgi_request(path=path, body=b"x" * (cap + 1), chunked=False))
    chunked_over = middleware(_wsgi_request(path=path, body=b"x" * (cap + 1), chunked=True))

    assert (at_cap.status_code, over.status_code, chunked_over.status_code) == (200, 413, 413)
    assert reached == [path]


def test_the_413_answer_of_the_api_uses_the_error_format(settings):
    settings.VITRINE_UPLOAD_MAX_BYTES = 3000
    settings.VITRINE_UPLOAD_OVERHEAD_BYTES = 100

    response = RequestBodyCapMiddleware(lambda request: HttpResponse("ok"))(_wsgi_request(path="/api/v1/photos/", body=b"x" * 3101, chunked=False))

    assert response.status_code == 413
    assert json.loads(response.content) == {
        "error": {
            "code": "request_too_large",
            "message": "This request's body is 3,101 bytes; the limit for an upload here is 3,100 bytes. Nothing was stored.",
        }
    }
