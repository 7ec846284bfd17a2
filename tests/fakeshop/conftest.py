import pytest

from fakeshop.testing import fake_shop_fixture

fake_shop = pytest.fixture(fake_shop_fixture)
