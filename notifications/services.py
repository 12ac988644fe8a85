"""Notifications: writing them (the outbox), channels and their secrets, reading state.

``notification_emit`` is called inside the transaction of the change it
reports: the Notification and one Delivery per subscribed channel commit or
roll back with that change, and the deliveries are queued after commit.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from config.commit import after_commit
from notifications.models import (
    SUBSCRIBABLE_EVENTS,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    Event,
    Notification,
    NotificationRead,
    Severity,
)
from notifications.senders import SECRET_PREFIX

logger = logging.getLogger(__name__)

# Per event kind: how long one notification holds back later ones with its dedup key
# (seconds); None: a key notifies once, ever (a campaign completes once); 0: no hold.
COOLDOWNS: dict[str, int | None] = {
    Event.CAMPAIGN_COMPLETED: None,
    Event.CAMPAIGN_PAUSED: 0,
    Event.CAMPAIGN_PREFLIGHT_FAILED: None,
    Event.CAMPAIGN_EXPIRED: None,
    Event.IMPORT_FINISHED: None,
    Event.TEMPLATE_STATUS_CHANGED: 0,
    Event.TEMPLATE_CATEGORY_CHANGED: 0,
    # A flapping rating or tier notifies once an hour, then a summary of what was held.
    Event.NUMBER_QUALITY_CHANGED: 3600,
    Event.NUMBER_TIER_CHANGED: 3600,
    Event.NUMBER_STATUS_CHANGED: 600,
    Event.NUMBER_TOKEN_INVALID: 3600,
    Event.CONVERSATION_HANDED_OVER: 0,
    Event.CHANNEL_DISABLED: 0,
    Event.TEST: 0,
}

# During a rotation the old secret keeps signing this long, so receivers can switch.
ROTATION_OVERLAP = timedelta(hours=24)


class ChannelInvalid(ValueError):
    """A channel setting that is not acceptable; ``field`` names it (the API answers 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- links -----------------------------------------------------------------------------------


def object_ref(obj: Model, *, kind: str, name: str = "") -> dict[str, Any]:
    """``{"type", "id", "name", "admin_url"}`` for a notification's ``objects``."""
    meta = obj._meta
    try:
        path = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        path = ""
    return {
        "type": kind,
        "id": obj.pk,
        "name": name or str(obj),
        "admin_url": settings.NOTIFY_BASE_URL + path if path else None,
    }


# --- the outbox -----------------------------------------------------------------------------


def _lock_key(workspace_id: int, dedup_key: str) -> None:
    # Two events with one key in two transactions: the second waits, then sees the first.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [workspace_id, dedup_key])


def notification_emit(
    *,
    workspace_id: int,
    event: str,
    title: str,
    body: str = "",
    severity: str = Severity.INFO,
    objects: Iterable[dict] = (),
    data: dict | None = None,
    dedup_key: str = "",
) -> Notification | None:
    """Write a notification and its deliveries in the current transaction; None when held back.

    With a ``dedup_key``, a notification of the same key still in its cooldown
    (COOLDOWNS) holds this one back: it counts it and keeps it as the latest.
    """
    now = timezone.now()
    objects = list(objects)
    data = data or {}
    cooldown = COOLDOWNS.get(event, 0)
    with transaction.atomic():
        if dedup_key and cooldown != 0:
            _lock_key(workspace_id, dedup_key)
            holders = Notification.objects.filter(
                workspace_id=workspace_id, event=event, dedup_key=dedup_key
            )
            if cooldown is not None:
                holders = holders.filter(cooldown_until__gt=now)
            holder = holders.select_for_update().order_by("-created_at", "-pk").first()
            if holder is not None:
                holder.held_back += 1
                holder.held_latest = {
                    "severity": severity,
                    "title": title,
                    "body": body,
                    "objects": objects,
                    "data": data,
                    "at": now.isoformat(),
                }
                holder.save(update_fields=["held_back", "held_latest"])
                logger.info("notification %s held back by %s (%s)", event, holder.pk, dedup_key)
                return None
        notification = Notification.objects.create(
            workspace_id=workspace_id,
            event=event,
            severity=severity,
            title=title[:300],
            body=body,
            objects_ref=objects,
            data=data,
            dedup_key=dedup_key[:200],
            cooldown_until=now + timedelta(seconds=cooldown) if cooldown else None,
        )
        channels = Channel.objects.filter(workspace_id=workspace_id, active=True).order_by("pk")
        deliveries = Delivery.objects.bulk_create(
            Delivery(notification=notification, channel=channel, next_attempt_at=now)
            for channel in channels
            if channel.receives(event)
        )
        for delivery in deliveries:
            after_commit(delivery_queue, delivery.pk)
    return notification


def delivery_queue(delivery_id: int, delay: float = 0) -> None:
    """Queue the delivery task; a delay longer than a minute is left to the sweep.

    (An ETA task held by a Redis-broker worker past the visibility timeout is
    delivered twice; the sweep queues work only when it is due.)
    """
    if delay > 60:
        return
    from notifications.tasks import deliver_notification

    try:
        deliver_notification.apply_async((delivery_id,), countdown=max(0, delay), retry=False)
    except Exception:
        # Written already: the sweep finds it when the broker is back.
        logger.warning("could not queue delivery %s; the sweep will", delivery_id, exc_info=True)


def notifications_summarize_held(*, now=None) -> int:
    """Emit one summary for each notification whose cooldown ended with events held back."""
    now = now or timezone.now()
    done = 0
    due = Notification.objects.filter(
        held_back__gt=0, summarized_at__isnull=True, cooldown_until__lte=now
    ).order_by("cooldown_until", "pk")
    for pk in due.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            holder = (
                Notification.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, summarized_at__isnull=True)
                .first()
            )
            if holder is None:
                continue
            holder.summarized_at = now
            holder.save(update_fields=["summarized_at"])
            latest = holder.held_latest or {}
            count = holder.held_back
            since = holder.created_at.strftime("%Y-%m-%d %H:%M UTC")
            note = (
                f"{count} more notification{'s' if count != 1 else ''} of this kind "
                f"{'were' if count != 1 else 'was'} held back since {since}; this is the latest."
            )
            notification_emit(
                workspace_id=holder.workspace_id,
                event=holder.event,
                severity=latest.get("severity", holder.severity),
                title=latest.get("title", holder.title),
                body=f"{latest.get('body', '')}\n\n{note}".strip(),
                objects=latest.get("objects", holder.objects_ref),
                data={
                    **latest.get("data", {}),
                    "held_back": count,
                    "held_back_since": holder.created_at.isoformat(),
                },
                dedup_key=holder.dedup_key,
            )
            done += 1
    return done


def deliveries_due(*, now=None, grace_seconds: float = 10, limit: int = 1000) -> list[int]:
    """Pending deliveries due for at least ``grace_seconds`` (their task lost, or left to us)."""
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now - timedelta(seconds=grace_seconds),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- channels ---------------------------------------------------------------------------------


def secret_generate() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _clean_target(kind: str, target: Any) -> str:
    if isinstance(target, list | tuple):
        target = ", ".join(str(item) for item in target)
    if not isinstance(target, str) or not target.strip():
        raise ChannelInvalid("target", "required: e-mail addresses, or the endpoint's URL")
    target = target.strip()
    if kind == ChannelKind.EMAIL:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        entries = [entry.strip() for entry in target.split(",") if entry.strip()]
        roles = {"owner", "admin", "agent"}
        for entry in entries:
            if entry.startswith("role:"):
                if entry[len("role:") :] not in roles:
                    raise ChannelInvalid(
                        "target", f"{entry!r}: the roles are role:owner, role:admin, role:agent"
                    )
                continue
            try:
                validate_email(entry)
            except ValidationError:
                raise ChannelInvalid(
                    "target", f"{entry[:100]!r} is not an e-mail address"
                ) from None
        if not entries:
            raise ChannelInvalid("target", "list at least one address or role")
        return ", ".join(dict.fromkeys(entries))
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    try:
        URLValidator(schemes=["https", "http"])(target)
    except ValidationError:
        raise ChannelInvalid("target", "enter the endpoint's http(s) URL") from None
    if kind == ChannelKind.WEBHOOK and not (
        target.startswith("https://") or settings.NOTIFY_ALLOW_HTTP
    ):
        raise ChannelInvalid("target", "webhook endpoints must use https")
    if kind == ChannelKind.SLACK and not (
        target.startswith("https://hooks.slack.com/") or settings.NOTIFY_ALLOW_HTTP
    ):
        raise ChannelInvalid(
            "target", "a Slack incoming webhook URL starts with https://hooks.slack.com/"
        )
    return target


def _clean_events(events: Any) -> list[str]:
    if events in (None, ""):
        return []
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise ChannelInvalid("events", "a list of event types (empty: all)")
    unknown = sorted(set(events) - SUBSCRIBABLE_EVENTS)
    if unknown:
        raise ChannelInvalid(
            "events",
            f"unknown event type {', '.join(unknown)[:200]}; known: "
            + ", ".join(sorted(SUBSCRIBABLE_EVENTS)),
        )
    return sorted(set(events))


def channel_create(
    *, workspace, kind: str, target: Any, events: Any = None, active: bool = True, name: str = ""
) -> tuple[Channel, str | None]:
    """A new channel; returns it and, for a webhook, its secret (shown to the user once)."""
    if kind not in ChannelKind.values:
        raise ChannelInvalid("kind", f"one of {', '.join(ChannelKind.values)}")
    channel = Channel(
        workspace=workspace,
        kind=kind,
        name=(name or "").strip()[:100],
        target=_clean_target(kind, target),
        events=_clean_events(events),
        active=bool(active),
    )
    secret = secret_generate() if kind == ChannelKind.WEBHOOK else None
    channel.secret = secret or ""
    channel.save()
    return channel, secret


_UNSET: Any = object()


def channel_update(
    *,
    channel: Channel,
    target: Any = _UNSET,
    events: Any = _UNSET,
    active: Any = _UNSET,
    name: Any = _UNSET,
) -> Channel:
    """Change a channel; re-activating one clears why it was disabled."""
    fields = []
    if target is not _UNSET:
        channel.target = _clean_target(channel.kind, target)
        fields.append("target")
    if events is not _UNSET:
        channel.events = _clean_events(events)
        fields.append("events")
    if name is not _UNSET:
        channel.name = (name or "").strip()[:100]
        fields.append("name")
    if active is not _UNSET:
        channel.active = bool(active)
        fields.append("active")
        if channel.active:
            channel.disabled_at = None
            channel.disabled_reason = ""
            fields += ["disabled_at", "disabled_reason"]
    if fields:
        with transaction.atomic():
            channel.save(update_fields=fields)
            if not channel.active:
                _cancel_pending(channel, "the channel was switched off")
    return channel


def channel_rotate_secret(*, channel: Channel) -> str:
    """A new secret for a webhook channel; the old one also signs for ROTATION_OVERLAP.

    Returns the new secret (shown once)."""
    if channel.kind != ChannelKind.WEBHOOK:
        raise ChannelInvalid("kind", "only webhook channels have a secret")
    new = secret_generate()
    with transaction.atomic():
        locked = Channel.objects.select_for_update().get(pk=channel.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_until = timezone.now() + ROTATION_OVERLAP
        locked.secret = new
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    channel.refresh_from_db()
    return new


def _cancel_pending(channel: Channel, why: str) -> int:
    return Delivery.objects.filter(channel=channel, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.CANCELLED, answer=why, next_attempt_at=None
    )


def channel_disable_gone(*, channel: Channel, answer: str) -> None:
    """The endpoint answered 410 Gone: the channel stops, and the admin says so."""
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(
        active=False, disabled_at=now, disabled_reason=f"the endpoint answered {answer[:300]}"
    )
    channel.active = False
    _cancel_pending(channel, "the channel was disabled: its endpoint answered 410 Gone")
    notification_emit(
        workspace_id=channel.workspace_id,
        event=Event.CHANNEL_DISABLED,
        severity=Severity.WARNING,
        title=f"Notification channel {channel} was disabled",
        body=(
            f"Its endpoint answered 410 Gone ({answer[:200]}), which means it no longer "
            "exists. Nothing more is sent to it; switch it back on once it is fixed."
        ),
        objects=[object_ref(channel, kind="channel")],
        data={"channel": {"id": channel.pk, "kind": channel.kind}},
    )


# --- reading ------------------------------------------------------------------------------------


def notifications_mark_read(*, user, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the user's visible notifications read (all of them when ``notification_ids`` is None)."""
    from notifications.selectors import notifications_for

    visible = notifications_for(user).exclude(reads__user=user)
    if notification_ids is not None:
        visible = visible.filter(pk__in=list(notification_ids))
    rows = [
        NotificationRead(notification_id=pk, user=user)
        for pk in visible.values_list("pk", flat=True)
    ]
    NotificationRead.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
