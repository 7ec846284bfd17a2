import pytest

from fakeshop.testing import running_fake_shop


@pytest.fixture
def demo_shop(settings):
    """The fake shop with two demo products, its media READY at the first poll; Vitrine's
    shop URL points at it."""
    with running_fake_shop(demo_products=2, seed=1, media_polls_to_ready=1) as fake:
        settings.VITRINE_STOREFRONT_SHOP_URL = fake.url
        settings.VITRINE_STOREFRONT_MEDIA_POLL_SECONDS = 0
        yield fake
