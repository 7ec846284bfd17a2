import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError

from storefront import crypto
from storefront.models import ConnectionStatus, StorefrontConnection
from storefront.services import connection_create, connection_disable, connection_webhook_secret_rotate, credentials_rotate
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db
TOKEN = "shpat_0123456789abcdef0123456789abcdef"


def test_the_token_is_stored_encrypted_and_reads_back(settings):
    connection = connection_create(workspace=WorkspaceFactory(), shop_domain="my-shop.myshopify.com", access_token=TOKEN)
    row = StorefrontConnection.objects.values().get(pk=connection.pk)
    assert TOKEN not in str(row)
    assert connection.api_base_url == "https://my-shop.myshopify.com/admin/api/2025-01"
    assert StorefrontConnection.objects.get(pk=connection.pk).access_token() == TOKEN
    assert TOKEN not in str(connection) and TOKEN not in repr(connection)


def test_key_rotation_keeps_old_rows_readable_then_rewrites_them(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.VITRINE_CREDENTIALS_KEYS = [old]
    connection = connection_create(workspace=WorkspaceFactory(), shop_domain="my-shop.myshopify.com", access_token=TOKEN)
    settings.VITRINE_CREDENTIALS_KEYS = [new, old]
    assert StorefrontConnection.objects.get(pk=connection.pk).access_token() == TOKEN
    assert credentials_rotate() == 1
    settings.VITRINE_CREDENTIALS_KEYS = [new]
    assert StorefrontConnection.objects.get(pk=connection.pk).access_token() == TOKEN
    settings.VITRINE_CREDENTIALS_KEYS = [old]
    with pytest.raises(crypto.CredentialsUnreadable):
        StorefrontConnection.objects.get(pk=connection.pk).access_token()


@pytest.mark.parametrize("shop,url", [("evil.com", ""), ("my-shop.myshopify.com", "http://10.0.0.5/admin"), ("my-shop.myshopify.com", "ftp://x")])
def test_bad_shop_or_address_is_refused(shop, url):
    with pytest.raises(ValidationError):
        connection_create(workspace=WorkspaceFactory(), shop_domain=shop, access_token=TOKEN, api_base_url=url)
    assert not StorefrontConnection.objects.exists()


def test_a_shop_belongs_to_one_workspace():
    connection_create(workspace=WorkspaceFactory(), shop_domain="my-shop.myshopify.com", access_token=TOKEN)
    with pytest.raises(ValidationError, match="another Vitrine workspace"):
        connection_create(workspace=WorkspaceFactory(), shop_domain="my-shop.myshopify.com", access_token="other")
    assert StorefrontConnection.objects.get().access_token() == TOKEN


def test_webhook_secret_rotation_accepts_the_previous_one():
    connection = connection_create(workspace=WorkspaceFactory(), shop_domain="my-shop.myshopify.com", access_token=TOKEN, webhook_secret="one")
    connection = connection_webhook_secret_rotate(connection=connection, new_secret="two")
    assert connection.webhook_secrets() == ["two", "one"]


def test_disable_erases_credentials():
    connection = connection_create(workspace=WorkspaceFactory(), shop_domain="my-shop.myshopify.com", access_token=TOKEN, webhook_secret="one")
    connection = connection_disable(connection=connection, reason="The app was uninstalled from the shop.")
    row = StorefrontConnection.objects.get(pk=connection.pk)
    assert row.status == ConnectionStatus.DISABLED
    assert (row.access_token_encrypted, row.webhook_secret_encrypted, row.previous_webhook_secret_encrypted) == ("", "", "")
