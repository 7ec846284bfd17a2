from django.apps import AppConfig


class GenerationConfig(AppConfig):
    """Django adapter around the generation library. The library modules never import Django;
    only tasks and management commands here do."""

    name = "generation"
    verbose_name = "Generation"
    default_auto_field = "django.db.models.BigAutoField"
