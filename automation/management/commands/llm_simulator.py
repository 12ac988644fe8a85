"""`manage.py llm_simulator`: run the local OpenAI-compatible LLM simulator in the foreground."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from llm_simulator.server import add_arguments, run


class Command(BaseCommand):
    help = (
        "Run the local OpenAI-compatible Chat Completions simulator (canned answers, "
        "hand-over, faults); point a workspace's LLM base URL at http://HOST:PORT/v1."
    )
    # It serves HTTP only and never touches the database: no checks, no migrations needed.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run(options)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
