"""The sweeper: recovers lanes, claims and campaigns after any crash, by itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from campaigns.models import NOT_DONE_STATES, Campaign, CampaignStatus, Recipient, RecipientStatus
from campaigns.services import campaign_finish_if_done
from config.redis import get_redis
from messaging.kick import lane_kick
from messaging.lanes import CLAIM_SENTINEL, due, lease_key, marks_key, release_unattempted


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
    - running campaigns with nothing left are completed.
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
        if campaign_finish_if_done(campaign=campaign):
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


def _finished_running_campaigns():
    return Campaign.objects.filter(status=CampaignStatus.RUNNING).exclude(
        recipients__status__in=NOT_DONE_STATES
    )
