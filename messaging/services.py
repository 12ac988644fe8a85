"""Writes of the sending engine: kicking lanes, the rate controller, the sweeper, resends."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from campaigns.models import (
    NOT_DONE_STATES,
    Campaign,
    CampaignStatus,
    Recipient,
    RecipientStatus,
)
from config.redis import get_redis
from messaging import ratelimit
from messaging.lanes import (
    CLAIM_SENTINEL,
    due,
    lease_key,
    marks_key,
    release_unattempted,
)
from messaging.models import RateAdjustment

logger = logging.getLogger(__name__)

# Set while a link of the number is queued: at most one waits per lane, so the
# sweeper and every start/resume can kick freely without piling up links.
KICK_PREFIX = "lane:kick:"
KICK_TTL_SECONDS = 30


def lane_kick(*, number_id: int, countdown: float = 0) -> bool:
    """Queues a link of the number's lane unless one is already queued. True when queued."""
    from messaging.tasks import send_lane

    ttl = int(KICK_TTL_SECONDS + countdown)
    if not get_redis().set(f"{KICK_PREFIX}{number_id}", "1", nx=True, ex=ttl):
        return False
    if countdown > 0:
        send_lane.apply_async((number_id,), countdown=countdown)
    else:
        send_lane.delay(number_id)
    return True


def lane_kick_clear(*, number_id: int) -> None:
    get_redis().delete(f"{KICK_PREFIX}{number_id}")


def campaign_lanes_kick(*, campaign_id: int) -> None:
    """After commit: one link for each usable number of the campaign."""
    number_ids = Campaign.numbers.through.objects.filter(campaign_id=campaign_id).values_list(
        "number_id", flat=True
    )
    for number_id in number_ids:
        lane_kick(number_id=number_id)


def campaign_lanes_kick_on_commit(campaign: Campaign) -> None:
    """Hook for campaign start/resume: enqueue lanes once the state change is committed."""
    campaign_id = campaign.pk
    transaction.on_commit(lambda: campaign_lanes_kick(campaign_id=campaign_id))


# --- rate -----------------------------------------------------------------------------


def rate_adjustment_record(*, old: float, new: float, reason: str) -> RateAdjustment:
    return RateAdjustment.objects.create(at=timezone.now(), old=old, new=new, reason=reason)


def rate_controller_tick(*, now: float | None = None) -> RateAdjustment | None:
    """+10% when the error share stayed under 1% for the last 5 minutes.

    The 5-minute clock restarts at every change and whenever errors reach 1%;
    nothing moves during the cool-down after a throttling cut, or without
    traffic (no evidence either way).
    """
    redis = get_redis()
    now = time.time() if now is None else now
    if redis.set(ratelimit.CLOCK_KEY, f"{now:.6f}", nx=True):
        return None
    if now < float(redis.get(ratelimit.COOLDOWN_KEY) or 0):
        return None
    since = float(redis.get(ratelimit.CLOCK_KEY))
    period = settings.SEND_RATE_RAISE_AFTER_SECONDS
    if now - since < period:
        return None
    attempts, errors = ratelimit.window_totals(period, now=now)
    if attempts == 0:
        return None
    share = errors / attempts
    if share >= settings.SEND_RATE_MAX_ERROR_SHARE:
        redis.set(ratelimit.CLOCK_KEY, f"{now:.6f}")
        return None
    current = ratelimit.current_rate()
    if current >= settings.SEND_RATE_MAX:
        redis.set(ratelimit.CLOCK_KEY, f"{now:.6f}")
        return None
    old, new = ratelimit.set_rate(current * settings.SEND_RATE_RAISE_FACTOR)
    return rate_adjustment_record(
        old=old,
        new=new,
        reason=f"errors {share:.2%} of {attempts} attempts over {period / 60:g} min",
    )


# --- the sweeper ----------------------------------------------------------------------


@dataclass
class SweepResult:
    unknown: int = 0
    released: int = 0
    kicked: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)


_DEAD_CLAIMS_SQL = """
SELECT number_id, claim_token, array_agg(id) FROM campaigns_recipient
WHERE status = 'sending' AND claimed_at < %s
GROUP BY number_id, claim_token
"""


def sweep(*, now: datetime | None = None) -> SweepResult:
    """Recovers after any crash, by itself; safe to run anywhere, any number of times.

    - claims whose lane lease is gone: rows marked attempted become ``unknown``
      (maybe sent, never resent on our own), the others go back to ``pending``;
      when the marks themselves were lost (Redis restarted) every row of the
      claim becomes ``unknown``: at most once beats a duplicate;
    - running campaigns with due work and no live lane get a link queued;
    - running campaigns with nothing left are completed, counters made exact.
    """
    now = now or timezone.now()
    result = SweepResult()
    redis = get_redis()
    cutoff = now - timedelta(seconds=settings.SWEEP_GRACE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(_DEAD_CLAIMS_SQL, [cutoff])
        claims = cursor.fetchall()
    for number_id, token, ids in claims:
        if redis.get(lease_key(number_id)) == token:
            continue  # its link is alive and still sending
        key = marks_key(token)
        marks = redis.lrange(key, 0, -1)
        if marks and marks[0] == CLAIM_SENTINEL:
            attempted = {int(m) for m in marks[1:]}
        else:
            attempted = set(ids)
        maybe_sent = [i for i in ids if i in attempted]
        never_tried = [i for i in ids if i not in attempted]
        result.unknown += _mark_unknown(token, maybe_sent)
        release_unattempted(token, never_tried)
        result.released += len(never_tried)
        redis.delete(key)

    for number_id in _numbers_with_due_work(now):
        if not redis.exists(lease_key(number_id)) and lane_kick(number_id=number_id):
            result.kicked.append(number_id)

    for campaign in _finished_running_campaigns():
        if campaign_finish(campaign=campaign):
            result.completed.append(campaign.pk)
    return result


def _mark_unknown(token: str, ids: list[int]) -> int:
    if not ids:
        return 0
    return Recipient.objects.filter(
        pk__in=ids, claim_token=token, status=RecipientStatus.SENDING
    ).update(
        status=RecipientStatus.UNKNOWN,
        attempts=F("attempts") + 1,
        error_title="Outcome unknown",
        error_details="the sending worker stopped during the call; a status webhook resolves it",
    )


def _numbers_with_due_work(now: datetime) -> list[int]:
    return list(
        Recipient.objects.filter(due(now), campaign__status=CampaignStatus.RUNNING)
        .values_list("number_id", flat=True)
        .distinct()
    )


def stopped_campaigns(campaign_ids):
    """Those of ``campaign_ids`` that are no longer running."""
    if not campaign_ids:
        return []
    return list(Campaign.objects.filter(pk__in=campaign_ids).exclude(status=CampaignStatus.RUNNING))


def _finished_running_campaigns():
    return Campaign.objects.filter(status=CampaignStatus.RUNNING).exclude(
        recipients__status__in=NOT_DONE_STATES
    )


def campaign_finish(*, campaign: Campaign) -> bool:
    """Completes a running campaign with nothing left to send; True when it did."""
    from campaigns.services import CampaignStateError, campaign_complete

    if campaign.recipients.filter(status__in=NOT_DONE_STATES).exists():
        return False
    try:
        campaign_complete(campaign=campaign, reason="nothing left to send")
    except CampaignStateError:
        return False
    campaign_counters_reconcile(campaign=campaign)
    return True


# --- counters -------------------------------------------------------------------------

COUNTED = {
    "sent": Q(status__in=[RecipientStatus.SENT, RecipientStatus.DELIVERED, RecipientStatus.READ]),
    "delivered": Q(delivered_at__isnull=False)
    | Q(status__in=[RecipientStatus.DELIVERED, RecipientStatus.READ]),
    "read": Q(status=RecipientStatus.READ),
    "failed": Q(status=RecipientStatus.FAILED),
    "cancelled": Q(status=RecipientStatus.CANCELLED),
    "replied": Q(replied_at__isnull=False),
}


def campaign_counters_from_rows(campaign: Campaign) -> dict[str, int]:
    """The campaign's counters as the recipient rows say (the truth)."""
    totals = campaign.recipients.aggregate(
        total=Count("pk"), **{name: Count("pk", filter=q) for name, q in COUNTED.items()}
    )
    return {name: totals[name] or 0 for name in ["total", *COUNTED]}


def campaign_counters_check(campaign: Campaign) -> dict[str, tuple[int, int]]:
    """Counters that differ from the rows: {name: (stored, from rows)}; empty when exact."""
    campaign.refresh_from_db()
    truth = campaign_counters_from_rows(campaign)
    return {
        name: (getattr(campaign, name), value)
        for name, value in truth.items()
        if getattr(campaign, name) != value
    }


def campaign_counters_reconcile(*, campaign: Campaign) -> dict[str, tuple[int, int]]:
    """Makes the stored counters exact; returns what was off (for the log)."""
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        off = campaign_counters_check(campaign)
        if off:
            Campaign.objects.filter(pk=campaign.pk).update(
                **{name: rows for name, (_, rows) in off.items()}
            )
            logger.info("campaign %s counters corrected: %s", campaign.pk, off)
    return off


# --- operator actions -----------------------------------------------------------------


class ResendError(ValueError):
    """The unknowns of this campaign cannot be resent now, with the reason."""


def recipients_resend_unknown(*, campaign: Campaign, user) -> int:
    """Puts the campaign's ``unknown`` recipients back in line; returns how many.

    An explicit operator decision: some of them may have reached the contact
    already, so this may duplicate those. Only for a running or paused campaign.
    """
    if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
        raise ResendError(f"cannot resend the unknowns of a {campaign.status} campaign")
    with transaction.atomic():
        count = campaign.recipients.filter(status=RecipientStatus.UNKNOWN).update(
            status=RecipientStatus.PENDING,
            claim_token="",
            next_attempt_at=None,
            error_title="",
            error_details="resent by an operator",
        )
        if campaign.status == CampaignStatus.RUNNING:
            campaign_lanes_kick_on_commit(campaign)
    logger.info("campaign %s: %s unknown messages resent by %s", campaign.pk, count, user)
    return count
