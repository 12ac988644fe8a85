"""`manage.py demo_inbox CAMPAIGN`: contacts of a sent campaign write to the inbox (run by
`demo`), an agent answers one; prints what the inbox holds."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.models import Campaign
from conversations.demo import demo_inbox


class Command(BaseCommand):
    help = (
        "Contacts of a sent campaign reply through the Graph simulator (questions and "
        "button presses); an agent answers one; prints the inbox's counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", type=int)
        parser.add_argument("--graph-url", required=True, help="the Graph simulator's address")
        parser.add_argument("--contacts", type=int, default=12)
        parser.add_argument("--timeout", type=float, default=60)

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(pk=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign {options['campaign']}")
        if options["contacts"] < 1:
            raise CommandError("--contacts must be at least 1")
        counts = demo_inbox(
            campaign=campaign,
            graph_url=options["graph_url"],
            say=self.stdout.write,
            contacts=options["contacts"],
            timeout=options["timeout"],
        )
        if counts:
            self.stdout.write(
                self.style.SUCCESS(
                    f"  inbox: {counts['conversations']} conversations "
                    f"({counts['open']} open, {counts['from_campaign']} from this campaign, "
                    f"{counts['unread']} unread messages); {counts['inbound_threaded']} replies "
                    f"threaded ({counts['questions']} questions, {counts['button_presses']} "
                    f"button presses); agent reply {counts['agent_reply_status']}; "
                    f"{counts['messages']} messages in all"
                )
            )
