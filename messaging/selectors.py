"""Reads of the sending engine's state for the API, the admin and the commands."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from accounts.tenancy import scope
from campaigns.models import CampaignStatus, Recipient
from config.redis import get_redis
from messaging import ratelimit
from messaging.lanes import due, lease_key
from messaging.models import RateAdjustment
from numbers.models import Number


def due_counts(number_ids: list[int]) -> dict[int, int]:
    """Recipients each number could send now (pending, or a retry that came due)."""
    rows = (
        Recipient.objects.filter(
            due(timezone.now()), number_id__in=number_ids, campaign__status=CampaignStatus.RUNNING
        )
        .values("number_id")
        .annotate(n=Count("pk"))
    )
    return {row["number_id"]: row["n"] for row in rows}


def sending_state(*, user, adjustments: int = 50) -> dict:
    """The shared rate, the caller's numbers' lanes and the recent rate changes."""
    numbers = list(scope(Number.objects.order_by("pk"), user).values("pk", "max_mps"))
    ids = [n["pk"] for n in numbers]
    due = due_counts(ids)
    redis = get_redis()
    with redis.pipeline(transaction=False) as pipe:
        for number_id in ids:
            pipe.exists(lease_key(number_id))
        active = pipe.execute()
    return {
        "rate": ratelimit.current_rate(),
        "rate_min": settings.SEND_RATE_MIN,
        "rate_max": settings.SEND_RATE_MAX,
        "numbers": [
            {
                "id": number["pk"],
                "max_mps": number["max_mps"],
                "lane_active": bool(lane),
                "due": due.get(number["pk"], 0),
            }
            for number, lane in zip(numbers, active, strict=True)
        ],
        "adjustments": [
            {"at": a.at, "old": a.old, "new": a.new, "reason": a.reason}
            for a in RateAdjustment.objects.all()[:adjustments]
        ],
    }
