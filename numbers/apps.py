from django.apps import AppConfig


class NumbersConfig(AppConfig):
    name = "numbers"
    verbose_name = "WhatsApp numbers"
