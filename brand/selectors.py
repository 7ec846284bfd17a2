"""Reads of brand kits and presets, scoped to the caller's workspace."""
from django.db.models import QuerySet
from django.http import Http404

from catalog.models import Workspace

from .models import BrandKit, ScenePreset


def brand_kit_list(*, workspace: Workspace) -> QuerySet[BrandKit]:
    return BrandKit.objects.filter(workspace=workspace).prefetch_related("loras")


def brand_kit_get(*, workspace: Workspace, kit_id) -> BrandKit:
    try:
        return brand_kit_list(workspace=workspace).get(pk=int(kit_id))
    except (BrandKit.DoesNotExist, ValueError, TypeError):
        raise Http404(f"No brand kit with id {kit_id}") from None


def preset_list(*, workspace: Workspace) -> QuerySet[ScenePreset]:
    return ScenePreset.objects.filter(workspace=workspace)


def preset_get(*, workspace: Workspace, preset_id) -> ScenePreset:
    try:
        return preset_list(workspace=workspace).get(pk=int(preset_id))
    except (ScenePreset.DoesNotExist, ValueError, TypeError):
        raise Http404(f"No scene preset with id {preset_id}") from None
