"""The automation app: opt-out keywords, keyword rules and the LLM agent for replies."""

import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class AutomationConfig(AppConfig):
    name = "automation"
    label = "automation"
    verbose_name = "Automatic replies"

    def ready(self) -> None:
        from conversations.signals import inbound_created

        inbound_created.connect(_queue_automation, dispatch_uid="automation-inbound")


def _queue_automation(sender, message, **kwargs) -> None:
    """Every new inbound Message gets one pipeline run, queued once its row is committed."""
    from config.commit import after_commit

    after_commit(_enqueue, message.pk)


def _enqueue(message_id: int) -> None:
    from automation.tasks import inbound_automate

    try:
        inbound_automate.apply_async(args=[message_id], retry=False)
    except Exception:
        # The message is stored and shown in the inbox; only its automatic reply is lost.
        logger.warning("could not queue the automation of message %s", message_id, exc_info=True)
