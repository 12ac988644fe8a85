"""`manage.py demo_replies CAMPAIGN`: contacts of a sent demo campaign answer it (run by `demo`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from automation.demo import demo_replies
from campaigns.models import Campaign


class Command(BaseCommand):
    help = (
        "Contacts of a sent campaign reply through the Graph simulator: some STOP, some ask "
        "questions (the LLM simulator answers), one asks for a person; prints the counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", type=int)
        parser.add_argument("--graph-url", required=True, help="the Graph simulator's address")
        parser.add_argument("--llm-url", required=True, help="the LLM simulator's /v1 address")
        parser.add_argument("--timeout", type=float, default=60)

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(pk=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign {options['campaign']}")
        counts = demo_replies(
            campaign=campaign,
            graph_url=options["graph_url"],
            llm_url=options["llm_url"],
            say=self.stdout.write,
            timeout=options["timeout"],
        )
        if counts:
            self.stdout.write(
                self.style.SUCCESS(
                    f"  auto-replies: {counts['opted_out']} opted out "
                    f"({counts['suppressed']} suppressed, {counts['confirmations']} "
                    "confirmations sent), "
                    f"{counts['answered_by_bot']} answered by the bot, "
                    f"{counts['handed_over']} handed over to a person, "
                    f"{counts['bot_replies_accepted']} bot replies accepted by Meta"
                    + (f", {counts['undecided']} undecided" if counts["undecided"] else "")
                )
            )
