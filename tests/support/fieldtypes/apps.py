from django.apps import AppConfig


class FieldTypesConfig(AppConfig):
    name = "tests.support.fieldtypes"
    label = "fieldtypes"

    def ready(self) -> None:
        from django_sse.live.signals import register

        from .models import EveryField, Picky

        register(EveryField)
        register(Picky, schema=Picky.Schema)
