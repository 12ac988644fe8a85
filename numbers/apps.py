from django.apps import AppConfig


class NumbersConfig(AppConfig):
    name = "numbers"
    verbose_name = "WhatsApp numbers"

    def ready(self) -> None:
        from django.db.models.signals import post_save, pre_save

        from numbers import signals
        from numbers.models import Number

        # Quality, tier and status changes are announced from every save (numbers.signals).
        pre_save.connect(signals.remember_before, sender=Number, dispatch_uid="numbers.before")
        post_save.connect(signals.announce_changes, sender=Number, dispatch_uid="numbers.changed")
