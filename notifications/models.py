"""Notifications: what happened (Notification), where it goes (Channel), and each
channel's delivery of it (Delivery) with every attempt (DeliveryAttempt).

The Notification and its Delivery rows are the outbox: they are written in the
transaction of the change that caused them, and delivered after commit.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import WorkspaceOwned
from config.fields import EncryptedTextField


class Event(models.TextChoices):
    """Event types (api.md "Notifications"); the value is the webhook's ``type``."""

    CAMPAIGN_COMPLETED = "campaign.completed", "Campaign completed"
    CAMPAIGN_PAUSED = "campaign.paused", "Campaign paused by the product"
    CAMPAIGN_PREFLIGHT_FAILED = "campaign.preflight_failed", "Scheduled start refused by pre-flight"
    CAMPAIGN_EXPIRED = "campaign.expired", "Scheduled campaign expired"
    IMPORT_FINISHED = "import.finished", "Contact import finished"
    TEMPLATE_STATUS_CHANGED = "template.status_changed", "Template status changed"
    TEMPLATE_CATEGORY_CHANGED = "template.category_changed", "Template category changed"
    NUMBER_QUALITY_CHANGED = "number.quality_changed", "Number quality rating changed"
    NUMBER_TIER_CHANGED = "number.tier_changed", "Number messaging-limit tier changed"
    NUMBER_STATUS_CHANGED = "number.status_changed", "Number status changed"
    NUMBER_TOKEN_INVALID = "number.token_invalid", "Number token expired or revoked"
    CONVERSATION_HANDED_OVER = "conversation.handed_over", "Conversation handed over to a human"
    CHANNEL_DISABLED = "notification.channel_disabled", "Notification channel disabled"
    TEST = "notification.test", "Test notification"


# What a channel may subscribe to: everything but the test (always sent to the channel tested)
# and the disabled-channel notice (in the admin only: the channel is gone).
SUBSCRIBABLE_EVENTS = frozenset(Event.values) - {Event.TEST, Event.CHANNEL_DISABLED}


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook (Standard Webhooks)"
    SLACK = "slack", "Slack incoming webhook"


class Channel(WorkspaceOwned):
    """Where a workspace's notifications go.

    ``target``: for e-mail, comma-separated addresses and/or ``role:owner``,
    ``role:admin``, ``role:agent`` (the members with that role who have an
    address); for webhooks and Slack, the URL. ``events``: the event types
    received, empty for all.
    """

    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=8, choices=ChannelKind.choices)
    # Encrypted like the secrets: a Slack hook's URL is its credential, and a webhook
    # URL may carry one.
    target = EncryptedTextField()
    events = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    # Webhooks: "whsec_" + base64 of 32 random bytes. During a rotation the previous
    # secret signs too (a second signature) until ``previous_secret_until``.
    secret = EncryptedTextField(blank=True)
    previous_secret = EncryptedTextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name or f"{self.get_kind_display()} {self.pk}"

    def receives(self, event: str) -> bool:
        """Subscribed to ``event`` (the test and the disabled-channel notice never are)."""
        return event in SUBSCRIBABLE_EVENTS and (not self.events or event in self.events)


class Notification(WorkspaceOwned):
    """One thing a workspace's people should know, as the admin shows it and channels send it.

    ``objects``: what it is about, ``[{"type", "id", "name", "admin_url"}]``.
    ``data``: event-specific facts (the webhook body's ``data`` besides the
    workspace and objects). Reading is per user (NotificationRead): a bell that
    one teammate cleared must still ring for the others.

    Dedup: while a notification's cooldown runs, further events with its
    ``dedup_key`` are held back: counted in ``held_back`` with the latest kept in
    ``held_latest``; when the cooldown ends the sweep sends one summary.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=40, choices=Event.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    objects_ref = models.JSONField("objects", default=list, blank=True, db_column="objects")
    data = models.JSONField(default=dict, blank=True)
    dedup_key = models.CharField(max_length=200, blank=True)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    held_back = models.PositiveIntegerField(default=0)
    held_latest = models.JSONField(default=dict, blank=True)
    summarized_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["workspace", "event", "dedup_key", "-created_at"], name="notif_dedup"
            ),
            models.Index(
                fields=["cooldown_until"],
                name="notif_held_pending",
                condition=Q(held_back__gt=0, summarized_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class NotificationRead(models.Model):
    """``user`` read ``notification`` at ``read_at`` (the bell counts the others)."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "user"], name="unique_notification_read"
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} read by {self.user_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Delivery(models.Model):
    """One channel's delivery of one notification; retried until delivered or 24 h old."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The last attempt's outcome in a line: "200", "500: ...", "timed out after 10 s".
    answer = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} to {self.channel_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """Every attempt of a delivery: when, what came back, how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    answer = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"attempt of delivery {self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}"
