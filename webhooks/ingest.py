"""Processing stored webhook events: claim them, read each payload, apply it, mark the event.

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.commit import after_commit
from webhooks.account_events import (
    apply_number_change,
    apply_preference,
    apply_template_change,
    apply_template_status,
)
from webhooks.inbound import store_inbound
from webhooks.models import StatusUpdate, WebhookEvent, WebhookEventStatus
from webhooks.parse import as_dict, as_list, as_text, believable_time, parse_json, status_fields
from webhooks.report import Report
from webhooks.statuses import apply_statuses

logger = logging.getLogger(__name__)

# Events one drain transaction claims: a batch of 200 status events takes ~0.1-0.2 s here
# (short row locks), and the per-batch statements are then a small share of the work.
DRAIN_BATCH = 200
# An event still "received" this long after it was queued lost its task; queue it again.
REQUEUE_AFTER = timedelta(minutes=5)


def dedupe_key_for(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --- the event ------------------------------------------------------------------------


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
            payload = parse_json(event.body_bytes, report)
            if payload is not None:
                _apply_collected(event, _collect_payload(event, payload, report), report)
            event.status = _final_status(report)
            event.error = "; ".join(report.problems)
            event.outcome = report.outcome()
            event.processed_at = timezone.now()
            event.attempts += 1
            event.save(update_fields=["status", "error", "outcome", "processed_at", "attempts"])
            for action in report.after_commit:
                after_commit(action)
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
                payload = parse_json(event.body_bytes, report)
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
                apply_statuses([(report, updates) for _, report, updates in claimed])
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


# --- what an event carries ------------------------------------------------------------


@dataclass
class _Batch:
    """Everything one event carries, collected before any of it is applied."""

    statuses: dict[tuple[str, str], StatusUpdate] = field(default_factory=dict)
    inbound: list[tuple[str, dict, dict[str, str]]] = field(default_factory=list)
    preferences: list[tuple[str, dict]] = field(default_factory=list)
    templates: list[tuple[str, datetime | None, dict]] = field(default_factory=list)
    number_changes: list[tuple[str, str, datetime | None, dict]] = field(default_factory=list)
    template_changes: list[tuple[str, str, datetime | None, dict]] = field(default_factory=list)

    @property
    def only_statuses(self) -> bool:
        """Nothing but statuses (or nothing at all): the drain applies it in a batch."""
        return not (
            self.inbound
            or self.preferences
            or self.templates
            or self.number_changes
            or self.template_changes
        )


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
        waba_id = as_text(entry.get("id"), 32) or ""
        # A template's or number's change dated in 2099 would make every later one stale.
        entry_time = believable_time(
            entry.get("time"), received_at=event.received_at, report=report
        )
        for change in as_list(entry.get("changes"), "entry.changes", report):
            value = as_dict(change).get("value") if isinstance(change, dict) else None
            kind = as_dict(change).get("field")
            if not isinstance(value, dict):
                report.problem(f"change {str(kind)[:60]!r} has no value object")
                continue
            if kind == "messages":
                _collect_messages(event, value, batch, report)
            elif kind == "message_template_status_update":
                batch.templates.append((waba_id, entry_time, value))
            elif kind in (
                "phone_number_quality_update",
                "account_update",
                "business_capability_update",
            ):
                batch.number_changes.append((kind, waba_id, entry_time, value))
            elif kind in ("message_template_quality_update", "template_category_update"):
                batch.template_changes.append((kind, waba_id, entry_time, value))
            elif kind == "user_preferences":
                pnid = as_text(as_dict(value.get("metadata")).get("phone_number_id"), 32) or ""
                for item in as_list(value.get("user_preferences"), "user_preferences", report):
                    batch.preferences.append((pnid, as_dict(item)))
            else:
                # A field we are subscribed to but do not act on (template quality, ...):
                # the raw event keeps it.
                report.counts[f"ignored:{str(kind)[:60]}"] += 1
    return batch


def _collect_messages(event: WebhookEvent, value: dict, batch: _Batch, report: Report) -> None:
    pnid = as_text(as_dict(value.get("metadata")).get("phone_number_id"), 32) or ""
    for item in as_list(value.get("statuses"), "value.statuses", report):
        fields = status_fields(item, pnid=pnid, received_at=event.received_at, report=report)
        if fields is not None:
            update = StatusUpdate(event=event, **fields)
            # The same status twice in one POST counts once.
            batch.statuses.setdefault((update.message_key, update.status), update)
    names: dict[str, str] = {}
    for contact in as_list(value.get("contacts"), "value.contacts", report):
        wa_id = as_text(as_dict(contact).get("wa_id"), 32)
        # A username user may come with Meta's business-scoped user id and no wa_id.
        user_id = as_text(as_dict(contact).get("user_id"), 128)
        name = as_dict(as_dict(contact).get("profile")).get("name")
        for key in (wa_id, user_id):
            if key and isinstance(name, str):
                names[key] = name[:256]
    for item in as_list(value.get("messages"), "value.messages", report):
        if not isinstance(item, dict):
            report.problem("a message is not an object")
            continue
        batch.inbound.append((pnid, item, names))
    if isinstance(value.get("errors"), list):
        report.counts["value_errors"] += len(value["errors"])


def _apply_collected(event: WebhookEvent, batch: _Batch, report: Report) -> None:
    if batch.statuses:
        apply_statuses([(report, list(batch.statuses.values()))])
    if batch.inbound:
        store_inbound(event, batch.inbound, report)
    for pnid, item in batch.preferences:
        apply_preference(pnid, item, report)
    for waba_id, at, value in batch.templates:
        apply_template_status(waba_id, at or event.received_at, value, report)
    for kind, waba_id, at, value in batch.number_changes:
        apply_number_change(kind, waba_id, at or event.received_at, value, report)
    for kind, waba_id, at, value in batch.template_changes:
        apply_template_change(kind, waba_id, at or event.received_at, value, report)
