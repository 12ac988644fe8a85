"""The admin's home page: what a marketer checks first.

Campaigns by state and the active ones with progress, messages sent today and in the
last 7 days with their delivery/read/reply rates, failures by reason in plain words,
each number's health, the shared send rate and lanes, recent rate changes, and alerts.
It spans apps (campaigns, numbers, templates, the engine's state), which is why it lives
in ``config`` (the wiring layer) and not in one of them. Every figure is an aggregate:
the page makes a fixed number of queries whatever the volume.
"""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.tenancy import scope
from campaigns import dashboard
from campaigns.models import Campaign, CampaignEvent, CampaignStatus, Recipient
from config.admin import QUALITY_WORDS, badge, status_tone
from messaging.graph import error_explanation
from messaging.selectors import sending_state
from numbers.models import Number
from templates_sync.models import Template, TemplateStatus

# Templates in these states stop campaigns: the dashboard says so.
ALERT_TEMPLATE_STATES = [TemplateStatus.PAUSED, TemplateStatus.REJECTED, TemplateStatus.DISABLED]
RATE_CHANGES_SHOWN = 5
ALERTS_SHOWN = 20


def _scoped(queryset, user, lookup: str = "workspace"):
    return queryset if user.is_superuser else scope(queryset, user, lookup)


def dashboard_context(request) -> dict:
    user = request.user
    campaigns = _scoped(Campaign.objects.all(), user)
    recipients = _scoped(Recipient.objects.all(), user, "campaign__workspace")
    now = timezone.now()
    # The index activates the zone of the user's workspace: "today" is that zone's day.
    zone = timezone.get_current_timezone()
    today = dashboard.sends_since(recipients, dashboard.today_start(now, zone))
    week = dashboard.sends_since(recipients, dashboard.week_start(now))
    for period in (today, week):
        period["failures"] = [
            {**f, "explanation": error_explanation(f["code"], f["title"])}
            for f in period["failures"]
        ]
    numbers = list(_scoped(Number.objects.all(), user).order_by("label", "pk"))
    state = sending_state(user=user, adjustments=RATE_CHANGES_SHOWN)
    lanes = {lane["id"]: lane for lane in state["numbers"]}
    return {
        "wac_dashboard": True,
        "time_zone": str(zone),
        "campaign_counts": dashboard.campaigns_by_status(campaigns),
        "active_campaigns": dashboard.active_campaigns(campaigns),
        "today": today,
        "week": week,
        "numbers_health": [
            {
                "number": number,
                "quality": badge(
                    QUALITY_WORDS.get(number.quality_rating, "unknown"),
                    status_tone(number.quality_rating),
                ),
                "status": badge(number.get_status_display(), status_tone(number.status)),
                "lane": lanes.get(number.pk, {}),
            }
            for number in numbers
        ],
        "rate": state["rate"],
        "rate_min": state["rate_min"],
        "rate_max": state["rate_max"],
        "lanes_active": sum(1 for lane in state["numbers"] if lane["lane_active"]),
        "due_total": sum(lane["due"] for lane in state["numbers"]),
        "rate_changes": state["adjustments"],
        "paused_campaigns": _auto_paused(campaigns),
        "template_alerts": list(
            _scoped(Template.objects.all(), user)
            .filter(status__in=ALERT_TEMPLATE_STATES, removed_at__isnull=True)
            .order_by("-status_changed_at")[:ALERTS_SHOWN]
        ),
    }


def _auto_paused(campaigns) -> list[Campaign]:
    """Paused campaigns whose last pause was the product's (no user): a template or number
    problem that a person should look at."""
    last_pause_by = Subquery(
        CampaignEvent.objects.filter(campaign=OuterRef("pk"), to_status=CampaignStatus.PAUSED)
        .order_by("-pk")
        .values("user_id")[:1]
    )
    return list(
        campaigns.filter(status=CampaignStatus.PAUSED)
        .annotate(paused_by=last_pause_by)
        .filter(paused_by__isnull=True)
        .order_by("-paused_at")[:ALERTS_SHOWN]
    )
