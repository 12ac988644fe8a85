"""Message statuses: match each to its message, order, apply forward only, park the rest."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from redis import exceptions as redis_exceptions

from campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus
from campaigns.services import recipient_suppress_for_error
from messaging.breakers import failure_rate_record, streak_record, streak_trip
from messaging.consequences import breaker_trip_apply, failure_apply
from messaging.graph import (
    ROW_RETRIES,
    ROW_WAITS,
    Consequence,
    GraphError,
    counts_toward_breaker,
    webhook_rule,
)
from numbers.models import Number
from webhooks.inbound import link_replies, lock_recipients, unlinked_replies_to
from webhooks.models import PendingStatus, StatusOutcome, StatusUpdate
from webhooks.parse import TIME_NOTE_PREFIX, callback_recipient_id, first_error, time_note
from webhooks.report import Report
from webhooks.signals import statuses_unmatched

logger = logging.getLogger(__name__)

# Forward order of a message's life; failed is terminal and handled apart.
RANK = {"sent": 1, "delivered": 2, "read": 3}
_STATUS_AT_RANK = {1: RecipientStatus.SENT, 2: RecipientStatus.DELIVERED, 3: RecipientStatus.READ}
_CURRENT_RANK = {
    RecipientStatus.UNKNOWN: 0,
    RecipientStatus.SENT: 1,
    RecipientStatus.DELIVERED: 2,
    RecipientStatus.READ: 3,
}
# Time field of each forward stage.
_STAGES = (("sent_at", 1), ("delivered_at", 2), ("read_at", 3))
_SENT_OR_LATER = frozenset({RecipientStatus.SENT, RecipientStatus.DELIVERED, RecipientStatus.READ})
# Rows the sending engine still owns: a status for them waits until the engine has
# recorded the send's answer, so the two never write the same row in different directions.
ENGINE_OWNED = frozenset(
    {RecipientStatus.PENDING, RecipientStatus.SENDING, RecipientStatus.RETRY_WAIT}
)
# "Failed" can only follow an accepted send (or one whose answer was lost).
_FAILABLE = frozenset({RecipientStatus.SENT, RecipientStatus.UNKNOWN})
# The race a pending status waits out lasts seconds (the send's answer) to minutes (the
# engine's sweeper turning a lost answer into "unknown"); a day means it will never match
# (a message sent outside this product).
PENDING_TTL = timedelta(hours=24)
# Meta's time for a status trails the send we recorded only by clock skew and its whole
# seconds: a status dated earlier than this before the message's sent_at cannot be right.
SEND_SKEW = timedelta(minutes=2)
# A status's note: the one on its time (when it was replaced) first, then its outcome's.
_NOTE_SEP = "; "
# What a parked status's event row is read for: its arrival time, not its body.
_EVENT_COLUMNS_UNUSED = (
    "update__event__body",
    "update__event__headers",
    "update__event__error",
    "update__event__outcome",
)


# --- recording ---------------------------------------------------------------------------


def apply_statuses(groups: list[tuple[Report, list[StatusUpdate]]]) -> None:
    """Record and apply the statuses of one or more events (``(report, updates)`` in event
    order), with the outcome of applying each event after the one before it.

    A status already recorded (by an earlier event, or earlier in these groups) counts as
    a duplicate of its event and changes nothing. The rest are inserted in one statement,
    matched to their messages, applied in (event, Meta time) order to the locked rows held
    in memory, and written back set-wise; those whose message is not known yet, or still
    the engine's, are parked as PendingStatus.
    """
    reports = [report for report, _ in groups]
    candidates = _first_of_each(groups)
    inserted = _insert_status_updates([update for _, update in candidates])
    fresh, positions = _keep_inserted(candidates, inserted, reports)
    _park(_resolve(fresh, reports, positions, parked=False))


def _first_of_each(
    groups: list[tuple[Report, list[StatusUpdate]]],
) -> list[tuple[int, StatusUpdate]]:
    """Each (message, status) once, with the position of the first event carrying it; a
    repeat counts as a duplicate of its own event."""
    candidates: list[tuple[int, StatusUpdate]] = []
    seen: set[tuple[str, str]] = set()
    for position, (report, updates) in enumerate(groups):
        report.counts["statuses"] += len(updates)
        for update in updates:
            key = (update.message_key, update.status)
            if key in seen:
                report.counts["duplicates"] += 1
                continue
            seen.add(key)
            candidates.append((position, update))
    return candidates


def _insert_status_updates(updates: list[StatusUpdate]) -> dict[tuple[str, str], int]:
    """INSERT ... ON CONFLICT DO NOTHING of ``updates`` in one statement; returns the ids
    of the rows it inserted by (message_key, status)."""
    if not updates:
        return {}
    # Sorted, so two transactions inserting overlapping keys take the index locks in one
    # order (no deadlock); unnest keeps the order, WITH ORDINALITY makes it explicit.
    rows = sorted(updates, key=lambda update: (update.message_key, update.status))
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {StatusUpdate._meta.db_table} (
                event_id, message_key, status, wamid, phone_number_id, wa_id, callback_data,
                at, conversation, pricing, errors, outcome, note, created_at
            )
            SELECT v.event_id, v.message_key, v.status, v.wamid, v.phone_number_id, v.wa_id,
                v.callback_data, v.at, v.conversation::jsonb, v.pricing::jsonb,
                v.errors::jsonb, %s, v.note, %s
            FROM unnest(
                %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[]
            ) WITH ORDINALITY AS v(
                event_id, message_key, status, wamid, phone_number_id, wa_id, callback_data,
                at, conversation, pricing, errors, note, ordinal
            )
            ORDER BY v.ordinal
            ON CONFLICT (message_key, status) DO NOTHING
            RETURNING id, message_key, status
            """,  # noqa: S608 - the table name is ours, every value is a parameter
            [
                StatusOutcome.PENDING,
                now,
                [update.event_id for update in rows],
                [update.message_key for update in rows],
                [update.status for update in rows],
                [update.wamid for update in rows],
                [update.phone_number_id for update in rows],
                [update.wa_id for update in rows],
                [update.callback_data for update in rows],
                [update.at for update in rows],
                [_json_or_null(update.conversation) for update in rows],
                [_json_or_null(update.pricing) for update in rows],
                [_json_or_null(update.errors) for update in rows],
                [update.note[:255] for update in rows],
            ],
        )
        inserted = {(key, status): pk for pk, key, status in cursor.fetchall()}
    for update in rows:
        update.created_at = now
    return inserted


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _keep_inserted(
    candidates: list[tuple[int, StatusUpdate]],
    inserted: dict[tuple[str, str], int],
    reports: list[Report],
) -> tuple[list[StatusUpdate], dict[int, int]]:
    """The candidates this insert recorded, now standing for their rows, and each one's
    event position by id; the others were recorded before and count as duplicates."""
    positions: dict[int, int] = {}
    fresh: list[StatusUpdate] = []
    for position, update in candidates:
        pk = inserted.get((update.message_key, update.status))
        if pk is None:
            # Recorded before (a conflicting duplicate keeps its first event).
            reports[position].counts["duplicates"] += 1
            continue
        update.pk = pk
        update._state.adding = False
        positions[pk] = position
        fresh.append(update)
    return fresh, positions


def _park(waiting: list[StatusUpdate]) -> None:
    """Keep ``waiting`` as PendingStatus rows, found again by wamid or by our callback id."""
    if waiting:
        PendingStatus.objects.bulk_create(
            [
                PendingStatus(
                    update=update,
                    wamid=update.wamid,
                    callback_recipient_id=callback_recipient_id(update.callback_data),
                )
                for update in waiting
            ]
        )


# --- matching and applying ----------------------------------------------------------------


@dataclass
class _Pass:
    """One matching pass: the statuses (with the parked ones found on lookup), the locked
    recipients they name, each status's event, and what applying them left to write."""

    updates: list[StatusUpdate]
    reports: list[Report]
    # Update id -> index into reports; 0 when absent.
    positions: dict[int, int]
    by_wamid: dict[str, Recipient]
    by_id: dict[int, Recipient]
    # Update id -> its PendingStatus row, for the parked statuses found on lookup.
    parked_rows: dict[int, PendingStatus] = field(default_factory=dict)
    changed: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Failed statuses applied in this pass, in order: their consequences follow the
    # error table as a send answer's would (messaging.consequences).
    failures: list[tuple[Recipient, Report]] = field(default_factory=list)
    # Per number, in order: a breaker token per final status ("<code>" or "").
    streaks: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Per number: final statuses (delivered or failed), and failures by code.
    finals: Counter = field(default_factory=Counter)
    failed_codes: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    waiting: list[StatusUpdate] = field(default_factory=list)
    _pnid_numbers: dict[str, set[int]] | None = None

    def report_of(self, update: StatusUpdate) -> Report:
        return self.reports[self.positions.get(update.pk, 0)]

    def pnid_numbers(self) -> dict[str, set[int]]:
        """Our numbers by phone number id, for every status of the pass (read once, and only
        when a status is matched by callback id)."""
        if self._pnid_numbers is None:
            self._pnid_numbers = _numbers_by_pnid(u.phone_number_id for u in self.updates)
        return self._pnid_numbers


def _resolve(
    updates: list[StatusUpdate],
    reports: list[Report],
    positions: dict[int, int] | None = None,
    *,
    parked: bool,
) -> list[StatusUpdate]:
    """Match ``updates`` to recipients and apply them; returns those still waiting.

    ``positions`` gives each update's event (an index into ``reports``; 0 without it):
    updates apply event after event, each event's in Meta's time order, so the outcome
    equals applying the events one by one. Statuses parked earlier for the recipients
    found are applied in the same pass ("on lookup"), with the first event that names
    their message. With ``parked`` the updates are themselves parked ones (the retry).
    """
    if not updates:
        return []
    run = _match_recipients(updates, reports, dict(positions or {}))
    if not parked and run.by_id:
        _take_parked(run)
    _clamp_to_sends(run)
    for update in _in_event_then_meta_order(run):
        _apply_one(run, update)
    _offer_unmatched(run)
    waiting_rows = _decide_failed_rows(run)
    done = _write_outcomes(run)
    _write_waiting_rows(waiting_rows)
    _unpark_applied(run, done)
    _link_late_replies(run, done, parked=parked)
    for update in run.waiting:
        if update.pk not in run.parked_rows:
            run.report_of(update).counts["pending"] += 1
    _react_to_failures(run)
    _feed_breakers(run)
    # Parked statuses found on lookup that still wait stay parked as they are.
    return [u for u in run.waiting if u.pk not in run.parked_rows]


def _match_recipients(
    updates: list[StatusUpdate], reports: list[Report], positions: dict[int, int]
) -> _Pass:
    """Lock the recipients ``updates`` name, by wamid or by our id in the callback data."""
    wamids = {update.wamid for update in updates if update.wamid}
    callback_ids = {
        recipient_id
        for update in updates
        if (recipient_id := callback_recipient_id(update.callback_data))
    }
    recipients = lock_recipients(Q(wamid__in=wamids) | Q(pk__in=callback_ids))
    return _Pass(
        updates=list(updates),
        reports=reports,
        positions=positions,
        by_wamid={r.wamid: r for r in recipients if r.wamid},
        by_id={r.pk: r for r in recipients},
    )


def _take_parked(run: _Pass) -> None:
    """Add the statuses parked earlier for the pass's recipients to the pass, each with the
    first event that names its message (the first event overall when none does)."""
    first_named = _first_event_naming(run)
    # The event is read for its arrival time only, not locked (nor lockable: it may be gone).
    found = PendingStatus.objects.select_for_update(skip_locked=True, of=("self", "update")).filter(
        Q(wamid__in=list(run.by_wamid)) | Q(callback_recipient_id__in=list(run.by_id))
    )
    for row in found.select_related("update__event").defer(*_EVENT_COLUMNS_UNUSED):
        run.parked_rows[row.update_id] = row
        named_ids = (
            getattr(run.by_wamid.get(row.wamid), "pk", None),
            row.callback_recipient_id if row.callback_recipient_id in run.by_id else None,
        )
        run.positions[row.update_id] = min(
            (first_named[pk] for pk in named_ids if pk in first_named), default=0
        )
        run.updates.append(row.update)


def _first_event_naming(run: _Pass) -> dict[int, int]:
    """Recipient id -> position of the first event whose statuses name it."""
    first_named: dict[int, int] = {}
    for update in run.updates:
        named = (
            run.by_wamid.get(update.wamid),
            run.by_id.get(callback_recipient_id(update.callback_data) or 0),
        )
        for recipient in named:
            if recipient is not None:
                position = run.positions.get(update.pk, 0)
                first_named[recipient.pk] = min(first_named.get(recipient.pk, position), position)
    return first_named


def _in_event_then_meta_order(run: _Pass) -> list[StatusUpdate]:
    # Event order, then Meta's time order within an event: what one-by-one processing does.
    return sorted(
        run.updates,
        key=lambda u: (run.positions.get(u.pk, 0), u.at, RANK.get(u.status, 4), u.pk or 0),
    )


def _apply_one(run: _Pass, update: StatusUpdate) -> None:
    """Apply ``update`` to its recipient in memory, or set it waiting (message unknown, or
    still the engine's) or ignored (a callback id that cannot be trusted)."""
    report = run.report_of(update)
    recipient, mismatch = _recipient_of(run, update)
    if mismatch:
        update.outcome = StatusOutcome.IGNORED
        _set_note(update, mismatch)
        report.counts[update.outcome] += 1
        return
    if recipient is None:
        _set_note(update, "message not known yet")
        run.waiting.append(update)
        return
    update.recipient = recipient
    if recipient.status in ENGINE_OWNED:
        _set_note(update, f"waits for the send's answer (message is {recipient.status})")
        run.waiting.append(update)
        return
    fields = _advance(recipient, update)
    if "wamid" in fields:
        # Later events find the message by the wamid this one just recorded.
        run.by_wamid[recipient.wamid] = recipient
    run.changed[recipient.pk] |= fields
    if update.outcome == StatusOutcome.APPLIED and update.status in ("failed", "delivered"):
        _count_final(run, recipient, update)
    report.counts[update.outcome] += 1


def _count_final(run: _Pass, recipient: Recipient, update: StatusUpdate) -> None:
    """Note a final status for the consequences and the number's breakers."""
    number_id = recipient.number_id
    run.finals[number_id] += 1
    if update.status == "delivered" or recipient.status != RecipientStatus.FAILED:
        run.streaks[number_id].append("")
        return
    run.failures.append((recipient, run.report_of(update)))
    code = recipient.error_code
    run.failed_codes[number_id][code if code is not None else "none"] += 1
    rule = webhook_rule(code)
    run.streaks[number_id].append(str(code) if counts_toward_breaker(rule) else "")


def _offer_unmatched(run: _Pass) -> None:
    """Statuses no campaign recipient matched may be for the inbox's messages (replies):
    the layers above apply those (webhooks.signals.statuses_unmatched, in event then
    Meta order), and they are not parked."""
    unmatched = [u for u in run.waiting if u.recipient is None]
    if not unmatched:
        return
    taken: dict[int, str] = {}
    for _, response in statuses_unmatched.send(sender=StatusUpdate, updates=unmatched):
        taken.update(response or {})
    if not taken:
        return
    run.waiting = [u for u in run.waiting if u.pk not in taken]
    for update in unmatched:
        if update.pk in taken:
            update.outcome = taken[update.pk]
            _set_note(update, "conversation message")
            run.report_of(update).counts[update.outcome] += 1


def _recipient_of(run: _Pass, update: StatusUpdate) -> tuple[Recipient | None, str]:
    """The locked recipient ``update`` names, by wamid or else by our id in its callback
    data (None when neither is known); and why that callback id cannot be trusted ('' when
    it can, or was not needed)."""
    recipient = run.by_wamid.get(update.wamid) if update.wamid else None
    if recipient is not None:
        return recipient, ""
    candidate = run.by_id.get(callback_recipient_id(update.callback_data) or 0)
    if candidate is None:
        return None, ""
    mismatch = _callback_mismatch(candidate, update, run.pnid_numbers())
    return (None, mismatch) if mismatch else (candidate, "")


def _clamp_to_sends(run: _Pass) -> None:
    """Give the statuses dated before their message was sent (by more than SEND_SKEW) the
    time their event arrived, noted on the status and counted as ``timestamps_clamped``.

    Before the statuses are ordered, so the replaced time is the one they apply in. A time
    replaced already (out of the plausible window when read) is left as it is; a message
    still the engine's has no send time to compare with yet, and is checked when applied.
    """
    for update in run.updates:
        recipient, _ = _recipient_of(run, update)
        if (
            recipient is None
            or recipient.status in ENGINE_OWNED
            or recipient.sent_at is None
            or update.note.startswith(TIME_NOTE_PREFIX)
            or update.at >= recipient.sent_at - SEND_SKEW
        ):
            continue
        why = f"before the message was sent ({recipient.sent_at:%Y-%m-%dT%H:%M:%SZ})"
        _set_note(update, time_note(update.at, why))
        update.at = _arrival(update)
        run.report_of(update).counts["timestamps_clamped"] += 1


def _arrival(update: StatusUpdate) -> datetime:
    """When the event carrying ``update`` arrived; when its row was written once retention
    deleted that event. The event is the instance the update was read with (no query)."""
    event = update.event
    return event.received_at if event is not None else update.created_at


def _set_note(update: StatusUpdate, text: str) -> None:
    """Set ``update``'s note to ``text`` (the outcome's), after its time note if it has one
    (a replaced time stays said whatever happens to the status next)."""
    timed = update.note.startswith(TIME_NOTE_PREFIX)
    time_part, _, outcome_part = (
        update.note.partition(_NOTE_SEP) if timed else ("", "", update.note)
    )
    if text.startswith(TIME_NOTE_PREFIX):
        time_part = text
    else:
        outcome_part = text
    update.note = _NOTE_SEP.join(part for part in (time_part, outcome_part) if part)


def _write_outcomes(run: _Pass) -> list[StatusUpdate]:
    """Write the changed recipients and every status's outcome; returns the statuses that
    no longer wait."""
    _write_recipients([run.by_id[pk] for pk, fields in run.changed.items() if fields])
    waiting_ids = {update.pk for update in run.waiting}
    done = [u for u in run.updates if u.pk not in waiting_ids]
    for update in run.waiting:
        update.outcome = StatusOutcome.PENDING
    _write_status_outcomes(run.updates)
    return done


def _unpark_applied(run: _Pass, done: list[StatusUpdate]) -> None:
    """Delete the PendingStatus rows of the parked statuses this pass settled."""
    applied_parked = [run.parked_rows[u.pk].pk for u in done if u.pk in run.parked_rows]
    if applied_parked:
        PendingStatus.objects.filter(pk__in=applied_parked).delete()
        for update in done:
            if update.pk in run.parked_rows:
                run.report_of(update).counts["pending_applied"] += 1


def _link_late_replies(run: _Pass, done: list[StatusUpdate], *, parked: bool) -> None:
    """Link the replies stored before their message was matched, now that it is."""
    late = [u for u in done if u.recipient and (parked or u.pk in run.parked_rows)]
    by_report: dict[int, list[Recipient]] = defaultdict(list)
    for update in late:
        by_report[run.positions.get(update.pk, 0)].append(update.recipient)
    for position, late_recipients in sorted(by_report.items()):
        # A reply can beat the send's answer just like the statuses did.
        link_replies(unlinked_replies_to(late_recipients), run.reports[position])


def _decide_failed_rows(run: _Pass) -> list[Recipient]:
    """The failed rows whose error says they wait rather than fail (the table's
    ROW_WAITS and ROW_RETRIES, as in the lane): while their campaign is running or
    paused they go back in line, pending (for a resume) or retry_wait (after the retry
    delay, within the retries allowed); else they stay failed. Returns those rows."""
    candidates = [
        recipient
        for recipient, _ in run.failures
        if webhook_rule(recipient.error_code).consequence in ROW_WAITS | ROW_RETRIES
    ]
    if not candidates:
        return []
    live = set(
        Campaign.objects.filter(
            pk__in={r.campaign_id for r in candidates},
            status__in=(CampaignStatus.RUNNING, CampaignStatus.PAUSED),
        ).values_list("pk", flat=True)
    )
    now = timezone.now()
    delays = settings.SEND_RETRY_DELAYS
    waiting = []
    for recipient in candidates:
        if recipient.campaign_id not in live:
            continue
        consequence = webhook_rule(recipient.error_code).consequence
        if consequence in ROW_RETRIES:
            if recipient.attempts > len(delays):
                continue
            delay = delays[max(recipient.attempts, 1) - 1]
            if consequence is Consequence.RETRY_RECIPIENT:
                delay = max(delay, settings.PAIR_RATE_RETRY_SECONDS)
            recipient.status = RecipientStatus.RETRY_WAIT
            recipient.next_attempt_at = now + timedelta(seconds=delay)
        else:
            recipient.status = RecipientStatus.PENDING
            recipient.next_attempt_at = None
        recipient.failed_at = None
        run.changed[recipient.pk] |= {"status", "failed_at"}
        waiting.append(recipient)
    return waiting


def _write_waiting_rows(recipients: list[Recipient]) -> None:
    """The retry time and a free claim for the rows put back in line (one statement)."""
    if not recipients:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Recipient._meta.db_table} AS r
            SET next_attempt_at = v.next_at, claim_token = '', claimed_at = NULL
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, next_at)
            WHERE r.id = v.id
            """,  # noqa: S608 - the table name is ours, every value is a parameter
            [[r.pk for r in recipients], [r.next_attempt_at for r in recipients]],
        )


def _react_to_failures(run: _Pass) -> None:
    """What each failed status does beyond its row, by the same table and services as a
    send answer's error: suppress, back the phone off, pause the campaign, hold or stop
    the number, pause the account. Each action once per pass and target."""
    done: set[tuple] = set()
    for recipient, report in run.failures:
        code = recipient.error_code
        rule = webhook_rule(code)
        consequence = rule.consequence
        if consequence in (Consequence.FAIL, Consequence.RETRY, Consequence.RETRY_RECIPIENT):
            continue
        if consequence is Consequence.SUPPRESS:
            added = recipient_suppress_for_error(
                campaign_id=recipient.campaign_id,
                phone=recipient.phone,
                code=code,
                message=recipient.error_title or "user stopped marketing messages",
            )
            report.counts["suppressions_added" if added else "suppressions_existing"] += 1
            continue
        if consequence in (
            Consequence.STOP_NUMBER,
            Consequence.PAUSE_NUMBER,
            Consequence.PAUSE_ACCOUNT,
        ):
            key: tuple = (consequence, recipient.number_id)
        elif consequence is Consequence.BACKOFF_RECIPIENT:
            key = (consequence, recipient.campaign_id, recipient.phone)
        else:
            key = (consequence, recipient.campaign_id)
        if key in done:
            continue
        done.add(key)
        failure_apply(
            error=GraphError(recipient.error_title or f"Meta error {code}", code=code),
            number_id=recipient.number_id,
            campaign_id=recipient.campaign_id,
            phone=recipient.phone,
            template_id=recipient.template_id,
        )
        report.counts[f"consequence:{consequence}"] += 1


def _feed_breakers(run: _Pass) -> None:
    """The numbers' breakers, by webhook: identical failures in a row, and the failed
    share over a window; a trip pauses the number's campaigns."""
    for number_id in sorted(run.finals):
        trips = []
        try:
            code = streak_record(number_id=number_id, via="webhook", tokens=run.streaks[number_id])
            rate_trip = failure_rate_record(
                number_id=number_id,
                final=run.finals[number_id],
                failed=run.failed_codes.get(number_id, Counter()),
            )
        except redis_exceptions.RedisError:
            # The statuses are applied; only this pass's count toward the breakers is lost.
            logger.warning("could not feed the breakers of number %s", number_id)
            continue
        if code is not None:
            trips.append(streak_trip(number_id, code))
        if rate_trip is not None:
            trips.append(rate_trip)
        for trip in trips:
            breaker_trip_apply(trip)


# Every recipient column _advance may change, written together (the rows are locked, so
# rewriting an unchanged value loses nothing).
_ADVANCED_COLUMNS = (
    ("status", "text"),
    ("wamid", "text"),
    ("sent_at", "timestamptz"),
    ("delivered_at", "timestamptz"),
    ("read_at", "timestamptz"),
    ("failed_at", "timestamptz"),
    ("error_code", "integer"),
    ("error_title", "text"),
    ("error_details", "text"),
)


def _write_recipients(recipients: list[Recipient]) -> None:
    """One UPDATE ... FROM unnest(...) for every changed recipient: Django's bulk_update
    builds a CASE per row and column, which cost more than the rest of a batch."""
    if not recipients:
        return
    names = [name for name, _ in _ADVANCED_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Recipient._meta.db_table} AS r
            SET {", ".join(f"{name} = v.{name}" for name in names)}
            FROM unnest(%s::bigint[], {", ".join(f"%s::{kind}[]" for _, kind in _ADVANCED_COLUMNS)})
                AS v(id, {", ".join(names)})
            WHERE r.id = v.id
            """,  # noqa: S608 - names are ours, every value is a parameter
            [
                [recipient.pk for recipient in recipients],
                *([getattr(recipient, name) for recipient in recipients] for name in names),
            ],
        )


def _write_status_outcomes(updates: list[StatusUpdate]) -> None:
    """Each status row's recipient, outcome, note and time (replaced when implausible),
    in one statement."""
    if not updates:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {StatusUpdate._meta.db_table} AS s
            SET recipient_id = v.recipient_id, outcome = v.outcome, note = v.note, at = v.at
            FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[])
                AS v(id, recipient_id, outcome, note, at)
            WHERE s.id = v.id
            """,  # noqa: S608 - the table name is ours, every value is a parameter
            [
                [update.pk for update in updates],
                [update.recipient_id for update in updates],
                [update.outcome for update in updates],
                [update.note[:255] for update in updates],
                [update.at for update in updates],
            ],
        )


def _numbers_by_pnid(pnids: Iterable[str]) -> dict[str, set[int]]:
    result: dict[str, set[int]] = defaultdict(set)
    for pk, pnid in Number.objects.filter(phone_number_id__in=set(pnids)).values_list(
        "pk", "phone_number_id"
    ):
        result[pnid].add(pk)
    return result


def _callback_mismatch(
    recipient: Recipient, update: StatusUpdate, pnid_numbers: dict[str, set[int]]
) -> str:
    """Why our id in the callback data cannot be trusted for this status ('' when it can).

    Another installation sending through the same Meta app echoes its own ids, so the id
    must belong to a message of the number the status came from.
    """
    if update.phone_number_id and recipient.number_id not in pnid_numbers.get(
        update.phone_number_id, ()
    ):
        return "callback id names a message of another number"
    if recipient.wamid and update.wamid and recipient.wamid != update.wamid:
        return f"callback id names a message sent as {recipient.wamid}"[:255]
    return ""


def _advance(recipient: Recipient, update: StatusUpdate) -> set[str]:
    """Move ``recipient`` forward by ``update`` (sets update.outcome); returns the changed
    fields.

    sent < delivered < read, never back; a later stage implies the earlier ones happened
    no later (their times are filled, and an earlier real time replaces an implied one).
    Failed follows only sent or unknown and is terminal. Cancelled rows are left alone.
    """
    fields: set[str] = set()
    if recipient.status == RecipientStatus.CANCELLED:
        update.outcome = StatusOutcome.IGNORED
        _set_note(update, "message was cancelled")
        return fields
    if update.status != "failed" and update.status not in RANK:
        update.outcome = StatusOutcome.IGNORED
        _set_note(update, f"status {update.status!r} not tracked")
        return fields
    if update.wamid and not recipient.wamid:
        # An "unknown" send resolved by our callback id: now we know its wamid.
        recipient.wamid = update.wamid
        fields.add("wamid")
    if update.status == "failed":
        if recipient.status in _FAILABLE:
            error = first_error(update.errors)
            recipient.status = RecipientStatus.FAILED
            recipient.failed_at = update.at
            recipient.error_code = error["code"]
            recipient.error_title = error["title"]
            recipient.error_details = error["details"]
            fields |= {"status", "failed_at", "error_code", "error_title", "error_details"}
    elif recipient.status != RecipientStatus.FAILED:
        rank = RANK[update.status]
        for time_field, stage in _STAGES:
            if stage > rank:
                break
            current = getattr(recipient, time_field)
            if current is None or update.at < current:
                setattr(recipient, time_field, update.at)
                fields.add(time_field)
        target = _STATUS_AT_RANK[max(_CURRENT_RANK.get(recipient.status, 0), rank)]
        if recipient.status != target:
            recipient.status = target
            fields.add("status")
    update.outcome = StatusOutcome.APPLIED if fields else StatusOutcome.UNCHANGED
    return fields


# --- parked statuses ---------------------------------------------------------


def pending_statuses_apply(*, limit: int = 1000) -> int:
    """Apply parked statuses whose message is now known; expire those waiting too long.

    Returns how many were applied. Run periodically (and callable right after the engine
    records send results). Rows another worker holds are skipped.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            PendingStatus.objects.select_for_update(skip_locked=True, of=("self", "update"))
            .select_related("update__event")
            .defer(*_EVENT_COLUMNS_UNUSED)
            .order_by(F("last_tried_at").asc(nulls_first=True), "pk")[:limit]
        )
        if not rows:
            return 0
        report = Report()
        waiting = {u.pk for u in _resolve([row.update for row in rows], [report], parked=True)}
        applied = [row.pk for row in rows if row.update_id not in waiting]
        PendingStatus.objects.filter(pk__in=applied).delete()
        stale = [
            row for row in rows if row.update_id in waiting and row.created_at < now - PENDING_TTL
        ]
        if stale:
            for row in stale:
                row.update.outcome = StatusOutcome.EXPIRED
                _set_note(row.update, "no message matched within a day")
            _write_status_outcomes([row.update for row in stale])
            PendingStatus.objects.filter(pk__in=[row.pk for row in stale]).delete()
        PendingStatus.objects.filter(
            pk__in=[row.pk for row in rows if row.update_id in waiting]
        ).update(attempts=F("attempts") + 1, last_tried_at=now)
    return len(applied)
