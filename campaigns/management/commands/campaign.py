"""manage.py campaign start|pause|resume|cancel|status|resend-unknown ID"""

import time

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign, CampaignStatus
from campaigns.selectors import campaign_counts, progress_of
from campaigns.services import (
    CampaignStateError,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_start,
)
from messaging import ratelimit
from messaging.services import ResendError, recipients_resend_unknown

ACTIONS = {
    "start": campaign_start,
    "pause": campaign_pause,
    "resume": campaign_resume,
    "cancel": campaign_cancel,
}
FINISHED = {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED}
BAR_WIDTH = 30


def status_line(campaign: Campaign) -> str:
    counts = campaign_counts([campaign.pk])[campaign.pk]
    shown = ["sent", "delivered", "read", "failed", "unknown", "cancelled", "pending", "retry_wait"]
    parts = " ".join(f"{name} {counts[name]}" for name in shown if counts[name])
    return (
        f"{progress_of(counts):3d}% {campaign.status} | {counts['total']} contacts | {parts} | "
        f"rate {ratelimit.current_rate():g}/s"
    )


class Command(BaseCommand):
    help = (
        "Starts, pauses, resumes or cancels a campaign, resends its unknown outcomes, or shows "
        "its status (with --watch: live until it finishes; a progress bar on a terminal)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=[*ACTIONS, "status", "resend-unknown"])
        parser.add_argument("campaign", type=int, help="campaign id")
        parser.add_argument("--reason", default=None, help="kept in the audit trail")
        parser.add_argument("--watch", action="store_true", help="status: follow until finished")

    def handle(self, *args, action, campaign, reason, watch, **options):
        found = Campaign.objects.filter(pk=campaign).first()
        if found is None:
            raise CommandError(f"campaign {campaign} does not exist")
        if action == "status":
            return self._status(found, watch=watch)
        try:
            if action == "resend-unknown":
                count = recipients_resend_unknown(campaign=found, user=None)
                self.stdout.write(f"{count} unknown messages put back in line")
                return
            ACTIONS[action](campaign=found, user=None, reason=reason or "manage.py campaign")
        except (CampaignStateError, ResendError) as error:
            raise CommandError(str(error)) from None
        found.refresh_from_db()
        self.stdout.write(f"campaign {found.pk} is {found.status}")

    def _status(self, campaign: Campaign, *, watch: bool) -> None:
        tty = self.stdout.isatty()
        while True:
            campaign.refresh_from_db()
            line = status_line(campaign)
            if tty:
                done = int(line[:3])
                filled = BAR_WIDTH * done // 100
                self.stdout.write(
                    f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {line}\033[K", ending=""
                )
                self.stdout.flush()
            else:
                self.stdout.write(line)
            if not watch or campaign.status in FINISHED:
                break
            time.sleep(1 if tty else 5)
        if tty:
            self.stdout.write("")
