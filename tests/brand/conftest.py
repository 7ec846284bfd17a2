import pytest

from brand.services import workspace_defaults_ensure
from generation.registry import DEFAULT_MODELS_DIR, MODELS


@pytest.fixture
def manager(membership):
    """The caller as a brand manager of a workspace with its default kit and presets."""
    membership.role = "brand_manager"
    membership.save()
    workspace_defaults_ensure(workspace=membership.workspace)
    return membership


@pytest.fixture(autouse=True)
def models_root(tmp_path, monkeypatch):
    """A models root where every registered model counts as installed (its folder exists;
    the bundled backdrop-mini is the real one), so presets may name any of them. A test
    removes a folder to see what an uninstalled model does."""
    root = tmp_path / "models"
    root.mkdir()
    for name, spec in MODELS.items():
        if name == "backdrop-mini":
            (root / spec.folder).symlink_to(DEFAULT_MODELS_DIR / spec.folder, target_is_directory=True)
        else:
            (root / spec.folder).mkdir()
    monkeypatch.setenv("VITRINE_MODELS_DIR", str(root))
    return root
