from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Studio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from catalog.signals import photo_decoded

        from .services import photo_decoded_receive

        # A large photo decoded on a worker gets its cutout as an upload decoded in the
        # request does (catalog cannot import studio).
        photo_decoded.connect(photo_decoded_receive, dispatch_uid="studio.photo_decoded_receive")
