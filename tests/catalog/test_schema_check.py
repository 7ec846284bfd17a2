"""`manage.py schema_check`: a database from an older checkout is refused in one line."""
import pytest
from django.core.management import CommandError, call_command
from django.db.migrations.recorder import MigrationRecorder

pytestmark = pytest.mark.django_db


def test_a_database_made_by_this_checkout_passes():
    call_command("schema_check")


def test_a_database_with_migrations_this_checkout_lacks_is_refused_with_how_to_reset():
    MigrationRecorder.Migration.objects.create(app="generation", name="0001_initial")

    with pytest.raises(CommandError) as excinfo:
        call_command("schema_check")

    message = str(excinfo.value)
    assert "older checkout of Vitrine" in message
    assert "generation.0001_initial" in message
    assert "`make clean`" in message
    assert "\n" not in message
