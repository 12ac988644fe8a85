"""`manage.py graph_simulator`: run the local Graph API simulator in the foreground."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from graph_simulator.server import add_arguments, run


class Command(BaseCommand):
    help = "Run the local WhatsApp Graph API simulator (see README, 'Trying it without Meta')."
    # It serves HTTP only and never touches the database: no checks, no migrations needed.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("app_secret") is None:
            # Sign webhooks with the secret the product verifies them with.
            options["app_secret"] = settings.WHATSAPP_APP_SECRET or None
        try:
            run(options)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
