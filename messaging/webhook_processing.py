"""Applying stored webhook events (message statuses, inbound messages, template, number and
user-preference changes) and the campaign funnel built on them.

Everything an event changes happens in one transaction with the event's own status, so an
event is either applied whole or not at all, and reprocessing it changes nothing already
applied (statuses are unique per message and status, inbound messages per number and id,
and every recipient change only moves forward).
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

from django.db import OperationalError, transaction
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
                _process_payload(event, payload, report)
            _flush_counters(report)
            event.status = (
                WebhookEventStatus.FLAGGED if report.problems else WebhookEventStatus.PROCESSED
            )
            event.error = "; ".join(report.problems)
            event.outcome = {key: count for key, count in report.counts.items() if count}
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


def _process_payload(event: WebhookEvent, payload: Any, report: Report) -> None:
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        report.problem("not a WhatsApp webhook: no entry list")
        return
    if payload.get("object") != "whatsapp_business_account":
        report.problem(f"unexpected object {str(payload.get('object'))[:60]!r}")
        return
    batch = _Batch()
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
    if batch.statuses:
        _apply_new_statuses(event, list(batch.statuses.values()), report)
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


def _apply_new_statuses(event: WebhookEvent, updates: list[StatusUpdate], report: Report) -> None:
    report.counts["statuses"] += len(updates)
    # Sorted, so two events inserting overlapping keys take the index locks in one order.
    updates.sort(key=lambda update: (update.message_key, update.status))
    StatusUpdate.objects.bulk_create(updates, ignore_conflicts=True)
    # The rows this event inserted (a conflicting duplicate keeps its first event) and
    # not yet parked as pending by an earlier run of this event.
    fresh = list(
        StatusUpdate.objects.filter(
            event=event, outcome=StatusOutcome.PENDING, pending__isnull=True
        ).order_by("pk")
    )
    report.counts["duplicates"] += len(updates) - len(fresh)
    waiting = _resolve(fresh, report, parked=False)
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


def _resolve(updates: list[StatusUpdate], report: Report, *, parked: bool) -> list[StatusUpdate]:
    """Match ``updates`` to recipients and apply them; returns those still waiting.

    Statuses parked earlier for the recipients found are applied in the same pass
    ("on lookup"). With ``parked`` the updates are themselves parked ones (the retry).
    """
    if not updates:
        return []
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
        found = PendingStatus.objects.select_for_update(skip_locked=True).filter(
            Q(wamid__in=list(by_wamid)) | Q(callback_recipient_id__in=list(by_id))
        )
        for row in found.select_related("update"):
            parked_rows[row.update_id] = row
            updates.append(row.update)

    pnid_numbers: dict[str, set[int]] | None = None
    changed: dict[int, set[str]] = defaultdict(set)
    suppress: list[tuple[Recipient, str]] = []
    waiting: list[StatusUpdate] = []
    # Meta's time order, so a batch holding several statuses of one message reads naturally.
    for update in sorted(updates, key=lambda u: (u.at, RANK.get(u.status, 4), u.pk or 0)):
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
        changed[recipient.pk] |= fields
        report.deltas[recipient.campaign_id].update(counts)
        if (
            update.outcome == StatusOutcome.APPLIED
            and recipient.status == RecipientStatus.FAILED
            and recipient.error_code == USER_STOPPED_MARKETING
        ):
            suppress.append((recipient, recipient.error_title))
        report.counts[update.outcome] += 1

    dirty = [by_id[pk] for pk, fields in changed.items() if fields]
    if dirty:
        Recipient.objects.bulk_update(dirty, sorted(set().union(*changed.values())))
    waiting_ids = {update.pk for update in waiting}
    done = [u for u in updates if u.pk not in waiting_ids]
    for update in waiting:
        update.outcome = StatusOutcome.PENDING
    StatusUpdate.objects.bulk_update(updates, ["recipient", "outcome", "note"])
    applied_parked = [parked_rows[u.pk].pk for u in done if u.pk in parked_rows]
    if applied_parked:
        PendingStatus.objects.filter(pk__in=applied_parked).delete()
        report.counts["pending_applied"] += len(applied_parked)
    late = [u.recipient for u in done if u.recipient and (parked or u.pk in parked_rows)]
    if late:
        # A reply can beat the send's answer just like the statuses did.
        _link_replies(_unlinked_replies_to(late), report)
    report.counts["pending"] += sum(1 for u in waiting if u.pk not in parked_rows)
    for recipient, title in suppress:
        _suppress(
            workspace_id=_workspace_of_campaign(recipient.campaign_id),
            phone=recipient.phone,
            reason=f"Meta error {USER_STOPPED_MARKETING}: {title or 'user stopped marketing messages'}",
            report=report,
        )
    # Parked statuses found on lookup that still wait stay parked as they are.
    return [u for u in waiting if u.pk not in parked_rows]


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
        waiting = {u.pk for u in _resolve([row.update for row in rows], report, parked=True)}
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
        _flush_counters(report)
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


def _flush_counters(report: Report) -> None:
    """One UPDATE per campaign with F() deltas, in id order (no deadlock between events)."""
    for campaign_id in sorted(report.deltas):
        deltas = {name: count for name, count in report.deltas[campaign_id].items() if count}
        if deltas:
            # A counter behind its rows (fixed by the engine's reconcile) must not go
            # negative and make the whole event fail.
            Campaign.objects.filter(pk=campaign_id).update(
                **{
                    name: F(name) + count if count > 0 else Greatest(F(name) + count, 0)
                    for name, count in deltas.items()
                }
            )
    report.deltas.clear()


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
