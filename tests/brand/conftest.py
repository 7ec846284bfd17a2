import pytest

from brand.services import workspace_defaults_ensure


@pytest.fixture
def manager(membership):
    """The caller as a brand manager of a workspace with its default kit and presets."""
    membership.role = "brand_manager"
    membership.save()
    workspace_defaults_ensure(workspace=membership.workspace)
    return membership
