"""manage.py campaign start|pause|resume|cancel|status|resend-unknown ID"""

import time

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign, CampaignStatus
from campaigns.rates import campaign_current_rate
from campaigns.selectors import campaign_counts, progress_of
from campaigns.services import (
    CampaignStateError,
    ResendError,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_start,
    recipients_resend_unknown,
)
from config.progress import Progress

ACTIONS = {
    "start": campaign_start,
    "pause": campaign_pause,
    "resume": campaign_resume,
    "cancel": campaign_cancel,
}
FINISHED = {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED}
SHOWN = ["sent", "delivered", "read", "failed", "unknown", "cancelled", "pending", "retry_wait"]


def status_text(campaign: Campaign, counts: dict[str, int]) -> str:
    parts = " ".join(f"{name} {counts[name]}" for name in SHOWN if counts[name])
    text = f"{campaign.status} | {counts['total']} contacts | {parts}"
    if campaign.status == CampaignStatus.RUNNING:
        text += f" | {campaign_current_rate(campaign.pk):.1f} msg/s"
    return text


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
        progress = Progress(self.stdout)
        while True:
            campaign.refresh_from_db()
            counts = campaign_counts([campaign.pk])[campaign.pk]
            finished = not watch or campaign.status in FINISHED
            progress.show(progress_of(counts), status_text(campaign, counts), force=finished)
            if finished:
                break
            time.sleep(1)
        progress.close()
