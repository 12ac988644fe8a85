"""The webhooks app; it applies parked statuses as soon as the engine records sends."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from messaging.signals import sends_recorded

        sends_recorded.connect(_apply_parked_statuses, dispatch_uid="webhooks-apply-parked")


def _apply_parked_statuses(sender, **kwargs) -> None:
    """Receipts that raced a lane link's sends were parked; their messages are recorded
    now, so apply them here rather than at the next periodic retry."""
    from webhooks.statuses import pending_statuses_apply

    pending_statuses_apply()
