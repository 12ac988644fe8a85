"""Reads for the admin's campaign page and home dashboard: funnels, A/B breakdowns, totals.

Every figure is one aggregate over recipient rows (no stored counters, as in
``selectors.campaign_counts``), so the page is exact at every poll. The funnel is
cumulative, the way a marketer reads it: a read message was also delivered and
accepted, whatever status its row is in now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from campaigns.models import (
    NOT_DONE_STATES,
    UNSENT_STATES,
    Campaign,
    CampaignStatus,
    Recipient,
    RecipientStatus,
)
from campaigns.selectors import progress_percent

# Cumulative steps: each includes the rows of the steps after it.
READ = Q(status=RecipientStatus.READ) | Q(read_at__isnull=False)
DELIVERED = Q(status=RecipientStatus.DELIVERED) | Q(delivered_at__isnull=False) | READ
ACCEPTED = Q(sent_at__isnull=False) | Q(status=RecipientStatus.SENT) | DELIVERED
REPLIED = Q(replied_at__isnull=False)
FAILED = Q(status=RecipientStatus.FAILED)

FUNNEL_AGGREGATES = {
    "contacts": Count("pk"),
    "accepted": Count("pk", filter=ACCEPTED),
    "delivered": Count("pk", filter=DELIVERED),
    "read": Count("pk", filter=READ),
    "replied": Count("pk", filter=REPLIED),
    "failed": Count("pk", filter=FAILED),
    "unknown": Count("pk", filter=Q(status=RecipientStatus.UNKNOWN)),
    "cancelled": Count("pk", filter=Q(status=RecipientStatus.CANCELLED)),
    "waiting": Count("pk", filter=Q(status__in=UNSENT_STATES)),
    "sending": Count("pk", filter=Q(status=RecipientStatus.SENDING)),
}
FUNNEL_KEYS = list(FUNNEL_AGGREGATES)


def percent(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` in percent, one decimal; None when there is no whole."""
    if not whole:
        return None
    return round(part * 100 / whole, 1)


def funnel_rates(row: dict[str, int]) -> dict[str, float | None]:
    """The rates a marketer reads: accepted of contacts, delivered and failed of those
    tried, read and replied of delivered."""
    tried = row["accepted"] + row["failed"]
    return {
        "accepted": percent(row["accepted"], row["contacts"]),
        "delivered": percent(row["delivered"], row["accepted"]),
        "read": percent(row["read"], row["delivered"]),
        "replied": percent(row["replied"], row["delivered"]),
        "failed": percent(row["failed"], tried),
    }


def campaign_funnel(campaign_id: int) -> dict:
    """The campaign's cumulative funnel, its rates, progress and failures by error code."""
    row = Recipient.objects.filter(campaign_id=campaign_id).aggregate(**FUNNEL_AGGREGATES)
    not_done = row["waiting"] + row["sending"]
    return {
        **row,
        "rates": funnel_rates(row),
        "done": row["contacts"] - not_done,
        "remaining": not_done,
        "progress": progress_percent(row["contacts"] - not_done, row["contacts"]),
        "failures": failures_by_code(Recipient.objects.filter(campaign_id=campaign_id)),
    }


def failures_by_code(recipients: QuerySet[Recipient], limit: int = 10) -> list[dict]:
    """Failed rows grouped by error code (most first), each with Meta's latest title."""
    rows = (
        recipients.filter(FAILED)
        .values("error_code")
        .annotate(n=Count("pk"), title=Max("error_title"))
        .order_by("-n", "error_code")[:limit]
    )
    return [{"code": r["error_code"], "title": r["title"] or "", "count": r["n"]} for r in rows]


def campaign_breakdown(campaign: Campaign) -> dict[str, list[dict]]:
    """The A/B view: the funnel per template and per number, side by side.

    Two grouped aggregates; every template and number of the campaign is listed,
    with zeros when it has no contacts yet.
    """
    aggregates = {key: FUNNEL_AGGREGATES[key] for key in _BREAKDOWN_KEYS}
    base = Recipient.objects.filter(campaign=campaign).order_by()
    by_template = {r["template_id"]: r for r in base.values("template_id").annotate(**aggregates)}
    by_number = {r["number_id"]: r for r in base.values("number_id").annotate(**aggregates)}
    empty = dict.fromkeys(_BREAKDOWN_KEYS, 0)
    templates = []
    for use in campaign.campaign_templates.select_related("template").order_by("pk"):
        row = {**empty, **_only(by_template.get(use.template_id))}
        templates.append(
            {
                "label": f"{use.template.name} ({use.template.language})",
                "weight": use.weight,
                **row,
                "rates": funnel_rates(row),
            }
        )
    numbers = []
    for number in campaign.numbers.order_by("pk"):
        row = {**empty, **_only(by_number.get(number.pk))}
        numbers.append({"label": str(number), **row, "rates": funnel_rates(row)})
    return {"templates": templates, "numbers": numbers}


_BREAKDOWN_KEYS = ["contacts", "accepted", "delivered", "read", "replied", "failed"]


def _only(row: dict | None) -> dict:
    return {key: row[key] for key in _BREAKDOWN_KEYS} if row else {}


def eta_seconds(remaining: int, rate: float) -> int | None:
    """Seconds left at the current rate; None when nothing is moving."""
    if remaining <= 0:
        return 0
    if rate <= 0:
        return None
    return int(remaining / rate + 0.5)


# -- home dashboard -------------------------------------------------------------------


def campaigns_by_status(campaigns: QuerySet[Campaign]) -> dict[str, int]:
    """How many campaigns are in each status (every status listed, zeros included)."""
    counts = dict.fromkeys(CampaignStatus.values, 0)
    for row in campaigns.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def active_campaigns(campaigns: QuerySet[Campaign], limit: int = 20) -> list[dict]:
    """Running, paused and scheduled campaigns with their progress: two queries in all."""
    active = list(
        campaigns.filter(
            status__in=[CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED]
        ).order_by("status", "-pk")[:limit]
    )
    progress = _progress([campaign.pk for campaign in active])
    return [{"campaign": campaign, **progress[campaign.pk]} for campaign in active]


def _progress(ids: Iterable[int]) -> dict[int, dict]:
    ids = list(ids)
    found: dict[int, dict] = defaultdict(lambda: {"contacts": 0, "done": 0, "progress": 0})
    rows = (
        Recipient.objects.filter(campaign_id__in=ids)
        .values("campaign_id")
        .annotate(contacts=Count("pk"), not_done=Count("pk", filter=Q(status__in=NOT_DONE_STATES)))
        .order_by()
    )
    for row in rows:
        done = row["contacts"] - row["not_done"]
        found[row["campaign_id"]] = {
            "contacts": row["contacts"],
            "done": done,
            "progress": progress_percent(done, row["contacts"]),
        }
    return found


def sends_since(recipients: QuerySet[Recipient], since: datetime) -> dict:
    """The funnel of the messages Meta accepted since ``since`` (by their sent time),
    with the failures of that period (by failure time) by code."""
    sent = recipients.filter(sent_at__gte=since)
    row = sent.aggregate(
        accepted=Count("pk"),
        delivered=Count("pk", filter=DELIVERED),
        read=Count("pk", filter=READ),
        replied=Count("pk", filter=REPLIED),
    )
    failed = recipients.filter(FAILED, failed_at__gte=since)
    row["failed"] = failed.count()
    row["contacts"] = row["accepted"]
    row["rates"] = funnel_rates(row)
    row["failures"] = failures_by_code(failed)
    return row


def today_start(now: datetime | None = None, zone: tzinfo | None = None) -> datetime:
    """Midnight of today in ``zone`` (a workspace's: its people's "today"), or in the
    current time zone."""
    local = timezone.localtime(now or timezone.now(), zone)
    # A ZoneInfo works out the offset from the wall time, so midnight gets its own offset
    # even on a day that changes to or from daylight saving time.
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def week_start(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=7)
