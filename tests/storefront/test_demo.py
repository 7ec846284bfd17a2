"""What `make run` uses to put the fake storefront next to the app: the port probe, the demo
photos, and `manage.py storefront_demo` connecting the demo workspace (never over a real shop)."""
import io
import socket
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from catalog.models import Workspace
from fakeshop.demo import demo_photo
from fakeshop.testing import running_fake_shop
from storefront import services
from storefront.models import ConnectionMethod, StorefrontConnection

pytestmark = pytest.mark.django_db


def _probe(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakeshop.probe", *map(str, args)], capture_output=True, text=True, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_probe_tells_a_fake_shop_a_free_port_and_a_port_taken_by_something_else():
    with running_fake_shop() as shop:
        found = _probe(shop.port, "--env")
    free = _probe(_free_port())
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        taken = _probe(other.getsockname()[1])

    assert (found.returncode, free.returncode, taken.returncode) == (0, 1, 2)
    assert f"export VITRINE_STOREFRONT_SHOP_URL={shop.url};" in found.stdout
    assert f"export VITRINE_STOREFRONT_CLIENT_SECRET={shop.client_secret};" in found.stdout
    assert "export VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK=true;" in found.stdout


@pytest.mark.parametrize("number", [1, 2])
def test_demo_photos_are_product_shots_on_white_the_shop_accepts(number):
    data = demo_photo(number)

    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (640, 480), "RGB")
        assert image.getpixel((5, 5))[0] >= 244  # the white sweep around
        centre = image.getpixel((320, 300))
        assert max(centre) - min(centre) > 60  # a coloured product in the middle
    assert demo_photo(number) == data  # the same demo every time


@pytest.fixture
def demo_workspace():
    call_command("seed_demo", stdout=io.StringIO())
    return Workspace.objects.get(slug="demo")


def test_storefront_demo_connects_the_demo_workspace_to_the_fake(demo_workspace):
    with running_fake_shop(demo_products=1) as shop:
        out = io.StringIO()
        call_command("storefront_demo", fakeshop=shop.url, stdout=out)
        call_command("storefront_demo", fakeshop=shop.url, stdout=io.StringIO())  # every `make run` again

    connection = StorefrontConnection.objects.get()
    assert (connection.workspace, connection.shop_domain, connection.api_base_url) == (demo_workspace, shop.shop, shop.admin_url)
    assert connection.access_token() == shop.token
    assert connection.webhook_secrets()[0] == shop.client_secret  # the fake signs its webhooks with it
    assert shop.token not in out.getvalue()
    assert f"connected to the fake storefront {shop.shop}" in out.getvalue()


def test_storefront_demo_leaves_a_real_shop_alone(demo_workspace):
    services.connection_create(workspace=demo_workspace, shop_domain="real-shop.myshopify.com", access_token="shpat_real", method=ConnectionMethod.OAUTH)
    with running_fake_shop() as shop:
        out = io.StringIO()
        call_command("storefront_demo", fakeshop=shop.url, stdout=out)

    assert list(StorefrontConnection.objects.values_list("shop_domain", flat=True)) == ["real-shop.myshopify.com"]
    assert "connected to real-shop.myshopify.com; the fake storefront is left out" in out.getvalue()


def test_storefront_demo_says_when_the_fake_does_not_answer(demo_workspace):
    with pytest.raises(CommandError, match="does not answer"):
        call_command("storefront_demo", fakeshop=f"http://127.0.0.1:{_free_port()}", stdout=io.StringIO())
    with pytest.raises(CommandError, match="runs on this machine"):
        call_command("storefront_demo", fakeshop="http://example.com:8765", stdout=io.StringIO())
    assert not StorefrontConnection.objects.exists()
