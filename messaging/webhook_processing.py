"""Applying stored webhook events (message statuses, inbound messages, template, number and
user-preference changes) and the campaign funnel built on them.

Everything an event changes happens in one transaction with the event's own status, so an
event is either applied whole or not at all, and reprocessing it changes nothing already
applied (statuses are unique per message and status, inbound messages per number and id,
and every recipient change only moves forward).

Events holding only statuses (nearly all of them) are drained in batches: one transaction
claims a few hundred, applies their statuses set-wise in the order one-by-one processing
would, and marks them, in a constant number of statements. Anything else, and a batch that
raises, goes through ``webhook_event_process`` one event at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import Workspace
from campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus, SuppressionSource
from campaigns.services import (
    CampaignStateError,
    SuppressionError,
    campaign_pause,
    suppression_create,
)
from messaging.callbacks import recipient_id_from
from messaging.services import campaign_counters_from_rows
from messaging.webhook_models import (
    InboundMessage,
    PendingStatus,
    StatusOutcome,
    StatusUpdate,
    WebhookEvent,
    WebhookEventStatus,
)
from numbers.models import Number, NumberStatus
from templates_sync.models import StatusSource, Template, TemplateStatus
from templates_sync.services import template_status_record

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
# Meta: the user stopped marketing messages from this business (graph-api.md, errors).
USER_STOPPED_MARKETING = 131050
PAUSING_TEMPLATE_STATUSES = frozenset(
    {TemplateStatus.PAUSED, TemplateStatus.DISABLED, TemplateStatus.REJECTED}
)
# The race a pending status waits out lasts seconds (the send's answer) to minutes (the
# engine's sweeper turning a lost answer into "unknown"); a day means it will never match
# (a message sent outside this product).
PENDING_TTL = timedelta(hours=24)
# Events one drain transaction claims: a batch of 200 status events takes ~0.1-0.2 s here
# (short row locks), and the per-batch statements are then a small share of the work.
DRAIN_BATCH = 200
# An event still "received" this long after it was queued lost its task; queue it again.
REQUEUE_AFTER = timedelta(minutes=5)
# Bigger than any timestamp Meta sends (year 2100): rejects garbage before datetime does.
_MAX_EPOCH = 4_102_444_800
_MAX_BIGINT = 2**63 - 1
_MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
_MEDIA_FIELDS = ("id", "mime_type", "sha256", "caption", "filename", "voice", "animated", "url")


def dedupe_key_for(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --- the event ------------------------------------------------------------------------


@dataclass
class Report:
    """What processing one event did (counts) and what a person should look at (problems)."""

    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    deltas: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    after_commit: list[Any] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)
        self.counts["problems"] += 1

    def outcome(self) -> dict[str, int]:
        """The counts worth keeping on the event (zeros dropped)."""
        return {key: count for key, count in self.counts.items() if count}


def webhook_event_process(*, event_id: int, force: bool = False) -> WebhookEvent | None:
    """Apply one stored event; returns it, or None when no such event exists.

    Without ``force`` only a ``received`` event is processed; ``force`` (the admin's
    reprocess) processes it again whatever its status, which changes nothing already
    applied. An event with a bad signature is never processed. Malformed or unknown
    content ends ``flagged``; an unexpected error ends ``failed`` (kept, reprocessable).
    Raises OperationalError (deadlock, lost connection) so the task can retry.
    """
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
            if event is None:
                return None
            if not event.signature_valid:
                return event
            if event.status != WebhookEventStatus.RECEIVED and not force:
                return event
            report = Report()
            payload = _parse(event.body_bytes, report)
            if payload is not None:
                _apply_collected(event, _collect_payload(event, payload, report), report)
            _flush_counters([report])
            event.status = _final_status(report)
            event.error = "; ".join(report.problems)
            event.outcome = report.outcome()
            event.processed_at = timezone.now()
            event.attempts += 1
            event.save(update_fields=["status", "error", "outcome", "processed_at", "attempts"])
            for action in report.after_commit:
                transaction.on_commit(action)
        return event
    except OperationalError:
        raise
    except Exception as error:
        # A bug must not lose the event: it stays stored, marked, and can be reprocessed.
        logger.exception("webhook event %s failed", event_id)
        WebhookEvent.objects.filter(pk=event_id).update(
            status=WebhookEventStatus.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            attempts=F("attempts") + 1,
        )
        return WebhookEvent.objects.filter(pk=event_id).first()


def webhook_events_drain(*, limit: int = DRAIN_BATCH) -> int:
    """Process up to ``limit`` received events in arrival order; returns how many were
    claimed.

    Events holding only statuses are applied together in one transaction, exactly as if
    each had been processed after the one before it; the others (inbound messages,
    template and number changes), any event whose content raised while being read, and
    the whole batch when applying it raised, are then processed one by one by
    ``webhook_event_process`` (which flags or fails a bad event alone). Events another
    worker holds are skipped. Raises OperationalError (deadlock, lost connection) with the
    batch rolled back whole, so the caller can retry.
    """
    one_by_one: list[int] = []
    with transaction.atomic():
        events = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookEventStatus.RECEIVED, signature_valid=True)
            .only("pk", "body", "received_at")
            # Arrival order, read straight off the partial index of received events: by pk
            # it sorted every received row per claim, a cost that grows with a backlog.
            .order_by("received_at")[:limit]
        )
        if not events:
            return 0
        claimed: list[tuple[WebhookEvent, Report, list[StatusUpdate]]] = []
        for event in events:
            report = Report()
            try:
                payload = _parse(event.body_bytes, report)
                content = _Batch() if payload is None else _collect_payload(event, payload, report)
            except Exception:
                logger.exception("webhook event %s could not be read in a batch", event.pk)
                one_by_one.append(event.pk)
                continue
            if content.only_statuses:
                claimed.append((event, report, list(content.statuses.values())))
            else:
                one_by_one.append(event.pk)
        try:
            with transaction.atomic():
                reports = [report for _, report, _ in claimed]
                _apply_statuses([(report, updates) for _, report, updates in claimed])
                _flush_counters(reports)
                _mark_events([(event.pk, report) for event, report, _ in claimed])
        except OperationalError:
            raise
        except Exception:
            # One bad event must not hold up the others: each gets its own transaction.
            logger.exception("a batch of %d webhook events failed; one by one now", len(claimed))
            one_by_one.extend(event.pk for event, _, _ in claimed)
    arrival = {event.pk: index for index, event in enumerate(events)}
    for event_id in sorted(one_by_one, key=arrival.__getitem__):
        webhook_event_process(event_id=event_id)
    return len(events)


def _final_status(report: Report) -> str:
    return WebhookEventStatus.FLAGGED if report.problems else WebhookEventStatus.PROCESSED


def _mark_events(done: list[tuple[int, Report]]) -> None:
    """Record each event's status, problems and outcome in one statement."""
    if not done:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {WebhookEvent._meta.db_table} AS e
            SET status = v.status, error = v.error, outcome = v.outcome::jsonb,
                processed_at = %s, attempts = e.attempts + 1
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])
                AS v(id, status, error, outcome)
            WHERE e.id = v.id
            """,  # noqa: S608 - the table name is ours, every value is a parameter
            [
                timezone.now(),
                [event_id for event_id, _ in done],
                [_final_status(report) for _, report in done],
                ["; ".join(report.problems) for _, report in done],
                [json.dumps(report.outcome()) for _, report in done],
            ],
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _without_nul(value: Any) -> Any:
    """``value`` with NUL characters dropped from every string (PostgreSQL stores none)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def _parse(body: bytes, report: Report) -> Any:
    try:
        return _without_nul(json.loads(body, parse_constant=_reject_constant))
    except (ValueError, RecursionError) as error:
        report.problem(f"malformed JSON: {str(error)[:200]}")
        return None


def _text(value: Any, max_length: int) -> str | None:
    """``value`` as a string that fits the column, or None (numbers are accepted as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and len(value) <= max_length:
        return value
    return None


def _time(value: Any) -> datetime | None:
    """Meta's epoch seconds (a string or a number) as an aware datetime, or None."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= _MAX_EPOCH:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any, what: str, report: Report) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        report.problem(f"{what} is not a list")
        return []
    return value


@dataclass
class _Batch:
    """Everything one event carries, collected before any of it is applied."""

    statuses: dict[tuple[str, str], StatusUpdate] = field(default_factory=dict)
    inbound: list[tuple[str, dict, dict[str, str]]] = field(default_factory=list)
    preferences: list[tuple[str, dict]] = field(default_factory=list)
    templates: list[tuple[str, datetime | None, dict]] = field(default_factory=list)
    number_changes: list[tuple[str, str, datetime | None, dict]] = field(default_factory=list)

    @property
    def only_statuses(self) -> bool:
        """Nothing but statuses (or nothing at all): the drain applies it in a batch."""
        return not (self.inbound or self.preferences or self.templates or self.number_changes)


def _collect_payload(event: WebhookEvent, payload: Any, report: Report) -> _Batch:
    batch = _Batch()
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        report.problem("not a WhatsApp webhook: no entry list")
        return batch
    if payload.get("object") != "whatsapp_business_account":
        report.problem(f"unexpected object {str(payload.get('object'))[:60]!r}")
        return batch
    for entry in payload["entry"]:
        if not isinstance(entry, dict):
            report.problem("an entry is not an object")
            continue
        waba_id = _text(entry.get("id"), 32) or ""
        entry_time = _time(entry.get("time"))
        for change in _list(entry.get("changes"), "entry.changes", report):
            value = _dict(change).get("value") if isinstance(change, dict) else None
            kind = _dict(change).get("field")
            if not isinstance(value, dict):
                report.problem(f"change {str(kind)[:60]!r} has no value object")
                continue
            if kind == "messages":
                _collect_messages(event, value, batch, report)
            elif kind == "message_template_status_update":
                batch.templates.append((waba_id, entry_time, value))
            elif kind in ("phone_number_quality_update", "account_update"):
                batch.number_changes.append((kind, waba_id, entry_time, value))
            elif kind == "user_preferences":
                pnid = _text(_dict(value.get("metadata")).get("phone_number_id"), 32) or ""
                for item in _list(value.get("user_preferences"), "user_preferences", report):
                    batch.preferences.append((pnid, _dict(item)))
            else:
                # A field we are subscribed to but do not act on (template quality, ...):
                # the raw event keeps it.
                report.counts[f"ignored:{str(kind)[:60]}"] += 1
    return batch


def _apply_collected(event: WebhookEvent, batch: _Batch, report: Report) -> None:
    if batch.statuses:
        _apply_statuses([(report, list(batch.statuses.values()))])
    if batch.inbound:
        _store_inbound(event, batch.inbound, report)
    for pnid, item in batch.preferences:
        _apply_preference(pnid, item, report)
    for waba_id, at, value in batch.templates:
        _apply_template_status(waba_id, at or event.received_at, value, report)
    for kind, waba_id, at, value in batch.number_changes:
        _apply_number_change(kind, waba_id, at or event.received_at, value, report)


def _collect_messages(event: WebhookEvent, value: dict, batch: _Batch, report: Report) -> None:
    pnid = _text(_dict(value.get("metadata")).get("phone_number_id"), 32) or ""
    for item in _list(value.get("statuses"), "value.statuses", report):
        update = _status_from(event, pnid, item, report)
        if update is not None:
            # The same status twice in one POST counts once.
            batch.statuses.setdefault((update.message_key, update.status), update)
    names: dict[str, str] = {}
    for contact in _list(value.get("contacts"), "value.contacts", report):
        wa_id = _text(_dict(contact).get("wa_id"), 32)
        name = _dict(_dict(contact).get("profile")).get("name")
        if wa_id and isinstance(name, str):
            names[wa_id] = name[:256]
    for item in _list(value.get("messages"), "value.messages", report):
        if not isinstance(item, dict):
            report.problem("a message is not an object")
            continue
        batch.inbound.append((pnid, item, names))
    if isinstance(value.get("errors"), list):
        report.counts["value_errors"] += len(value["errors"])


def _status_from(event: WebhookEvent, pnid: str, item: Any, report: Report) -> StatusUpdate | None:
    if not isinstance(item, dict):
        report.problem("a status is not an object")
        return None
    status = _text(item.get("status"), 16)
    wamid = _text(item.get("id"), 128) or ""
    callback_data = _text(item.get("biz_opaque_callback_data"), 512) or ""
    callback_id = _callback_recipient_id(callback_data)
    key = wamid or (f"recipient:{callback_id}" if callback_id else "")
    if not status or not key:
        report.problem("a status without a status or a message id")
        return None
    at = _time(item.get("timestamp"))
    if at is None:
        report.problem(f"status {status} of {key}: bad timestamp, used the receive time")
        at = event.received_at
    errors = item.get("errors")
    return StatusUpdate(
        event=event,
        message_key=key,
        status=status,
        wamid=wamid,
        phone_number_id=pnid,
        wa_id=_text(item.get("recipient_id"), 32) or "",
        callback_data=callback_data,
        at=at,
        conversation=_dict(item.get("conversation")) or None,
        pricing=_dict(item.get("pricing")) or None,
        errors=errors if isinstance(errors, list) else None,
    )


def _callback_recipient_id(callback_data: str) -> int | None:
    recipient_id = recipient_id_from(callback_data) if callback_data.isascii() else None
    if recipient_id is None or not 0 < recipient_id <= _MAX_BIGINT:
        return None
    return recipient_id


# --- statuses ------------------------------------------------------------------------


def _apply_statuses(groups: list[tuple[Report, list[StatusUpdate]]]) -> None:
    """Record and apply the statuses of one or more events (``(report, updates)`` in event
    order), with the outcome of applying each event after the one before it.

    A status already recorded (by an earlier event, or earlier in these groups) counts as
    a duplicate of its event and changes nothing. The rest are inserted in one statement,
    matched to their messages, applied in (event, Meta time) order to the locked rows held
    in memory, and written back set-wise; those whose message is not known yet, or still
    the engine's, are parked as PendingStatus.
    """
    reports = [report for report, _ in groups]
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
    inserted = _insert_status_updates([update for _, update in candidates])
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
    waiting = _resolve(fresh, reports, positions, parked=False)
    if waiting:
        PendingStatus.objects.bulk_create(
            [
                PendingStatus(
                    update=update,
                    wamid=update.wamid,
                    callback_recipient_id=_callback_recipient_id(update.callback_data),
                )
                for update in waiting
            ]
        )


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
                v.errors::jsonb, %s, '', %s
            FROM unnest(
                %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::text[]
            ) WITH ORDINALITY AS v(
                event_id, message_key, status, wamid, phone_number_id, wa_id, callback_data,
                at, conversation, pricing, errors, ordinal
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
            ],
        )
        inserted = {(key, status): pk for pk, key, status in cursor.fetchall()}
    for update in rows:
        update.created_at = now
    return inserted


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


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
    positions = dict(positions or {})
    wamids = {update.wamid for update in updates if update.wamid}
    callback_ids = {
        recipient_id
        for update in updates
        if (recipient_id := _callback_recipient_id(update.callback_data))
    }
    recipients = _lock_recipients(Q(wamid__in=wamids) | Q(pk__in=callback_ids))
    by_wamid = {r.wamid: r for r in recipients if r.wamid}
    by_id = {r.pk: r for r in recipients}

    updates = list(updates)
    parked_rows: dict[int, PendingStatus] = {}
    if not parked and recipients:
        first_named: dict[int, int] = {}
        for update in updates:
            named = (
                by_wamid.get(update.wamid),
                by_id.get(_callback_recipient_id(update.callback_data) or 0),
            )
            for recipient in named:
                if recipient is not None:
                    position = positions.get(update.pk, 0)
                    first_named[recipient.pk] = min(
                        first_named.get(recipient.pk, position), position
                    )
        found = PendingStatus.objects.select_for_update(skip_locked=True).filter(
            Q(wamid__in=list(by_wamid)) | Q(callback_recipient_id__in=list(by_id))
        )
        for row in found.select_related("update"):
            parked_rows[row.update_id] = row
            named_ids = (
                getattr(by_wamid.get(row.wamid), "pk", None),
                row.callback_recipient_id if row.callback_recipient_id in by_id else None,
            )
            positions[row.update_id] = min(
                (first_named[pk] for pk in named_ids if pk in first_named), default=0
            )
            updates.append(row.update)

    def report_of(update: StatusUpdate) -> Report:
        return reports[positions.get(update.pk, 0)]

    pnid_numbers: dict[str, set[int]] | None = None
    changed: dict[int, set[str]] = defaultdict(set)
    suppress: list[tuple[Recipient, str, Report]] = []
    waiting: list[StatusUpdate] = []
    # Event order, then Meta's time order within an event: what one-by-one processing does.
    order = sorted(
        updates,
        key=lambda u: (positions.get(u.pk, 0), u.at, RANK.get(u.status, 4), u.pk or 0),
    )
    for update in order:
        report = report_of(update)
        recipient = by_wamid.get(update.wamid) if update.wamid else None
        if recipient is None:
            candidate = by_id.get(_callback_recipient_id(update.callback_data) or 0)
            if candidate is not None:
                if pnid_numbers is None:
                    pnid_numbers = _numbers_by_pnid(u.phone_number_id for u in updates)
                mismatch = _callback_mismatch(candidate, update, pnid_numbers)
                if mismatch:
                    update.outcome, update.note = StatusOutcome.IGNORED, mismatch
                    report.counts[update.outcome] += 1
                    continue
                recipient = candidate
        if recipient is None:
            update.note = "message not known yet"
            waiting.append(update)
            continue
        update.recipient = recipient
        if recipient.status in ENGINE_OWNED:
            update.note = f"waits for the send's answer (message is {recipient.status})"
            waiting.append(update)
            continue
        fields, counts = _advance(recipient, update)
        if "wamid" in fields:
            # Later events find the message by the wamid this one just recorded.
            by_wamid[recipient.wamid] = recipient
        changed[recipient.pk] |= fields
        report.deltas[recipient.campaign_id].update(counts)
        if (
            update.outcome == StatusOutcome.APPLIED
            and recipient.status == RecipientStatus.FAILED
            and recipient.error_code == USER_STOPPED_MARKETING
        ):
            suppress.append((recipient, recipient.error_title, report))
        report.counts[update.outcome] += 1

    _write_recipients([by_id[pk] for pk, fields in changed.items() if fields])
    waiting_ids = {update.pk for update in waiting}
    done = [u for u in updates if u.pk not in waiting_ids]
    for update in waiting:
        update.outcome = StatusOutcome.PENDING
    _write_status_outcomes(updates)
    applied_parked = [parked_rows[u.pk].pk for u in done if u.pk in parked_rows]
    if applied_parked:
        PendingStatus.objects.filter(pk__in=applied_parked).delete()
        for update in done:
            if update.pk in parked_rows:
                report_of(update).counts["pending_applied"] += 1
    late = [u for u in done if u.recipient and (parked or u.pk in parked_rows)]
    by_report: dict[int, list[Recipient]] = defaultdict(list)
    for update in late:
        by_report[positions.get(update.pk, 0)].append(update.recipient)
    for position, late_recipients in sorted(by_report.items()):
        # A reply can beat the send's answer just like the statuses did.
        _link_replies(_unlinked_replies_to(late_recipients), reports[position])
    for update in waiting:
        if update.pk not in parked_rows:
            report_of(update).counts["pending"] += 1
    for recipient, title, report in suppress:
        _suppress(
            workspace_id=_workspace_of_campaign(recipient.campaign_id),
            phone=recipient.phone,
            reason=f"Meta error {USER_STOPPED_MARKETING}: {title or 'user stopped marketing messages'}",
            report=report,
        )
    # Parked statuses found on lookup that still wait stay parked as they are.
    return [u for u in waiting if u.pk not in parked_rows]


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
    """Each status row's recipient, outcome and note, in one statement."""
    if not updates:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {StatusUpdate._meta.db_table} AS s
            SET recipient_id = v.recipient_id, outcome = v.outcome, note = v.note
            FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[])
                AS v(id, recipient_id, outcome, note)
            WHERE s.id = v.id
            """,  # noqa: S608 - the table name is ours, every value is a parameter
            [
                [update.pk for update in updates],
                [update.recipient_id for update in updates],
                [update.outcome for update in updates],
                [update.note[:255] for update in updates],
            ],
        )


def _lock_recipients(condition: Q) -> list[Recipient]:
    # Locked in id order: two events touching the same recipients cannot deadlock here.
    return list(
        Recipient.objects.select_for_update(of=("self",))
        .filter(condition)
        .only(
            "id",
            "campaign_id",
            "number_id",
            "phone",
            "status",
            "wamid",
            "error_code",
            "error_title",
            "error_details",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "replied_at",
        )
        .order_by("pk")
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


def _advance(recipient: Recipient, update: StatusUpdate) -> tuple[set[str], Counter]:
    """Move ``recipient`` forward by ``update`` (sets update.outcome); returns the changed
    fields and the campaign counter deltas.

    sent < delivered < read, never back; a later stage implies the earlier ones happened
    no later (their times are filled, and an earlier real time replaces an implied one).
    Failed follows only sent or unknown and is terminal. Cancelled rows are left alone.
    """
    fields: set[str] = set()
    if recipient.status == RecipientStatus.CANCELLED:
        update.outcome, update.note = StatusOutcome.IGNORED, "message was cancelled"
        return fields, Counter()
    if update.status != "failed" and update.status not in RANK:
        update.outcome, update.note = StatusOutcome.IGNORED, f"status {update.status!r} not tracked"
        return fields, Counter()
    before = _counted(recipient)
    if update.wamid and not recipient.wamid:
        # An "unknown" send resolved by our callback id: now we know its wamid.
        recipient.wamid = update.wamid
        fields.add("wamid")
    if update.status == "failed":
        if recipient.status in _FAILABLE:
            error = _first_error(update.errors)
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
    after = _counted(recipient)
    return fields, Counter({name: after[name] - before[name] for name in after})


def _counted(recipient: Recipient) -> dict[str, int]:
    """Which campaign counters count ``recipient``; mirrors messaging.services.COUNTED, the
    definition the engine's reconcile checks counters against."""
    return {
        "sent": int(recipient.status in _SENT_OR_LATER),
        "delivered": int(
            recipient.delivered_at is not None
            or recipient.status in (RecipientStatus.DELIVERED, RecipientStatus.READ)
        ),
        "read": int(recipient.status == RecipientStatus.READ),
        "failed": int(recipient.status == RecipientStatus.FAILED),
    }


def _first_error(errors: Any) -> dict[str, Any]:
    error = _dict(errors[0]) if isinstance(errors, list) and errors else {}
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, int) or abs(code) >= 2**31:
        code = None
    details = _dict(error.get("error_data")).get("details")
    return {
        "code": code,
        "title": str(error.get("title") or error.get("message") or "")[:255],
        "details": str(details or error.get("message") or ""),
    }


def pending_statuses_apply(*, limit: int = 1000) -> int:
    """Apply parked statuses whose message is now known; expire those waiting too long.

    Returns how many were applied. Run periodically (and callable right after the engine
    records send results). Rows another worker holds are skipped.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            PendingStatus.objects.select_for_update(skip_locked=True)
            .select_related("update")
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
            StatusUpdate.objects.filter(pk__in=[row.update_id for row in stale]).update(
                outcome=StatusOutcome.EXPIRED, note="no message matched within a day"
            )
            PendingStatus.objects.filter(pk__in=[row.pk for row in stale]).delete()
        PendingStatus.objects.filter(
            pk__in=[row.pk for row in rows if row.update_id in waiting]
        ).update(attempts=F("attempts") + 1, last_tried_at=now)
        _flush_counters([report])
    return len(applied)


def webhook_events_requeue(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of events still ``received`` long after they were queued (their task was lost:
    broker down at receive time, worker crash), marked re-queued now; the caller enqueues."""
    now = now or timezone.now()
    cutoff = now - REQUEUE_AFTER
    with transaction.atomic():
        ids = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(
                status=WebhookEventStatus.RECEIVED, signature_valid=True, received_at__lt=cutoff
            )
            .filter(Q(requeued_at__isnull=True) | Q(requeued_at__lt=cutoff))
            .order_by("received_at")
            .values_list("pk", flat=True)[:limit]
        )
        WebhookEvent.objects.filter(pk__in=ids).update(requeued_at=now)
    return ids


# --- inbound messages ------------------------------------------------------------------


def _store_inbound(
    event: WebhookEvent, items: list[tuple[str, dict, dict[str, str]]], report: Report
) -> None:
    numbers = defaultdict(list)
    for number in Number.objects.filter(phone_number_id__in={pnid for pnid, _, _ in items}).only(
        "pk", "workspace_id", "phone_number_id"
    ):
        numbers[number.phone_number_id].append(number)
    rows: dict[tuple[int, str], InboundMessage] = {}
    for pnid, item, names in items:
        message_id = _text(item.get("id"), 128)
        sender = _text(item.get("from"), 32)
        kind = _text(item.get("type"), 32)
        if not message_id or not sender or not kind:
            report.problem("an inbound message without id, from or type")
            continue
        if not numbers.get(pnid):
            report.counts["inbound_unknown_number"] += 1
            continue
        at = _time(item.get("timestamp"))
        if at is None:
            report.problem(f"inbound {message_id}: bad timestamp, used the receive time")
            at = event.received_at
        fields = _message_fields(kind, item)
        for number in numbers[pnid]:
            rows.setdefault(
                (number.pk, message_id),
                InboundMessage(
                    workspace_id=number.workspace_id,
                    number=number,
                    event=event,
                    message_id=message_id,
                    wa_id=sender,
                    contact_name=names.get(sender, ""),
                    type=kind,
                    at=at,
                    received_at=event.received_at,
                    raw=item,
                    **fields,
                ),
            )
    if not rows:
        return
    InboundMessage.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
    mine = list(InboundMessage.objects.filter(event=event, recipient__isnull=True).order_by("pk"))
    report.counts["inbound"] += len(rows)
    report.counts["inbound_duplicates"] += (
        len(rows) - InboundMessage.objects.filter(event=event).count()
    )
    _link_replies(mine, report)


def _message_fields(kind: str, item: dict) -> dict[str, Any]:
    """text, payload, media and context_wamid of one inbound message, by its type."""
    body = _dict(item.get(kind))
    text = payload = ""
    media = None
    context = _text(_dict(item.get("context")).get("id"), 128) or ""
    if kind == "text":
        text = str(body.get("body") or "")
    elif kind == "button":
        text, payload = str(body.get("text") or ""), str(body.get("payload") or "")
    elif kind == "interactive":
        reply = _dict(body.get(str(body.get("type") or "")))
        text = str(reply.get("title") or reply.get("body") or "")
        payload = str(reply.get("id") or reply.get("response_json") or "")
    elif kind in _MEDIA_TYPES:
        media = {key: body[key] for key in _MEDIA_FIELDS if key in body}
        text = str(body.get("caption") or "")
    elif kind == "location":
        text = ", ".join(str(body[key]) for key in ("name", "address") if body.get(key))
    elif kind == "reaction":
        text = str(body.get("emoji") or "")
        context = _text(body.get("message_id"), 128) or context
    return {"text": text, "payload": payload, "media": media, "context_wamid": context}


def _link_replies(messages: list[InboundMessage], report: Report) -> None:
    """Link each message to the campaign message it answers and count it as a reply."""
    if not messages:
        return
    contexts = {m.context_wamid for m in messages if m.context_wamid}
    by_wamid = {r.wamid: r for r in _lock_recipients(Q(wamid__in=contexts))} if contexts else {}
    replied: dict[int, Recipient] = {}
    for message in messages:
        recipient = by_wamid.get(message.context_wamid)
        if recipient is None or recipient.number_id != message.number_id:
            recipient = _latest_sent_to(message.number_id, message.wa_id)
        if recipient is None:
            continue
        recipient = replied.get(recipient.pk, recipient)
        message.recipient = recipient
        message.campaign_id = recipient.campaign_id
        if recipient.replied_at is None or message.at < recipient.replied_at:
            if recipient.replied_at is None:
                report.deltas[recipient.campaign_id]["replied"] += 1
            recipient.replied_at = message.at
            replied[recipient.pk] = recipient
    linked = [m for m in messages if m.recipient_id]
    InboundMessage.objects.bulk_update(linked, ["recipient", "campaign"])
    if replied:
        Recipient.objects.bulk_update(list(replied.values()), ["replied_at"])
    report.counts["replies_linked"] += len(linked)


def _unlinked_replies_to(recipients: list[Recipient]) -> list[InboundMessage]:
    return list(
        InboundMessage.objects.filter(
            context_wamid__in={r.wamid for r in recipients if r.wamid},
            number_id__in={r.number_id for r in recipients},
            recipient__isnull=True,
        ).order_by("pk")
    )


def _latest_sent_to(number_id: int, wa_id: str) -> Recipient | None:
    """The latest campaign message this number sent to ``wa_id``, locked."""
    uses = Campaign.numbers.through.objects.filter(number_id=number_id).values("campaign_id")
    # Through the campaigns using the number, so the (campaign, phone) index serves it.
    found = _lock_recipients(
        Q(
            pk__in=Recipient.objects.filter(
                campaign_id__in=uses, number_id=number_id, phone=f"+{wa_id}", sent_at__isnull=False
            )
            .order_by("-sent_at", "-pk")
            .values("pk")[:1]
        )
    )
    return found[0] if found else None


# --- suppressions, templates, numbers -------------------------------------------------


def _workspace_of_campaign(campaign_id: int) -> int:
    return Campaign.objects.values_list("workspace_id", flat=True).get(pk=campaign_id)


def _suppress(*, workspace_id: int, phone: str, reason: str, report: Report) -> None:
    workspace = Workspace.objects.get(pk=workspace_id)
    try:
        suppression_create(
            workspace=workspace, phone=phone, reason=reason, source=SuppressionSource.WEBHOOK
        )
    except SuppressionError:
        # Already suppressed (or a phone our parser refuses): nothing more to do.
        report.counts["suppressions_existing"] += 1
        return
    report.counts["suppressions_added"] += 1


def _apply_preference(pnid: str, item: dict, report: Report) -> None:
    """user_preferences: a user's "stop" for marketing messages suppresses them in every
    workspace owning the number; "resume" is left to a person (the list is theirs)."""
    wa_id = _text(item.get("wa_id"), 32)
    if not wa_id or item.get("category") != "marketing_messages":
        report.counts["preferences_ignored"] += 1
        return
    if item.get("value") != "stop":
        report.counts[f"preference:{str(item.get('value'))[:20]}"] += 1
        return
    detail = str(item.get("detail") or "user stopped marketing messages")
    for workspace_id in set(
        Number.objects.filter(phone_number_id=pnid).values_list("workspace_id", flat=True)
    ):
        _suppress(workspace_id=workspace_id, phone=f"+{wa_id}", reason=detail, report=report)


def _apply_template_status(waba_id: str, at: datetime, value: dict, report: Report) -> None:
    """message_template_status_update: the template's new status and its history; a
    template that became unusable pauses the running campaigns that send it."""
    status = _text(value.get("event"), 32)
    meta_id = _text(value.get("message_template_id"), 32)
    name = _text(value.get("message_template_name"), 512)
    language = _text(value.get("message_template_language"), 16)
    if not status or not waba_id or not (meta_id or (name and language)):
        report.problem("template status update without event, WABA or template")
        return
    match = Q(meta_id=meta_id) if meta_id else Q(pk__in=[])
    if name and language:
        match |= Q(name=name, language=language)
    reason = str(value.get("reason") or "")
    if reason.upper() == "NONE":
        reason = ""
    templates = Template.objects.select_for_update().filter(match, waba_id=waba_id).order_by("pk")
    found = False
    for template in templates:
        found = True
        if template.status_changed_at and at < template.status_changed_at:
            # Older than what we know (a replay, or Meta's retries overtaken by a sync).
            report.counts["template_stale"] += 1
            continue
        if not template_status_record(
            template=template, status=status, source=StatusSource.WEBHOOK, reason=reason, at=at
        ):
            report.counts["template_unchanged"] += 1
            continue
        template.save(update_fields=["status", "status_changed_at"])
        report.counts["template_updated"] += 1
        if status in PAUSING_TEMPLATE_STATUSES:
            _pause_campaigns_using(template, status, reason, report)
    if not found:
        report.counts["template_unknown"] += 1


def _pause_campaigns_using(template: Template, status: str, reason: str, report: Report) -> None:
    campaigns = Campaign.objects.filter(
        campaign_templates__template=template, status=CampaignStatus.RUNNING
    ).order_by("pk")
    why = f"template {template.name} ({template.language}) became {status} at Meta"
    if reason:
        why += f": {reason}"
    for campaign in campaigns:
        try:
            campaign_pause(campaign=campaign, user=None, reason=why)
        except CampaignStateError:
            # It stopped running meanwhile: nothing to pause.
            continue
        report.counts["campaigns_paused"] += 1


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _apply_number_change(
    kind: str, waba_id: str, at: datetime, value: dict, report: Report
) -> None:
    """phone_number_quality_update (one number, by display number) and account_update
    (every number of the WABA): store what the event says, then refresh from Meta."""
    numbers = list(Number.objects.select_for_update().filter(waba_id=waba_id).order_by("pk"))
    event = str(value.get("event") or "")
    if kind == "phone_number_quality_update":
        display = _digits(str(value.get("display_phone_number") or ""))
        numbers = [n for n in numbers if display and _digits(n.display_phone_number) == display]
    if not numbers:
        report.counts[f"{kind}_unknown_number"] += 1
        return
    for number in numbers:
        fields = (
            _quality_fields(number, event, value)
            if kind == "phone_number_quality_update"
            else _account_fields(number, event, value, at)
        )
        if fields:
            number.save(update_fields=sorted(fields))
            report.counts[f"{kind}_applied"] += 1
        report.after_commit.append(_refresh_later(number.pk))


def _refresh_later(number_id: int):
    def enqueue() -> None:
        from numbers.tasks import refresh_number

        try:
            refresh_number.apply_async((number_id,), retry=False)
        except Exception:
            # The hourly refresh catches up; the event itself is applied.
            logger.warning("could not queue a refresh of number %s", number_id, exc_info=True)

    return enqueue


def _quality_fields(number: Number, event: str, value: dict) -> set[str]:
    fields: set[str] = set()
    tier = _text(value.get("max_daily_conversations_per_business"), 32) or _text(
        value.get("current_limit"), 32
    )
    if tier and tier != number.messaging_limit_tier:
        number.messaging_limit_tier = tier
        fields.add("messaging_limit_tier")
    if event == "FLAGGED" and number.quality_rating != "RED":
        # Meta flags a number when its quality rating drops to low.
        number.quality_rating = "RED"
        fields.add("quality_rating")
    if event == "THROUGHPUT_UPGRADE" and number.throughput_level != "HIGH":
        number.throughput_level = "HIGH"
        number.apply_max_mps()
        fields |= {"throughput_level", "max_mps"}
    return fields


def _account_fields(number: Number, event: str, value: dict, at: datetime) -> set[str]:
    ban = _dict(value.get("ban_info"))
    state = str(ban.get("waba_ban_state") or "")
    when = f" ({ban['waba_ban_date']})" if ban.get("waba_ban_date") else ""
    if event == "DISABLED_UPDATE" and state == "DISABLE":
        number.status = NumberStatus.BLOCKED
        number.last_error = f"Meta disabled the WhatsApp Business Account{when}"
    elif event == "DISABLED_UPDATE" and state == "SCHEDULE_FOR_DISABLE":
        number.last_error = f"Meta scheduled the WhatsApp Business Account to be disabled{when}"
    elif event == "ACCOUNT_DELETED":
        number.status = NumberStatus.DISCONNECTED
        number.last_error = "Meta deleted the WhatsApp Business Account"
    elif event == "ACCOUNT_VIOLATION":
        kind = _dict(value.get("violation_info")).get("violation_type") or "unspecified"
        number.last_error = f"Meta reported a policy violation: {kind}"
    elif event == "ACCOUNT_RESTRICTION":
        number.last_error = "Meta restricted the WhatsApp Business Account"
    else:
        # REINSTATE and the rest: the refresh that follows reads the real state.
        return set()
    number.last_error = f"{number.last_error} [{at.isoformat()}]"
    return {"status", "last_error"}


# --- counters and the funnel ------------------------------------------------------------


def _flush_counters(reports: list[Report]) -> None:
    """One UPDATE per campaign with the summed F() deltas of ``reports``, in id order (no
    deadlock between transactions): at a thousand statuses a second, one UPDATE per
    status would make the campaign row the hot spot every event waits on."""
    totals: dict[int, Counter] = defaultdict(Counter)
    for report in reports:
        for campaign_id, deltas in report.deltas.items():
            totals[campaign_id].update(deltas)
        report.deltas.clear()
    for campaign_id in sorted(totals):
        deltas = {name: count for name, count in totals[campaign_id].items() if count}
        if deltas:
            # A counter behind its rows (fixed by the engine's reconcile) must not go
            # negative and make the whole event fail.
            Campaign.objects.filter(pk=campaign_id).update(
                **{
                    name: F(name) + count if count > 0 else Greatest(F(name) + count, 0)
                    for name, count in deltas.items()
                }
            )


def campaign_funnel(campaign: Campaign) -> dict[str, Any]:
    """The campaign's funnel from its recipient rows (exact), with the engine's counter
    definitions: ``{"total", "sent", "delivered", "read", "replied", "failed", ...,
    "failed_by_reason": [{"code", "title", "count"}, ...]}`` (most frequent reason first).

    A stage counts every message that reached it and did not fail later (a read message
    is also delivered and sent; a message that failed after it was sent is only failed).
    The stored counters are checked and corrected against the same
    rows by messaging.services.campaign_counters_check / campaign_counters_reconcile.
    """
    counts = campaign_counters_from_rows(campaign)
    reasons = (
        campaign.recipients.filter(status=RecipientStatus.FAILED)
        .values("error_code", "error_title")
        .annotate(count=Count("pk"))
        .order_by("-count", "error_code", "error_title")
    )
    return {
        **counts,
        "failed_by_reason": [
            {"code": row["error_code"], "title": row["error_title"], "count": row["count"]}
            for row in reasons
        ],
    }
