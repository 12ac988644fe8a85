"""Retention: deleting stored webhook data older than WEBHOOK_RETENTION_DAYS, in batches.

What goes: raw events (their bodies are the bulk of the disk), refusal samples and
refusal counters. What stays: what the events produced. Status updates are each message's
receipts (times, pricing, conversation), one row per message and status however many POSTs
carried them; inbound messages are conversation history. Both keep their row and lose only
the link to the deleted event (``event`` becomes NULL, as the foreign key's SET_NULL says).
Pending statuses hang off their status update, not the event, so they are untouched.

An event still ``received`` or ``failed`` is kept until it is processed, or until it is
past retention too: then it goes with the rest, and the deletion is noted (a warning
naming how many and their ids), since nobody reprocessed it in all that time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from webhooks.models import (
    InboundMessage,
    StatusUpdate,
    WebhookEvent,
    WebhookEventStatus,
    WebhookRefusalCount,
    WebhookRefusalSample,
)

logger = logging.getLogger(__name__)

# Events deleted per transaction: short row locks, and the UPDATEs of the rows pointing at
# them stay small; the endpoint's INSERTs and the drains never wait on a prune.
PRUNE_BATCH = 1000
_UNPROCESSED = (WebhookEventStatus.RECEIVED, WebhookEventStatus.FAILED)


@dataclass
class PruneResult:
    """What one prune deleted, and whether it stopped at its deadline with more to do."""

    cutoff: datetime
    events: int = 0
    # Of ``events``: those never processed (received or failed).
    unprocessed: int = 0
    samples: int = 0
    counters: int = 0
    more: bool = False


def webhook_data_prune(
    *,
    now: datetime | None = None,
    days: int | None = None,
    batch: int = PRUNE_BATCH,
    seconds: float | None = None,
) -> PruneResult:
    """Delete events, refusal samples and refusal counters older than ``days`` (default
    WEBHOOK_RETENTION_DAYS) before ``now``, ``batch`` events per transaction.

    With ``seconds`` it stops after that long and sets ``more`` when old events remain
    (the caller queues another run). Events another transaction holds (being processed)
    are skipped and left for the next run.
    """
    now = now or timezone.now()
    days = settings.WEBHOOK_RETENTION_DAYS if days is None else days
    result = PruneResult(cutoff=now - timedelta(days=days))
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        deleted, unprocessed = _delete_event_batch(result.cutoff, batch)
        result.events += deleted
        result.unprocessed += len(unprocessed)
        if unprocessed:
            logger.warning(
                "retention deleted %d webhook event(s) never processed, older than %d days: %s",
                len(unprocessed),
                days,
                ", ".join(f"{pk} ({status})" for pk, status in unprocessed[:50]),
            )
        if deleted < batch:
            break
        if deadline is not None and time.monotonic() > deadline:
            result.more = True
            break
    result.samples, _ = WebhookRefusalSample.objects.filter(received_at__lt=result.cutoff).delete()
    result.counters, _ = WebhookRefusalCount.objects.filter(hour__lt=result.cutoff).delete()
    return result


def _delete_event_batch(cutoff: datetime, batch: int) -> tuple[int, list[tuple[int, str]]]:
    """Delete up to ``batch`` of the oldest events received before ``cutoff``, unlinking
    the status updates and inbound messages that name them; returns how many were deleted
    and the (id, status) of those never processed."""
    events = WebhookEvent._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        # Oldest first off the received_at index; SKIP LOCKED leaves an event being
        # processed right now to its worker.
        cursor.execute(
            f"""
            SELECT id, status FROM {events}
            WHERE received_at < %s
            ORDER BY received_at
            LIMIT %s
            FOR UPDATE SKIP LOCKED
            """,  # noqa: S608 - the table name is ours, every value is a parameter
            [cutoff, batch],
        )
        rows = cursor.fetchall()
        if not rows:
            return 0, []
        ids = [pk for pk, _ in rows]
        # What the events produced stays: SET NULL, as the foreign keys say, in one UPDATE
        # each rather than Django's collector (which would load every event's body first).
        # The table names are ours, every value is a parameter.
        for model in (StatusUpdate, InboundMessage):
            table = model._meta.db_table
            cursor.execute(
                f"UPDATE {table} SET event_id = NULL WHERE event_id = ANY(%s)",  # noqa: S608
                [ids],
            )
        cursor.execute(f"DELETE FROM {events} WHERE id = ANY(%s)", [ids])  # noqa: S608
    return len(ids), [(pk, status) for pk, status in rows if status in _UNPROCESSED]
