"""Celery tasks: deliver one notification over one channel; the sweep that catches up."""

from __future__ import annotations

from celery import shared_task

from notifications.delivery import delivery_attempt
from notifications.services import deliveries_due, delivery_queue, notifications_summarize_held


@shared_task(queue="default", ignore_result=True)
def deliver_notification(delivery_id: int) -> None:
    """One attempt of a delivery (nothing when it is done, not due, or being attempted)."""
    delivery_attempt(delivery_id=delivery_id)


@shared_task(queue="periodic", ignore_result=True, expires=30)
def sweep_notifications() -> dict[str, int]:
    """Beat: queue deliveries that are due and whose task was lost (or never queued: long
    backoffs are left to this sweep), and send the summaries of held-back notifications."""
    due = deliveries_due()
    for delivery_id in due:
        delivery_queue(delivery_id)
    summaries = notifications_summarize_held()
    return {"queued": len(due), "summaries": summaries}
