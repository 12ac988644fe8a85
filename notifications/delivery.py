"""One delivery attempt, and what its outcome means: done, retry later, give up, disable.

The delivery row is locked (``SKIP LOCKED``) for the attempt and the outcome is
written in the same transaction, so two tasks for one delivery (the after-commit
task and the sweep's) never both send it, and a worker that dies mid-attempt
leaves it pending for the sweep. Receivers see a retried message with the same
``webhook-id`` and may deduplicate on it.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.commit import after_commit
from notifications.models import ChannelKind, Delivery, DeliveryAttempt, DeliveryStatus
from notifications.ratelimit import slack_slot_take
from notifications.senders import Outcome, timed_send
from notifications.services import channel_disable_gone, delivery_queue

logger = logging.getLogger(__name__)

# A task that comes a little early (clock skew between hosts) still sends.
EARLY_TOLERANCE = timedelta(seconds=1)


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``attempts`` failures: exponential, capped, with
    +-20% jitter so endpoints that come back are not hit by every sender at once."""
    base = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    capped = min(base, settings.NOTIFY_RETRY_MAX_SECONDS)
    return capped * (rng or random).uniform(0.8, 1.2)


def delivery_attempt(*, delivery_id: int, force: bool = False) -> Delivery | None:
    """Attempt the delivery if it is pending and due (``force``: due or not).

    Returns the delivery as left, or None when there was nothing to do (not
    pending, not due, or another worker holds it).
    """
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel", "notification__workspace")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None:
            return None
        now = timezone.now()
        if (
            not force
            and delivery.next_attempt_at is not None
            and delivery.next_attempt_at > now + EARLY_TOLERANCE
        ):
            return None
        channel = delivery.channel
        if not channel.active:
            delivery.status = DeliveryStatus.CANCELLED
            delivery.answer = "the channel is switched off"
            delivery.next_attempt_at = None
            delivery.save(update_fields=["status", "answer", "next_attempt_at"])
            return delivery
        if channel.kind == ChannelKind.SLACK:
            decision = slack_slot_take(channel.target)
            if not decision.allowed:
                # Not an attempt: the hook's one message this second has gone already.
                wait = decision.retry_after_ms / 1000
                delivery.next_attempt_at = now + timedelta(seconds=wait)
                delivery.save(update_fields=["next_attempt_at"])
                after_commit(delivery_queue, delivery.pk, wait)
                return delivery
        outcome, duration_ms = timed_send(channel, delivery.notification, now)
        _record(delivery, outcome, duration_ms, now)
    return delivery


def _record(delivery: Delivery, outcome: Outcome, duration_ms: int, now) -> None:
    DeliveryAttempt.objects.create(
        delivery=delivery,
        at=now,
        ok=outcome.ok,
        status_code=outcome.status_code,
        answer=outcome.answer,
        duration_ms=duration_ms,
    )
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.answer = outcome.answer
    delivery.duration_ms = duration_ms
    if outcome.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.next_attempt_at = None
    elif outcome.gone:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.save()
        channel_disable_gone(channel=delivery.channel, answer=outcome.answer)
        logger.warning("notification channel %s disabled: 410 Gone", delivery.channel_id)
        return
    elif outcome.permanent:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        delay = retry_delay(delivery.attempts)
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, settings.NOTIFY_RETRY_MAX_SECONDS))
        next_at = now + timedelta(seconds=delay)
        deadline = delivery.created_at + timedelta(hours=settings.NOTIFY_RETRY_FOR_HOURS)
        if next_at > deadline:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            delivery.answer = (
                f"gave up after {delivery.attempts} attempts over "
                f"{settings.NOTIFY_RETRY_FOR_HOURS} h; last: {outcome.answer}"
            )
        else:
            delivery.next_attempt_at = next_at
            after_commit(delivery_queue, delivery.pk, delay)
    delivery.save()
    logger.info(
        "notification delivery %s attempt %s: %s",
        delivery.pk,
        delivery.attempts,
        "ok" if outcome.ok else delivery.status,
    )


def channel_test(*, channel, user=None) -> Delivery:
    """Send a test notification to ``channel`` now, once (no retries); returns its delivery.

    The test is recorded like any notification (read already by whoever sent it, so it
    does not ring their bell) and its attempt is visible with the channel's deliveries.
    """
    from notifications.models import Event, Notification, NotificationRead, Severity
    from notifications.services import object_ref

    with transaction.atomic():
        notification = Notification.objects.create(
            workspace_id=channel.workspace_id,
            event=Event.TEST,
            severity=Severity.INFO,
            title=f"Test notification for channel {channel}",
            body="If you can read this, the channel works.",
            objects_ref=[object_ref(channel, kind="channel")],
            data={"channel": {"id": channel.pk, "kind": channel.kind}, "test": True},
        )
        if user is not None and getattr(user, "is_authenticated", False):
            NotificationRead.objects.create(notification=notification, user=user)
        delivery = Delivery.objects.create(
            notification=notification, channel=channel, next_attempt_at=timezone.now()
        )
    delivery_attempt(delivery_id=delivery.pk, force=True)
    delivery.refresh_from_db()
    if delivery.status == DeliveryStatus.PENDING and delivery.attempts:
        # Failed once: a test is not retried; the person sees the answer and fixes the channel.
        Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, next_attempt_at=None
        )
        delivery.refresh_from_db()
    return delivery
