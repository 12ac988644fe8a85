"""The conversations app: contacts, one thread per (number, contact), the team inbox."""

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    label = "conversations"
    verbose_name = "Inbox"
