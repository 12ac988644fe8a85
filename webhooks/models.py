"""What Meta's webhooks brought: raw events, message statuses, parked statuses, inbound messages."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import WorkspaceOwned


class WebhookEventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    # Processing raised: kept as received, fixable and reprocessable from the admin.
    FAILED = "failed", "Failed"
    # A person should look: bad signature, malformed JSON or a shape we do not understand.
    FLAGGED = "flagged", "Flagged"


class WebhookEvent(models.Model):
    """One POST to the webhook endpoint, stored before anything else happens to it.

    ``body`` holds the bytes exactly as received, so an event can be replayed after a
    bug fix. Only correctly signed POSTs become events: refused ones are counted
    (WebhookRefusalCount) and sampled (WebhookRefusalSample). Rows with
    ``signature_valid=False`` were stored by earlier versions; they are never processed
    and retention deletes them.
    """

    received_at = models.DateTimeField(default=timezone.now)
    body = models.BinaryField()
    # The request headers worth keeping (content type, user agent, signature, proxy chain).
    headers = models.JSONField(default=dict, blank=True)
    signature_valid = models.BooleanField()
    status = models.CharField(
        max_length=10, choices=WebhookEventStatus.choices, default=WebhookEventStatus.RECEIVED
    )
    error = models.TextField(blank=True)
    # What processing did, e.g. {"statuses": 3, "applied": 2, "duplicates": 1}.
    outcome = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When the sweeper last re-queued it (a lost task must not leave it unprocessed).
    requeued_at = models.DateTimeField(null=True, blank=True)
    # sha256 of the body: Meta's retries of one POST carry the same bytes (kept to find
    # them; applying them again is harmless, each status and message is deduplicated).
    dedupe_key = models.CharField(max_length=64, db_index=True)

    class Meta:
        # The tables were created when these models lived in messaging; the names stay.
        db_table = "messaging_webhookevent"
        ordering = ["-pk"]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="webhook_event_unprocessed",
                condition=Q(status="received"),
            ),
            # Retention deletes the oldest events in batches (webhooks/retention.py).
            models.Index(fields=["received_at"], name="webhook_event_received_at"),
        ]
        permissions = [("reprocess_webhookevent", "Can reprocess webhook events")]

    def __str__(self) -> str:
        return f"webhook event {self.pk} ({self.status})"

    @property
    def body_bytes(self) -> bytes:
        # psycopg hands bytea back as memoryview.
        return bytes(self.body)


class StatusOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    # Matched its message, which it could not move (already further, or terminal).
    UNCHANGED = "unchanged", "Unchanged"
    PENDING = "pending", "Waiting for its message"
    IGNORED = "ignored", "Ignored"
    EXPIRED = "expired", "Expired unmatched"


class StatusUpdate(models.Model):
    """One status Meta reported for one message; unique per (message, status), which is
    what makes a duplicate delivery change nothing. Keeps pricing and conversation data."""

    event = models.ForeignKey(
        WebhookEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The wamid, or "recipient:<id>" when Meta sent no id.
    message_key = models.CharField(max_length=160)
    status = models.CharField(max_length=16)
    wamid = models.CharField(max_length=128, blank=True)
    recipient = models.ForeignKey(
        "campaigns.Recipient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="status_updates",
    )
    phone_number_id = models.CharField(max_length=32, blank=True)
    # value.statuses[].recipient_id: the user's WhatsApp id.
    wa_id = models.CharField(max_length=32, blank=True)
    callback_data = models.CharField(max_length=512, blank=True)
    # Meta's timestamp for the status.
    at = models.DateTimeField()
    conversation = models.JSONField(null=True, blank=True)
    pricing = models.JSONField(null=True, blank=True)
    errors = models.JSONField(null=True, blank=True)
    outcome = models.CharField(
        max_length=10, choices=StatusOutcome.choices, default=StatusOutcome.PENDING
    )
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The table's name from messaging, like WebhookEvent's.
        db_table = "messaging_statusupdate"
        ordering = ["at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["message_key", "status"], name="unique_status_update")
        ]

    def __str__(self) -> str:
        return f"{self.message_key} {self.status}"


class PendingStatus(models.Model):
    """A status whose message is not known yet, or still owned by the sending engine (the
    webhook raced the send's answer); applied when the message appears."""

    update = models.OneToOneField(StatusUpdate, on_delete=models.CASCADE, related_name="pending")
    wamid = models.CharField(max_length=128, blank=True, db_index=True)
    # Our id from biz_opaque_callback_data, when it held one.
    callback_recipient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_tried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table's name from messaging, like WebhookEvent's.
        db_table = "messaging_pendingstatus"
        ordering = ["pk"]
        verbose_name_plural = "pending statuses"

    def __str__(self) -> str:
        return f"pending {self.update_id}"


class InboundMessage(WorkspaceOwned):
    """A user's message to one of our numbers, linked to the campaign message it answers."""

    number = models.ForeignKey(
        "numbers.Number", on_delete=models.CASCADE, related_name="inbound_messages"
    )
    event = models.ForeignKey(
        WebhookEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Meta's id for the message (a wamid).
    message_id = models.CharField(max_length=128)
    wa_id = models.CharField(max_length=32)
    contact_name = models.CharField(max_length=256, blank=True)
    # text, button, interactive, image, document, audio, video, sticker, location,
    # reaction, unsupported, ...
    type = models.CharField(max_length=32)
    # The text a person reads: body, button or reply title, caption, reaction emoji.
    text = models.TextField(blank=True)
    # What a machine matches on: button payload, reply id.
    payload = models.TextField(blank=True)
    # Media metadata (id, mime_type, sha256, caption, filename, voice), never the file.
    media = models.JSONField(null=True, blank=True)
    # The wamid this message answers (context.id, or the message a reaction is for).
    context_wamid = models.CharField(max_length=128, blank=True)
    # The message object as Meta sent it, for the types not modelled field by field.
    raw = models.JSONField(default=dict, blank=True)
    # Meta's timestamp; received_at is when our endpoint got it.
    at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    recipient = models.ForeignKey(
        "campaigns.Recipient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_messages",
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_messages",
    )

    class Meta:
        # The table's name from messaging, like WebhookEvent's.
        db_table = "messaging_inboundmessage"
        ordering = ["-at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["number", "message_id"], name="unique_inbound_message")
        ]
        indexes = [
            # The inbox reads a conversation: one number, one contact, newest first.
            models.Index(fields=["number", "wa_id", "at"], name="inbound_conversation"),
            # Replies that arrived before the send's answer, linked when it is recorded.
            models.Index(
                fields=["context_wamid"],
                name="inbound_unlinked_context",
                condition=Q(recipient__isnull=True) & ~Q(context_wamid=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wa_id}: {self.type}"


class RefusalReason(models.TextChoices):
    MISSING_SIGNATURE = "missing signature", "Missing signature"
    BAD_SIGNATURE = "bad signature", "Bad signature"
    NO_APP_SECRET = "no app secret", "No app secret configured"
    TOO_LARGE = "body too large", "Body too large"


class WebhookRefusalCount(models.Model):
    """How many POSTs the endpoint refused in one hour for one reason.

    A counter, not a row per request: a flood of forged POSTs costs one UPDATE each and
    no disk (webhooks/refusals.py).
    """

    hour = models.DateTimeField()
    reason = models.CharField(max_length=20, choices=RefusalReason.choices)
    count = models.PositiveBigIntegerField(default=0)
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["-hour", "reason"]
        constraints = [
            models.UniqueConstraint(fields=["hour", "reason"], name="unique_webhook_refusal_count")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.reason}: {self.count}"


class WebhookRefusalSample(models.Model):
    """One of the last refused POSTs, cut short, so a person can see what is hitting the
    endpoint: the table is a ring of REFUSAL_SAMPLES slots, the newest overwriting the
    oldest (``number`` counts every refusal ever sampled)."""

    slot = models.PositiveSmallIntegerField(primary_key=True)
    number = models.BigIntegerField()
    received_at = models.DateTimeField()
    reason = models.CharField(max_length=20, choices=RefusalReason.choices)
    remote_addr = models.CharField(max_length=64, blank=True)
    # The Content-Length the request declared (None without one).
    content_length = models.BigIntegerField(null=True, blank=True)
    # The body's first bytes and the kept headers, each cut short.
    body = models.BinaryField()
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"refused POST {self.number} ({self.reason})"

    @property
    def body_bytes(self) -> bytes:
        return bytes(self.body)
