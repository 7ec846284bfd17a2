"""Reusable test helpers: `with running_fake_shop(**knobs) as shop:` and a pytest fixture."""

import contextlib

from fakeshop.server import FakeShop


@contextlib.contextmanager
def running_fake_shop(**kwargs):
    shop = FakeShop(**kwargs).start()
    try:
        yield shop
    finally:
        shop.stop()


def fake_shop_fixture():
    """Generator for a pytest fixture: `fake_shop = pytest.fixture(fake_shop_fixture)`."""
    with running_fake_shop(demo_products=3, seed=1) as shop:
        yield shop
