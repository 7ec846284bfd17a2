"""Reads of brand kits and presets, scoped to the caller's workspace."""
from django.db.models import QuerySet

from catalog.models import Workspace
from catalog.selectors import get_or_404

from .models import BrandKit, ScenePreset


def brand_kit_list(*, workspace: Workspace) -> QuerySet[BrandKit]:
    return BrandKit.objects.filter(workspace=workspace).prefetch_related("loras")


def brand_kit_get(*, workspace: Workspace, kit_id) -> BrandKit:
    return get_or_404(brand_kit_list(workspace=workspace), kit_id)


def preset_list(*, workspace: Workspace) -> QuerySet[ScenePreset]:
    return ScenePreset.objects.filter(workspace=workspace)


def preset_get(*, workspace: Workspace, preset_id) -> ScenePreset:
    return get_or_404(preset_list(workspace=workspace), preset_id)
