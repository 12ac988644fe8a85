"""Contacts, one conversation per (number, contact), its message timeline and notes.

Campaign recipients are not given a foreign key to their contact: the engine writes
Recipient rows on its hot path and must not look contacts up. A contact's campaign
history is found by (workspace, phone) instead, through the campaigns of the
workspace (the (campaign, phone) index serves it), and a campaign send enters a
conversation's timeline as a Message pointing at its Recipient row, whose status
stays the one truth (never copied).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import WorkspaceOwned


class Contact(WorkspaceOwned):
    """One WhatsApp user of one workspace."""

    # E.164 with "+"; blank while only Meta's business-scoped user id is known.
    phone = models.CharField(max_length=20, blank=True)
    # Meta's WhatsApp id (the phone's digits for now).
    wa_id = models.CharField(max_length=32, blank=True)
    # Meta's business-scoped user id, when a webhook carried one.
    bsuid = models.CharField("business-scoped user id", max_length=128, blank=True)
    # The profile name Meta reports.
    name = models.CharField(max_length=256, blank=True)
    # Columns of the campaign CSVs the contact was in (the latest value of each).
    attributes = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_inbound_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_inbound_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "phone"],
                name="unique_contact_phone",
                condition=~Q(phone=""),
            ),
            models.UniqueConstraint(
                fields=["workspace", "bsuid"],
                name="unique_contact_bsuid",
                condition=~Q(bsuid=""),
            ),
        ]
        indexes = [models.Index(fields=["workspace", "name"], name="contact_name")]

    def __str__(self) -> str:
        return self.name or self.phone or self.bsuid


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open"
    # Waiting for a person (a bot handed it over).
    PENDING = "pending", "Pending"
    RESOLVED = "resolved", "Resolved"


class Conversation(WorkspaceOwned):
    """The thread between one of our numbers and one contact."""

    number = models.ForeignKey(
        "numbers.Number", on_delete=models.CASCADE, related_name="conversations"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(
        max_length=10, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Inbound messages since a member last opened the thread.
    unread = models.PositiveIntegerField(default=0)
    # Last inbound + 24 h: free-form replies are allowed until then.
    window_expires_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True)
    # The campaign of the last template the contact received from this number.
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The last inbound wamid we told Meta was read (opening twice sends one call).
    read_wamid = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["number", "contact"], name="unique_conversation")
        ]
        indexes = [
            models.Index(fields=["workspace", "-last_message_at"], name="conversation_recent"),
            models.Index(fields=["workspace", "status"], name="conversation_status"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} via {self.number_id}"

    def window_open(self, now=None) -> bool:
        now = now or timezone.now()
        return self.window_expires_at is not None and self.window_expires_at > now


class Direction(models.TextChoices):
    IN = "in", "Inbound"
    OUT = "out", "Outgoing"


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    AUDIO = "audio", "Audio"
    DOCUMENT = "document", "Document"
    STICKER = "sticker", "Sticker"
    LOCATION = "location", "Location"
    CONTACTS = "contacts", "Contacts"
    INTERACTIVE = "interactive", "Interactive reply"
    BUTTON = "button", "Button"
    REACTION = "reaction", "Reaction"
    TEMPLATE = "template", "Template"
    UNSUPPORTED = "unsupported", "Unsupported"


class MessageStatus(models.TextChoices):
    # Stored, waiting for the reply worker (outgoing only; a few hundred ms).
    QUEUED = "queued", "Queued"
    ACCEPTED = "accepted", "Accepted"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    # The send's answer was lost: Meta may have it. Never resent on its own.
    UNKNOWN = "unknown", "Unknown"
    # Inbound messages: what Meta delivered to us.
    RECEIVED = "received", "Received"


# Status progress of an outgoing message; a status never moves backwards.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.UNKNOWN: 1,
    MessageStatus.ACCEPTED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.READ: 5,
}


class SentBy(models.TextChoices):
    CAMPAIGN = "campaign", "Campaign"
    AGENT = "agent", "Agent"
    BOT = "bot", "Bot"
    CONTACT = "contact", "Contact"


class Message(WorkspaceOwned):
    """One message of a conversation's timeline, either way."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=12, choices=MessageKind.choices)
    text = models.TextField(blank=True)
    # Media metadata (id, mime_type, filename, caption, sha256), or a location or
    # contacts card; never the file itself.
    media = models.JSONField(null=True, blank=True)
    # What a machine matches on: button payload, list/button reply id, template params.
    payload = models.TextField(blank=True)
    wamid = models.CharField(max_length=128, blank=True)
    # The wamid this one answers (context.id; the message a reaction is for).
    context_wamid = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=255, blank=True)
    sent_by = models.CharField(max_length=8, choices=SentBy.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Meta's time for inbound, the send time for outgoing: the timeline's order.
    created_at = models.DateTimeField(default=timezone.now)
    # Any change a polling client must redraw (a status, an automation decision).
    updated_at = models.DateTimeField(default=timezone.now)
    # A campaign send: its status is the Recipient's (read from there, never copied).
    recipient = models.OneToOneField(
        "campaigns.Recipient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    template = models.ForeignKey(
        "templates_sync.Template",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Template parameters ({"body.1": "..."}) of a template reply.
    parameters = models.JSONField(default=dict, blank=True)
    # The client's Idempotency-Key: a second request with it returns this message.
    idempotency_key = models.CharField(max_length=128, blank=True)
    # What the auto-reply pipeline decided about this inbound (automation writes it).
    automation = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "wamid"],
                name="unique_message_wamid",
                condition=~Q(wamid=""),
            ),
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                name="unique_message_idempotency_key",
                condition=~Q(idempotency_key=""),
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_timeline"),
            models.Index(fields=["conversation", "updated_at"], name="message_changes"),
            models.Index(fields=["wamid"], name="message_wamid", condition=~Q(wamid="")),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} {self.pk}"


class Note(WorkspaceOwned):
    """An internal note on a conversation; the contact never sees it."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # "agent" for a member's note, "bot" for one the automation wrote (a handover).
    by = models.CharField(max_length=8, default="agent")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"note {self.pk}"
