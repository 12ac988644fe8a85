"""The notifications app: e-mail, signed outgoing webhooks, Slack and the admin's bell."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from notifications import receivers, redact

        receivers.connect()
        redact.install()
