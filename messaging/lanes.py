"""Lanes: one sender per WhatsApp number, each link of the lane sends one claimed batch.

A link (``lane_run``) takes the number's lease in Redis, claims a batch of due
recipients with ``FOR UPDATE SKIP LOCKED`` and commits the claim before any
HTTP call, sends in claim order at the pace the rate limiter gives, marks each
attempt in Redis before its call (so a crash can tell "never tried" from
"maybe sent"), and records results in bulk every few dozen messages. The row
claim, not the lease, is what guarantees one sender per message: leases can
be lost to pauses; claims cannot be taken twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from redis import exceptions as redis_exceptions

from accounts.models import Workspace
from campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus
from campaigns.rates import campaign_sends_record
from campaigns.services.lifecycle import campaign_hold, campaigns_hold_clear
from config.redis import get_redis
from messaging.breakers import streak_record, streak_trip
from messaging.callbacks import callback_data_for
from messaging.consequences import breaker_trip_apply, failure_apply, recipients_backed_off
from messaging.controller import rate_adjustment_record
from messaging.graph import (
    ROW_WAITS,
    Consequence,
    ErrorClass,
    GraphError,
    SendResult,
    counts_toward_breaker,
)
from messaging.guards import budget_take, frequency_take, portfolio_limit
from messaging.ratelimit import RateLimiter, current_rate
from numbers.models import Number
from templates_sync.models import Template, TemplateCategory
from templates_sync.rendering import RenderError, render_components

logger = logging.getLogger(__name__)

MARKS_TTL_SECONDS = 7 * 24 * 3600
# First entry of every marks list, written before the claim commits: a claim
# whose list lacks it lost its marks (Redis restarted), so none can be trusted.
CLAIM_SENTINEL = "claimed"


def lease_key(number_id: int) -> str:
    return f"lane:{number_id}"


def marks_key(token: str) -> str:
    return f"claim:{token}:attempted"


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Lease:
    """The Redis lease that keeps one link per number sending at a time."""

    def __init__(self, number_id: int, token: str) -> None:
        self.key = lease_key(number_id)
        self.token = token
        self.redis = get_redis()
        self.ttl_ms = int(settings.LANE_LEASE_SECONDS * 1000)

    def acquire(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Extends the lease; False when it was lost (expired, Redis restarted, taken)."""
        try:
            return bool(self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))
        except redis_exceptions.RedisError:
            return False

    def release(self) -> None:
        # Best effort: a lease Redis lost (restart) is released already, and
        # one we could not delete expires within its TTL.
        with contextlib.suppress(redis_exceptions.RedisError):
            self.redis.eval(_RELEASE, 1, self.key, self.token)


@dataclass
class Claimed:
    id: int
    campaign_id: int
    phone: str
    variables: dict
    template_id: int
    attempts: int


_CLAIM_SQL = """
WITH picked AS (
    SELECT r.id FROM campaigns_recipient r
    WHERE r.number_id = %(number)s
      AND r.campaign_id = ANY(%(campaigns)s)
      AND r.status IN ('pending', 'retry_wait')
      AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= %(now)s)
    ORDER BY r.id
    LIMIT %(size)s
    FOR UPDATE SKIP LOCKED
)
UPDATE campaigns_recipient r
SET status = 'sending', claim_token = %(token)s, claimed_at = %(now)s
FROM picked WHERE r.id = picked.id
RETURNING r.id, r.campaign_id, r.phone, r.variables, r.template_id, r.attempts
"""


def running_campaigns(number_id: int):
    """The running campaigns that send through the number, oldest start first."""
    return Campaign.objects.filter(numbers=number_id, status=CampaignStatus.RUNNING).order_by(
        "started_at", "pk"
    )


def running_campaign_ids(number_id: int) -> list[int]:
    return list(running_campaigns(number_id).values_list("pk", flat=True))


def due(now: datetime) -> Q:
    """Recipients a lane may send at ``now``: never tried, or a retry that came due."""
    return Q(status=RecipientStatus.PENDING) | Q(
        status=RecipientStatus.RETRY_WAIT, next_attempt_at__lte=now
    )


def claim_batch(*, number_id: int, token: str, size: int) -> list[Claimed]:
    """Claims up to ``size`` due recipients of the number's running campaigns, oldest first.

    Committed before returning: the claim must be durable before any HTTP call.
    """
    campaigns = running_campaign_ids(number_id)
    if not campaigns:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "number": number_id,
                "campaigns": campaigns,
                "size": size,
                "token": token,
                # The application's clock, the one retry times are written with.
                "now": timezone.now(),
            },
        )
        rows = cursor.fetchall()
    # Django's psycopg adapter hands jsonb back as text; JSONField would parse it.
    claimed = [
        Claimed(
            rid,
            cid,
            phone,
            json.loads(variables) if isinstance(variables, str) else variables,
            tid,
            n,
        )
        for rid, cid, phone, variables, tid, n in rows
    ]
    claimed.sort(key=lambda c: c.id)
    return claimed


def next_due_at(number_id: int) -> datetime | None:
    """When the number's next waiting retry comes due (None when nothing waits)."""
    campaigns = running_campaign_ids(number_id)
    if not campaigns:
        return None
    return (
        Recipient.objects.filter(
            number_id=number_id, campaign_id__in=campaigns, status=RecipientStatus.RETRY_WAIT
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


# --- outcomes -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What becomes of one claimed recipient, written in the next flush."""

    recipient: Claimed
    status: str
    attempted: bool
    at: datetime
    wamid: str | None = None
    next_attempt_at: datetime | None = None
    error_code: int | None = None
    error_title: str = ""
    error_details: str = ""
    # Rate-controller feedback: S success, T throttle, E other error, N neutral.
    signal: str = "N"
    # The code, when this failure feeds the consecutive-failure breaker.
    breaker_code: int | None = None


def retry_or_fail(recipient: Claimed, error: GraphError, now: datetime, *, signal: str) -> Outcome:
    """retry_wait after 5, 20, 45 s (one wait per earlier attempt), then failed."""
    attempt = recipient.attempts + 1
    delays = settings.SEND_RETRY_DELAYS
    common = {
        "error_code": error.code,
        "error_title": _title(error),
        "error_details": error.details or error.message or "",
        "signal": signal,
    }
    if attempt > len(delays):
        return Outcome(recipient, RecipientStatus.FAILED, True, now, **common)
    delay = delays[attempt - 1]
    if error.error_class is ErrorClass.RECIPIENT_THROTTLE:
        delay = max(delay, settings.PAIR_RATE_RETRY_SECONDS)
    return Outcome(
        recipient,
        RecipientStatus.RETRY_WAIT,
        True,
        now,
        next_attempt_at=now + timedelta(seconds=delay),
        **common,
    )


def _title(error: GraphError) -> str:
    """Meta's message without its "(#131026) " prefix: the code has its own column.

    Not ``error.title``: outside error_user_title that is the exception type
    ("OAuthException"), which tells a person nothing.
    """
    message = error.message or f"Graph API error {error.code}"
    return _CODE_PREFIX.sub("", message, count=1)[:255]


_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")

_RECORD_SQL = """
UPDATE campaigns_recipient r SET
    status = v.status,
    wamid = COALESCE(v.wamid, r.wamid),
    attempts = r.attempts + v.attempted,
    next_attempt_at = v.next_at,
    error_code = v.code,
    error_title = v.title,
    error_details = v.details,
    sent_at = CASE WHEN v.status = 'sent' THEN v.at ELSE r.sent_at END,
    failed_at = CASE WHEN v.status = 'failed' THEN v.at ELSE r.failed_at END,
    claim_token = CASE WHEN v.status = 'unknown' THEN r.claim_token ELSE '' END
FROM (VALUES {values}) AS v(id, status, wamid, attempted, next_at, code, title, details, at)
WHERE r.id = v.id AND r.claim_token = %s AND r.status IN ('sending', 'unknown')
RETURNING r.campaign_id, v.status
"""
_VALUE_ROW = (
    "(%s::bigint, %s::varchar, %s::varchar, %s::int, %s::timestamptz, %s::int, "
    "%s::varchar, %s::text, %s::timestamptz)"
)


def record_outcomes(token: str, outcomes: list[Outcome]) -> Counter:
    """Writes ``outcomes`` in one statement.

    Returns the count of recorded rows per (campaign id, status). Rows whose
    claim is no longer ours (a webhook already moved them on) are left alone.
    """
    if not outcomes:
        return Counter()
    params: list[Any] = []
    for o in outcomes:
        params += [
            o.recipient.id,
            o.status,
            o.wamid,
            1 if o.attempted else 0,
            o.next_attempt_at,
            o.error_code,
            o.error_title,
            o.error_details,
            o.at,
        ]
    sql = _RECORD_SQL.format(values=", ".join([_VALUE_ROW] * len(outcomes)))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [*params, token])
        return Counter((campaign_id, status) for campaign_id, status in cursor.fetchall())


_RELEASE_SQL = """
UPDATE campaigns_recipient r SET
    status = CASE WHEN c.status = 'cancelled' THEN 'cancelled' ELSE 'pending' END,
    claim_token = '', claimed_at = NULL
FROM campaigns_campaign c
WHERE r.campaign_id = c.id AND r.id = ANY(%s) AND r.claim_token = %s AND r.status = 'sending'
"""


def release_unattempted(token: str, recipient_ids: list[int]) -> None:
    """Claimed but never tried: back to pending (cancelled if the campaign was cancelled)."""
    if not recipient_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL, [recipient_ids, token])


_HOLD_SQL = """
UPDATE campaigns_recipient r SET
    status = v.status, next_attempt_at = v.until, claim_token = '', claimed_at = NULL,
    error_code = NULL, error_title = v.title, error_details = v.details
FROM (VALUES {values}) AS v(id, status, until, title, details)
WHERE r.id = v.id AND r.claim_token = %s AND r.status = 'sending'
"""


@dataclass(frozen=True)
class Hold:
    """A claimed row a guard keeps back, never attempted: waiting until ``until``
    (retry_wait), or skipped (cancelled, ``until`` None)."""

    recipient_id: int
    until: datetime | None
    title: str
    details: str
    status: str = RecipientStatus.RETRY_WAIT


def hold_claimed(token: str, holds: list[Hold]) -> None:
    """Writes the held rows (attempts unchanged) in one statement."""
    if not holds:
        return
    params: list[Any] = []
    for hold in holds:
        params += [hold.recipient_id, hold.status, hold.until, hold.title[:255], hold.details]
    values = ", ".join(
        ["(%s::bigint, %s::varchar, %s::timestamptz, %s::varchar, %s::text)"] * len(holds)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_HOLD_SQL.format(values=values), [*params, token])


# --- one link of a lane ---------------------------------------------------------------


@dataclass
class LinkResult:
    """What one link did, and whether the lane should go on at once."""

    state: str  # busy | idle | stopped | more
    claimed: int = 0
    campaigns: set[int] = field(default_factory=set)


class AttemptMarks:
    """Appends "about to call for recipient N" to the claim's list in Redis, before each call.

    On a connection of its own with replies switched off: each mark is one
    write that the kernel delivers even if this process dies right after it,
    without a round trip per message (measured: the reply wait was a sixth of
    a send's time). Errors surface on a later write, which stops the batch.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.connection = get_redis().connection_pool.make_connection()
        self.connection.send_command("CLIENT", "REPLY", "OFF")

    def mark(self, recipient_id: int) -> None:
        self.connection.send_command("RPUSH", self.key, recipient_id)

    def close(self) -> None:
        self.connection.disconnect()


class BatchSender:
    """Sends one claimed batch of a number in claim order and records the outcomes."""

    def __init__(self, *, number: Number, token: str, batch: list[Claimed], lease: Lease) -> None:
        self.number = number
        self.token = token
        self.batch = batch
        # The batch as claimed (``batch`` loses the rows a guard holds back).
        self._claimed = list(batch)
        self._budget_limit = 0
        self.lease = lease
        self.redis = get_redis()
        self.marks = marks_key(token)
        self.attempt_marks = AttemptMarks(self.marks)
        self.client = number.graph_client()
        self.limiter = RateLimiter(self.redis)
        self.pending: list[Outcome] = []
        self.done_ids: set[int] = set()
        self.stopped_campaigns: set[int] = set()
        self.stop_lane = False  # the number cannot send: the lane ends
        # A breaker streak may be open in Redis from an earlier link: the first flush
        # always reports, so a success resets it.
        self._streak_open = True
        self._breaker_tokens: list[str] = []
        self.link_cut = False  # this link ends early; the lane goes on
        self.last_flush = time.monotonic()
        self.templates = {
            t.pk: t for t in Template.objects.filter(pk__in={c.template_id for c in batch})
        }

    def run(self) -> None:
        self._hold_guarded()
        if not self.batch:
            return self._finish()
        reservation = self.limiter.reserve(
            number_id=self.number.pk, number_mps=self.number.max_mps, cost=len(self.batch)
        )
        started = time.monotonic()
        window = max(1, settings.LANE_WINDOW)
        pool = ThreadPoolExecutor(window) if window > 1 else None
        in_flight: list[tuple[Claimed, Future]] = []
        try:
            for index, recipient in enumerate(self.batch):
                if self.stop_lane or self.link_cut:
                    break
                if recipient.campaign_id in self.stopped_campaigns:
                    continue
                components = self._render(recipient)
                if components is None:
                    continue
                delay = started + reservation.offset(index) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    self._mark_attempt(recipient)
                except redis_exceptions.RedisError:
                    # An attempt that cannot be marked is not made: a crash
                    # now could not tell it from one never tried.
                    logger.warning("lane %s cannot mark attempts; ending this link", self.number.pk)
                    self.link_cut = True
                    break
                if pool is None:
                    self._settle(recipient, self._call(recipient, components))
                else:
                    while len(in_flight) >= window:
                        self._settle(*self._result_of(in_flight.pop(0)))
                    in_flight.append((recipient, pool.submit(self._call, recipient, components)))
                self._maybe_flush()
            while in_flight:
                self._settle(*self._result_of(in_flight.pop(0)))
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            self._finish()

    def _finish(self) -> None:
        self._flush()
        unattempted = [c.id for c in self.batch if c.id not in self.done_ids]
        release_unattempted(self.token, unattempted)
        self.attempt_marks.close()
        # Best effort: the sweeper ignores marks of a claim with no row left in it.
        with contextlib.suppress(redis_exceptions.RedisError):
            self.redis.delete(self.marks)

    # -- guards at claim time ------------------------------------------------------------

    def _hold_guarded(self) -> None:
        """Keeps back the claimed rows a guard says must not go now, written at once,
        before any send (messaging.guards): marketing to a phone Meta capped (131049)
        waits for its back-off; marketing over the workspace's frequency limit is
        skipped; people beyond the portfolio's messaging-limit budget wait for the
        window to roll, and their campaigns show the hold."""
        holds: list[Hold] = []
        try:
            holds += self._backoff_holds()
            holds += self._frequency_holds({h.recipient_id for h in holds})
            budget_holds, budget_until = self._budget_holds({h.recipient_id for h in holds})
        except redis_exceptions.RedisError:
            # Without the guards' state nothing is known to wait; the link sends no batch
            # blind: it ends, the rows go back in line.
            logger.warning("lane %s could not read its guards; ending this link", self.number.pk)
            self.link_cut = True
            self.batch = []
            return
        holds += budget_holds
        if holds:
            hold_claimed(self.token, holds)
            held = {hold.recipient_id for hold in holds}
            self.done_ids |= held
            self.batch = [c for c in self.batch if c.id not in held]
        held_campaigns = set()
        if budget_holds:
            held_campaigns = self._hold_campaigns(budget_holds, budget_until)
        # A campaign whose every row of the batch may go is no longer held.
        sending = {c.campaign_id for c in self.batch} - held_campaigns
        if sending:
            campaigns_hold_clear(campaign_ids=sending)

    def _is_marketing(self, recipient: Claimed) -> bool:
        return self.templates[recipient.template_id].category == TemplateCategory.MARKETING

    def _backoff_holds(self) -> list[Hold]:
        marketing = [c for c in self.batch if self._is_marketing(c)]
        if not marketing:
            return []
        backed_off = recipients_backed_off(self.number.workspace_id, (c.phone for c in marketing))
        return [
            Hold(
                c.id,
                datetime.fromtimestamp(backed_off[c.phone], tz=UTC),
                "Held: Meta's per-person marketing limit",
                "Meta refused another marketing message to this person (131049); no "
                "marketing template goes to them from any campaign until the time shown",
            )
            for c in marketing
            if c.phone in backed_off
        ]

    def _frequency_holds(self, held: set[int]) -> list[Hold]:
        workspace = Workspace.objects.only("marketing_per_contact", "marketing_window_hours").get(
            pk=self.number.workspace_id
        )
        limit, hours = workspace.marketing_per_contact, workspace.marketing_window_hours
        rows = [(c.id, c.phone) for c in self.batch if c.id not in held and self._is_marketing(c)]
        if limit <= 0 or not rows:
            return []
        refused = frequency_take(
            workspace_id=self.number.workspace_id, limit=limit, window_hours=hours, rows=rows
        )
        return [
            Hold(
                recipient_id,
                None,
                "Skipped: frequency limit",
                f"this contact already got {limit} marketing message(s) from this workspace "
                f"in the last {hours} h (workspace setting); skipped rather than sent late",
                RecipientStatus.CANCELLED,
            )
            for recipient_id, _ in rows
            if recipient_id in refused
        ]

    def _budget_holds(self, held: set[int]) -> tuple[list[Hold], float | None]:
        tiers = [
            number.messaging_limit
            for number in Number.objects.filter(
                workspace_id=self.number.workspace_id, waba_id=self.number.waba_id
            ).only("business_messaging_limit", "messaging_limit_tier")
        ]
        limit = portfolio_limit(tiers)
        rows = [c for c in self.batch if c.id not in held]
        if limit is None or not rows:
            return [], None
        waiting, until = budget_take(
            waba_id=self.number.waba_id,
            workspace_id=self.number.workspace_id,
            limit=limit,
            phones=[c.phone for c in rows],
        )
        if not waiting:
            return [], None
        self._budget_limit = limit
        at = datetime.fromtimestamp(until, tz=UTC)
        title = "Held: messaging limit reached"
        details = (
            f"Meta lets this business reach {limit:,} people per rolling 24 h by template; "
            "this one waits until a place frees"
        )
        return [Hold(c.id, at, title, details) for c in rows if c.phone in waiting], until

    def _hold_campaigns(self, holds: list[Hold], until: float | None) -> set[int]:
        at = datetime.fromtimestamp(until or time.time(), tz=UTC)
        by_id = {c.id: c.campaign_id for c in self._claimed}
        campaign_ids = {by_id[h.recipient_id] for h in holds}
        for campaign_id in sorted(campaign_ids):
            campaign_hold(
                campaign_id=campaign_id,
                reason=f"messaging limit reached: Meta lets this business reach "
                f"{self._budget_limit:,} people per rolling 24 h by template; sending goes on "
                f"at {at:%Y-%m-%d %H:%M} UTC",
                until=at,
            )
        return campaign_ids

    @staticmethod
    def _result_of(item: tuple[Claimed, Future]) -> tuple[Claimed, SendResult | GraphError]:
        recipient, future = item
        return recipient, future.result()

    def _render(self, recipient: Claimed) -> list[dict] | None:
        template = self.templates[recipient.template_id]
        try:
            return render_components(template, recipient.variables)
        except RenderError as error:
            problems = "; ".join(f"{k}: {v}" for k, v in sorted(error.problems.items()))
            self._add(
                Outcome(
                    recipient,
                    RecipientStatus.FAILED,
                    False,
                    timezone.now(),
                    error_title="Cannot render the template",
                    error_details=problems,
                )
            )
            return None

    def _mark_attempt(self, recipient: Claimed) -> None:
        self.attempt_marks.mark(recipient.id)

    def _call(self, recipient: Claimed, components: list[dict]) -> SendResult | GraphError:
        template = self.templates[recipient.template_id]
        try:
            return self.client.send_template(
                phone_number_id=self.number.phone_number_id,
                to=recipient.phone.lstrip("+"),
                name=template.name,
                language=template.language,
                components=components,
                callback_data=callback_data_for(recipient.id),
            )
        except GraphError as error:
            return error

    def _settle(self, recipient: Claimed, result: SendResult | GraphError) -> None:
        now = timezone.now()
        if isinstance(result, SendResult):
            self._add(
                Outcome(recipient, RecipientStatus.SENT, True, now, wamid=result.wamid, signal="S")
            )
            return
        self._add(self._on_error(recipient, result, now))

    def _on_error(self, recipient: Claimed, error: GraphError, now: datetime) -> Outcome:
        """The row's outcome from Graph's error table; consequences beyond the row are
        ``messaging.consequences.failure_apply``, the same as for a failed webhook."""
        details = {
            "error_code": error.code,
            "error_title": _title(error),
            "error_details": error.details or error.message or "",
        }
        if error.outcome_unknown:
            # Meta may have accepted it: never resent on our own (engine.md).
            return Outcome(recipient, RecipientStatus.UNKNOWN, True, now, signal="E", **details)
        rule = error.rule
        consequence = rule.consequence
        if consequence is Consequence.RETRY:
            signal = "T" if error.error_class is ErrorClass.THROTTLE else "E"
            return retry_or_fail(recipient, error, now, signal=signal)
        if consequence is Consequence.RETRY_RECIPIENT:
            # That recipient only: the lane and the shared rate carry on.
            return retry_or_fail(recipient, error, now, signal="N")
        failure_apply(
            error=error,
            number_id=self.number.pk,
            campaign_id=recipient.campaign_id,
            phone=recipient.phone,
            template_id=recipient.template_id,
            workspace_id=self.number.workspace_id,
        )
        if consequence in (
            Consequence.STOP_NUMBER,
            Consequence.PAUSE_NUMBER,
            Consequence.PAUSE_ACCOUNT,
        ):
            # Nothing more goes out on this number.
            self.stop_lane = True
            self.stopped_campaigns.update(c.campaign_id for c in self.batch)
        elif consequence in (Consequence.PAUSE_CAMPAIGN, Consequence.TEMPLATE_CHANGED):
            self.stopped_campaigns.add(recipient.campaign_id)
        if consequence in ROW_WAITS:
            # The row waits for a resume; it was not refused for its own sake.
            return Outcome(recipient, RecipientStatus.PENDING, True, now, signal="E", **details)
        return Outcome(
            recipient,
            RecipientStatus.FAILED,
            True,
            now,
            signal="E",
            breaker_code=error.code if counts_toward_breaker(rule) else None,
            **details,
        )

    # -- recording --------------------------------------------------------------------

    def _add(self, outcome: Outcome) -> None:
        self.pending.append(outcome)
        self.done_ids.add(outcome.recipient.id)
        if outcome.attempted and outcome.status != RecipientStatus.UNKNOWN:
            code = outcome.breaker_code
            self._breaker_tokens.append(str(code) if code is not None else "")
            if code is not None:
                # At once, not at the next flush: the breaker must stop the very
                # batch that burns the audience.
                self._feed_breaker()

    def _maybe_flush(self) -> None:
        if (
            len(self.pending) >= settings.LANE_FLUSH_EVERY
            or time.monotonic() - self.last_flush >= settings.LANE_FLUSH_SECONDS
        ):
            self._flush()
            # Pause and cancel take effect within one flush, and a lost lease
            # (Redis restart, long stall) means another link may be starting.
            if not self.lease.renew():
                logger.warning("lane %s lost its lease; ending this link", self.number.pk)
                self.link_cut = True
            self._drop_stopped_campaigns()

    def _drop_stopped_campaigns(self) -> None:
        campaign_ids = {c.campaign_id for c in self.batch} - self.stopped_campaigns
        running = set(
            Campaign.objects.filter(pk__in=campaign_ids, status=CampaignStatus.RUNNING).values_list(
                "pk", flat=True
            )
        )
        self.stopped_campaigns |= campaign_ids - running

    def _flush(self) -> None:
        outcomes, self.pending = self.pending, []
        self.last_flush = time.monotonic()
        if not outcomes:
            return
        recorded = record_outcomes(self.token, outcomes)
        signals = "".join(o.signal for o in outcomes if o.attempted)
        self._feed_breaker()
        finished = Counter()
        for (campaign_id, status), count in recorded.items():
            if status in (RecipientStatus.SENT, RecipientStatus.FAILED, RecipientStatus.UNKNOWN):
                finished[campaign_id] += count
        try:
            campaign_sends_record(finished)
            cut = self.limiter.record(signals)
        except redis_exceptions.RedisError:
            # The outcomes are safe in PostgreSQL; only this batch's feedback to
            # the rate controller is lost.
            logger.warning("lane %s could not report outcomes to the rate store", self.number.pk)
            return
        if cut is not None:
            rate_adjustment_record(old=cut[0], new=cut[1], reason="3 consecutive throttling errors")

    def _feed_breaker(self) -> None:
        """The consecutive-failure breaker of the send answers: a breaker code counts,
        any other attempted outcome resets (one script call per flush, and one per
        breaker failure)."""
        tokens, self._breaker_tokens = self._breaker_tokens, []
        if not tokens or (not any(tokens) and not self._streak_open):
            return
        try:
            code = streak_record(number_id=self.number.pk, via="send", tokens=tokens)
        except redis_exceptions.RedisError:
            logger.warning("lane %s could not feed the failure breaker", self.number.pk)
            return
        self._streak_open = any(tokens) and code is None
        if code is not None:
            breaker_trip_apply(streak_trip(self.number.pk, code))
            self.stop_lane = True
            self.stopped_campaigns.update(c.campaign_id for c in self.batch)


def batch_size(number: Number) -> int:
    """About two seconds of sending at the number's cap, within LANE_BATCH_SIZE.

    Short links keep pause latency and crash exposure (unknowns are at most one
    batch) small, while large enough batches amortise the claim.
    """
    pace = min(current_rate(), float(number.max_mps))
    return max(1, min(settings.LANE_BATCH_SIZE, int(pace * 2)))


def lane_run(number_id: int) -> LinkResult:
    """One link: lease, claim, send, record, release. Never raises for a send failure."""
    token = secrets.token_hex(12)
    lease = Lease(number_id, token)
    if not lease.acquire():
        return LinkResult("busy")
    try:
        number = Number.objects.filter(pk=number_id).first()
        if number is None or not number.is_usable:
            return LinkResult("stopped")
        redis = get_redis()
        with redis.pipeline(transaction=False) as pipe:
            pipe.rpush(marks_key(token), CLAIM_SENTINEL)
            pipe.expire(marks_key(token), MARKS_TTL_SECONDS)
            pipe.execute()
        batch = claim_batch(number_id=number_id, token=token, size=batch_size(number))
        if not batch:
            redis.delete(marks_key(token))
            return LinkResult("idle")
        sender = BatchSender(number=number, token=token, batch=batch, lease=lease)
        sender.run()
        return LinkResult(
            "stopped" if sender.stop_lane else "more",
            claimed=len(batch),
            campaigns={c.campaign_id for c in batch},
        )
    finally:
        lease.release()
