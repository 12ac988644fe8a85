"""Celery tasks on the ``webhooks`` queue: process a stored event, retry what waits."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from messaging.webhook_processing import (
    pending_statuses_apply,
    webhook_event_process,
    webhook_events_requeue,
)

logger = logging.getLogger(__name__)

# A deadlock or a lost connection is retried soon; past this the sweeper takes over.
MAX_QUICK_RETRIES = 5


@shared_task(queue="webhooks", bind=True, ignore_result=True, max_retries=MAX_QUICK_RETRIES)
def process_webhook_event(self, event_id: int) -> None:
    """Apply one stored webhook event (see webhook_processing.webhook_event_process)."""
    try:
        webhook_event_process(event_id=event_id)
    except OperationalError as error:
        # The event's transaction rolled back whole: it is still "received".
        if self.request.retries >= MAX_QUICK_RETRIES:
            logger.warning("event %s still failing (%s); the sweeper re-queues it", event_id, error)
            return
        raise self.retry(exc=error, countdown=1 + 2 * self.request.retries) from error


def enqueue_event(event_id: int) -> None:
    """Queue processing of a stored event; never raises (the endpoint must answer 200).

    Without a broker the event stays "received" and the periodic sweeper queues it again.
    """
    try:
        # No publish retries: a broker outage must not hold Meta's request open.
        process_webhook_event.apply_async((event_id,), retry=False)
    except Exception:
        logger.warning("could not queue webhook event %s", event_id, exc_info=True)


@shared_task(queue="webhooks", ignore_result=True)
def retry_webhook_work() -> None:
    """Periodic: apply statuses whose message has appeared, re-queue events whose task was
    lost."""
    applied = pending_statuses_apply()
    if applied:
        logger.info("applied %d pending statuses", applied)
    for event_id in webhook_events_requeue():
        enqueue_event(event_id)
