"""Message statuses: match each to its message, order, apply forward only, park the rest."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns.models import Recipient, RecipientStatus
from campaigns.services import recipient_suppress_for_error
from messaging.graph import Consequence, consequence_of
from numbers.models import Number
from webhooks.inbound import link_replies, lock_recipients, unlinked_replies_to
from webhooks.models import PendingStatus, StatusOutcome, StatusUpdate
from webhooks.parse import TIME_NOTE_PREFIX, callback_recipient_id, first_error, time_note
from webhooks.report import Report

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
    to_suppress: list[tuple[Recipient, Report]] = field(default_factory=list)
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
    done = _write_outcomes(run)
    _unpark_applied(run, done)
    _link_late_replies(run, done, parked=parked)
    for update in run.waiting:
        if update.pk not in run.parked_rows:
            run.report_of(update).counts["pending"] += 1
    _suppress_stopped(run)
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
    if (
        update.outcome == StatusOutcome.APPLIED
        and recipient.status == RecipientStatus.FAILED
        and consequence_of(recipient.error_code) is Consequence.SUPPRESS
    ):
        run.to_suppress.append((recipient, report))
    report.counts[update.outcome] += 1


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


def _suppress_stopped(run: _Pass) -> None:
    """Suppress the users whose message failed because they stopped marketing messages."""
    for recipient, report in run.to_suppress:
        added = recipient_suppress_for_error(
            campaign_id=recipient.campaign_id,
            phone=recipient.phone,
            code=recipient.error_code,
            message=recipient.error_title or "user stopped marketing messages",
        )
        report.counts["suppressions_added" if added else "suppressions_existing"] += 1


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
