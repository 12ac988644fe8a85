"""The conversations app: contacts, one thread per (number, contact), the team inbox."""

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    label = "conversations"
    verbose_name = "Inbox"

    def ready(self) -> None:
        from webhooks.signals import inbound_stored, statuses_unmatched

        inbound_stored.connect(_thread_inbound, dispatch_uid="conversations-thread-inbound")
        statuses_unmatched.connect(_apply_reply_statuses, dispatch_uid="conversations-statuses")


def _thread_inbound(sender, messages, **kwargs) -> None:
    """Every stored inbound message joins its conversation, in the webhook's transaction."""
    from conversations.services import inbound_thread

    inbound_thread(messages)


def _apply_reply_statuses(sender, updates, **kwargs) -> dict[int, str]:
    """Statuses no campaign recipient matched: those of the inbox's replies apply here."""
    from conversations.services import reply_statuses_apply

    return reply_statuses_apply(updates)
