"""Locked doors (issue 14, item 4): sign-in lockout on the page and the token endpoint, the
client address behind proxies, the Content-Security-Policy header, /healthz for strangers,
and error text without server paths."""
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import BaseThrottle

from catalog.api.views import TokenThrottle
from catalog.errors_text import exception_text, without_paths
from catalog.lockout import lockout_message
from catalog.models import ApiToken
from catalog.services import worker_heartbeat_record
from config.client_ip import client_ip
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"  # tests/factories.py
LIMIT = 10  # VITRINE_LOGIN_FAILURE_LIMIT's default
ATTEMPTS = 40
LOCK_TEXT = re.compile(
    r"^Signing in to this account from your address is paused after 10 failed attempts\. "
    r"Try again after \d\d:\d\d UTC \(in 15 minutes\)\.$"
)


@pytest.fixture
def alice(db):
    return MembershipFactory(user=UserFactory(email="alice@example.test")).user


@pytest.fixture
def bob(alice):
    return MembershipFactory(workspace=alice.memberships.get().workspace, user=UserFactory(email="bob@example.test")).user


@pytest.fixture(autouse=True)
def _no_token_throttle(monkeypatch):
    """The token endpoint's per-address throttle (20/min) would answer before the lockout is
    reached; the throttle has its own test below."""
    monkeypatch.setattr(TokenThrottle, "rate", "10000/min")


def page_sign_in(client, email, password, **extra):
    return client.post("/login/", {"username": email, "password": password}, **extra)


def api_sign_in(client, email, password, **extra):
    return client.post("/api/v1/auth/token/", {"email": email, "password": password}, format="json", **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# The sign-in page ------------------------------------------------------------------------


def test_forty_wrong_passwords_lock_the_page_and_then_the_right_one_does_not_get_in(client, alice):
    statuses = [page_sign_in(client, alice.email, f"wrong-{n}").status_code for n in range(ATTEMPTS)]

    response = page_sign_in(client, alice.email, PASSWORD)

    assert statuses == [200] * (LIMIT - 1) + [429] * (ATTEMPTS - LIMIT + 1)
    assert response.status_code == 429
    assert "lockout.html" in [t.name for t in response.templates]
    text = response.content.decode()
    assert "Signing in is paused" in text
    message = re.search(r'<p class="error" role="alert">([^<]*)</p>', text).group(1)
    assert LOCK_TEXT.match(message), message
    assert 899 <= int(response["Retry-After"]) <= 900
    assert not signed_in(client)
    assert client.get("/products/").status_code == 302  # still signed out
    # Attempts refused during the lockout are not counted: the end time stays where it was.
    assert list(AccessAttempt.objects.values_list("username", "ip_address", "failures_since_start")) == [
        ("alice@example.test", "127.0.0.1", LIMIT)
    ]


def test_a_few_wrong_passwords_do_not_lock_and_the_right_one_signs_in(client, alice):
    for n in range(LIMIT - 1):
        page_sign_in(client, alice.email, f"wrong-{n}")

    response = page_sign_in(client, alice.email, PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)
    assert AccessAttempt.objects.count() == 0  # a success clears the count (AXES_RESET_ON_SUCCESS)


def test_rotating_x_forwarded_for_does_not_reset_the_page_count(client, alice):
    statuses = [
        page_sign_in(client, alice.email, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(ATTEMPTS)
    ]

    response = page_sign_in(client, alice.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert statuses == [200] * (LIMIT - 1) + [429] * (ATTEMPTS - LIMIT + 1)
    assert response.status_code == 429
    assert not signed_in(client)
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["127.0.0.1"]


def test_the_email_case_does_not_give_a_fresh_count(client, alice):
    for n in range(LIMIT):
        page_sign_in(client, ["ALICE@example.test", "Alice@Example.Test"][n % 2], "wrong")

    assert page_sign_in(client, alice.email, PASSWORD).status_code == 429
    assert not signed_in(client)


def test_another_account_from_the_same_address_is_not_locked(client, alice, bob):
    """Lockout is per account + address (no address-wide limit): a colleague behind the same
    office address still signs in after someone else's failures."""
    for n in range(ATTEMPTS):
        page_sign_in(client, alice.email, "wrong")

    response = page_sign_in(client, bob.email, PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)


def test_the_same_account_from_another_address_is_not_locked(client, alice):
    for n in range(ATTEMPTS):
        page_sign_in(client, alice.email, "wrong", REMOTE_ADDR="203.0.113.9")

    response = page_sign_in(client, alice.email, PASSWORD, REMOTE_ADDR="198.51.100.20")

    assert response.status_code == 302


def test_the_lock_opens_after_the_cool_off(client, alice):
    for n in range(LIMIT):
        page_sign_in(client, alice.email, "wrong")
    assert page_sign_in(client, alice.email, PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))

    assert page_sign_in(client, alice.email, PASSWORD).status_code == 302
    assert signed_in(client)


def test_the_lockout_message_says_when_in_words():
    now = datetime(2026, 3, 4, 9, 30, 10, tzinfo=dt_timezone.utc)

    assert lockout_message(now + timedelta(minutes=14, seconds=30), now=now) == (
        "Signing in to this account from your address is paused after 10 failed attempts. "
        "Try again after 09:44 UTC (in 15 minutes)."
    )
    assert lockout_message(now + timedelta(seconds=20), now=now).endswith("Try again after 09:30 UTC (in 1 minute).")


# The token endpoint ----------------------------------------------------------------------


def test_forty_wrong_passwords_lock_the_token_endpoint_and_then_the_right_one_gets_no_token(alice):
    client = APIClient()
    responses = [api_sign_in(client, alice.email, f"wrong-{n}") for n in range(ATTEMPTS)]

    response = api_sign_in(client, alice.email, PASSWORD)

    assert [r.status_code for r in responses] == [400] * (LIMIT - 1) + [429] * (ATTEMPTS - LIMIT + 1)
    assert responses[0].json()["error"]["message"] == "That email and password do not match an account."
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "locked_out"
    assert LOCK_TEXT.match(body["error"]["message"]), body["error"]["message"]
    assert 899 <= int(response["Retry-After"]) <= 900
    assert ApiToken.objects.count() == 0


def test_rotating_x_forwarded_for_does_not_reset_the_token_count(alice):
    client = APIClient()
    for n in range(ATTEMPTS):
        api_sign_in(client, alice.email, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 10.0.0.{n}")

    response = api_sign_in(client, alice.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "locked_out"
    assert ApiToken.objects.count() == 0


def test_the_page_and_the_api_share_one_count(client, alice):
    for n in range(LIMIT - 1):
        page_sign_in(client, alice.email, "wrong")

    first = api_sign_in(APIClient(), alice.email, "wrong")
    second = api_sign_in(APIClient(), alice.email, PASSWORD)

    assert (first.status_code, second.status_code) == (429, 429)
    assert ApiToken.objects.count() == 0


@pytest.fixture
def fresh_throttle():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()  # a failed run must not leave the next tests throttled


def test_the_token_throttle_is_not_bypassed_by_rotating_x_forwarded_for(alice, monkeypatch, fresh_throttle):
    monkeypatch.setattr(TokenThrottle, "rate", "20/min")
    client = APIClient()
    statuses = [
        api_sign_in(client, f"nobody{n}@example.test", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(21)
    ]

    assert statuses == [400] * 20 + [429]


# The client address behind proxies -------------------------------------------------------


def _request(remote_addr="10.0.0.2", forwarded=None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, None, "10.0.0.2"),
        (0, "203.0.113.5", "10.0.0.2"),  # no trusted proxy: the header is the client's own words
        (1, None, "10.0.0.2"),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "1.1.1.1, 2.2.2.2, 203.0.113.5", "203.0.113.5"),  # the last hop: what our proxy saw
        (2, "1.1.1.1, 203.0.113.5, 10.0.0.9", "203.0.113.5"),
        (3, "203.0.113.5, 10.0.0.9", "203.0.113.5"),  # fewer hops than proxies: the leftmost
        (1, "not-an-address", "10.0.0.2"),
    ],
)
def test_client_ip_trusts_exactly_the_configured_hops(settings, hops, forwarded, expected):
    settings.VITRINE_TRUSTED_PROXIES = hops

    assert client_ip(_request(forwarded=forwarded)) == expected


@pytest.mark.parametrize("hops", [0, 1, 2])
@pytest.mark.parametrize("forwarded", [None, "203.0.113.5", "1.1.1.1, 203.0.113.5", "1.1.1.1,2.2.2.2, 203.0.113.5"])
def test_drf_throttles_count_by_the_same_address(settings, hops, forwarded):
    settings.VITRINE_TRUSTED_PROXIES = hops
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": hops}
    from django.conf import settings as live

    request = _request(forwarded=forwarded)

    assert live.REST_FRAMEWORK["NUM_PROXIES"] == hops
    assert BaseThrottle().get_ident(request) == client_ip(request)


def test_the_shipped_settings_give_drf_the_same_number_of_proxies():
    from django.conf import settings

    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.VITRINE_TRUSTED_PROXIES == 0
    assert settings.AXES_CLIENT_IP_CALLABLE == "config.client_ip.client_ip"


def test_behind_one_proxy_the_lockout_counts_the_last_hop(client, alice, settings):
    settings.VITRINE_TRUSTED_PROXIES = 1
    for n in range(ATTEMPTS):
        # The attacker writes anything on the left; our proxy appends the real address.
        page_sign_in(client, alice.email, "wrong", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.66")

    locked = page_sign_in(client, alice.email, PASSWORD, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.66")
    elsewhere = page_sign_in(client, alice.email, PASSWORD, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.200")

    assert locked.status_code == 429
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["203.0.113.66"]
    assert elsewhere.status_code == 302


# Content-Security-Policy -----------------------------------------------------------------


def _policy(response) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in response["Content-Security-Policy"].split("; ")}


def test_every_page_gets_a_strict_policy(client):
    policy = _policy(client.get("/login/"))

    assert policy == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "style-src-elem": "'self'",
        "style-src-attr": "'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "frame-ancestors": "'none'",
        "form-action": "'self'",
    }


def test_the_api_docs_style_carries_the_nonce_and_its_script_is_a_separate_file(client, user):
    client.force_login(user)

    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")

    nonce = re.search(r"'nonce-([^']+)'", _policy(page)["style-src-elem"]).group(1)
    html = page.content.decode()
    assert f'<style nonce="{nonce}">' in html
    assert '<script src="/api/docs/?script="></script>' in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


def test_no_template_has_an_inline_script_or_event_handler():
    inline, handlers = [], []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        inline += [f"{path.name}: {m}" for m in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text)]
        handlers += [f"{path.name}: {m}" for m in re.findall(r"<[a-z][^>]*\son[a-z]+\s*=", text)]

    assert (inline, handlers) == ([], [])


# /healthz --------------------------------------------------------------------------------


@pytest.fixture
def health(settings):
    from config.health import storage_check

    settings.VITRINE_HEALTH_TOKEN = "probe-secret"
    storage_check.forget()
    worker_heartbeat_record(hostname="celery@gpu-node-7", queues=["gpu"])
    yield
    storage_check.forget()


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-secret", "Bearer ", "Token probe-secret", "probe-secret", "Bearer probe-secret-and-more"]
)
def test_a_stranger_gets_the_status_line_only(client, health, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}

    response = client.get("/healthz", **extra)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert b"gpu-node-7" not in response.content
    assert b"postgresql" not in response.content and b"sqlite" not in response.content


def test_a_signed_in_member_who_is_not_staff_gets_the_status_line_only(client, health, user):
    client.force_login(user)

    assert client.get("/healthz").json() == {"status": "ok"}


def test_the_health_token_and_a_staff_session_get_the_details(client, health, user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])

    with_token = client.get("/healthz", HTTP_AUTHORIZATION="Bearer probe-secret").json()
    client.force_login(user)
    staff = client.get("/healthz").json()

    for body in (with_token, staff):
        assert set(body) == {"status", "checks", "jobs"}
        assert body["checks"]["workers"]["workers"] == [{"hostname": "celery@gpu-node-7", "queues": ["gpu"]}]


def test_without_a_configured_token_no_bearer_gets_details(client, health, settings):
    settings.VITRINE_HEALTH_TOKEN = ""

    assert client.get("/healthz", HTTP_AUTHORIZATION="Bearer ").json() == {"status": "ok"}


def test_a_stranger_still_sees_the_503_when_storage_fails(client, health, monkeypatch):
    from django.core.files.storage import default_storage

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system at /work/main/var/media")

    monkeypatch.setattr(default_storage, "save", refuse)

    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (503, {"status": "down"})


def test_the_storage_check_writes_at_most_once_per_interval(client, health, settings, monkeypatch):
    from django.core.files.storage import default_storage

    saves = []
    real_save = default_storage.save
    monkeypatch.setattr(default_storage, "save", lambda *a, **k: saves.append(a[0]) or real_save(*a, **k))
    settings.VITRINE_HEALTH_STORAGE_SECONDS = 60

    bodies = [client.get("/healthz", HTTP_AUTHORIZATION="Bearer probe-secret").json() for _ in range(5)]
    assert len(saves) == 1
    assert bodies[0]["checks"]["storage"]["checked_seconds_ago"] == 0.0
    assert all(b["checks"]["storage"]["ok"] for b in bodies)

    settings.VITRINE_HEALTH_STORAGE_SECONDS = 0  # the interval has passed
    client.get("/healthz")
    assert len(saves) == 2


def test_a_failed_storage_check_is_remembered_too(client, health, monkeypatch):
    from django.core.files.storage import default_storage

    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise PermissionError("read-only file system")

    monkeypatch.setattr(default_storage, "save", refuse)

    statuses = [client.get("/healthz").status_code for _ in range(3)]

    assert (statuses, len(calls)) == ([503, 503, 503], 1)


# Error text ------------------------------------------------------------------------------


def test_a_file_not_found_error_keeps_only_the_file_name():
    exc = FileNotFoundError(2, "No such file or directory", "/work/main/var/media/photos/3f/bottle.png")

    assert exception_text(exc) == "No such file or directory: 'bottle.png'"


def test_an_exception_opened_for_real_names_no_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        (tmp_path / "models" / "sdxl.safetensors").open()

    assert exception_text(caught.value) == "No such file or directory: 'sdxl.safetensors'"
    assert str(tmp_path) in str(caught.value)  # what it would have shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The cutout could not be made: [Errno 2] No such file or directory: '/work/main/var/media/a/b.png'",
         "The cutout could not be made: [Errno 2] No such file or directory: 'b.png'"),
        ("The scene model 'sdxl' is not installed on this worker: /work/main/var/models/sdxl/model_index.json is missing.",
         "The scene model 'sdxl' is not installed on this worker: model_index.json is missing."),
        ('Traceback (most recent call last):\n  File "/usr/lib/python3/dist-packages/PIL/Image.py", line 3400, in open\n'
         "PIL.UnidentifiedImageError: cannot identify image file '/tmp/vitrine/upload.bin'",
         "PIL.UnidentifiedImageError: cannot identify image file 'upload.bin'"),
        ("Weights at C:\\models\\lora\\style.safetensors\nare damaged", "Weights at style.safetensors are damaged"),
        ("Photo 3/4 is ready; see https://shop.example/a/b", "Photo 3/4 is ready; see https://shop.example/a/b"),
    ],
)
def test_error_text_never_shows_server_paths_or_tracebacks(text, expected):
    assert without_paths(text) == expected


def test_a_failed_job_row_shows_no_server_path(workspace):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from catalog.jobs import JobStatus, job_fail
    from catalog.models import PhotoJob
    from catalog.services import photo_upload
    from tests.images import image_bytes

    photo = photo_upload(workspace=workspace, file=SimpleUploadedFile("bottle.jpg", image_bytes("JPEG", size=(64, 48)))).photo
    job = PhotoJob.objects.create(workspace=workspace, photo=photo, kind="cutout", status=JobStatus.RUNNING)

    job_fail(job=job, error="The cutout could not be made: [Errno 2] No such file or directory: '/work/main/var/media/photos/bottle.png'")

    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "The cutout could not be made: [Errno 2] No such file or directory: 'bottle.png'")
