"""The automation app: opt-out keywords, keyword rules and the LLM agent for replies."""

from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    label = "automation"
    verbose_name = "Automatic replies"
