"""Reads of the inbox: conversation lists and their filters, timelines, contact panels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from campaigns.models import Campaign, Recipient, Suppression
from conversations.models import Contact, Conversation, Direction, Message, SentBy


class FilterError(ValueError):
    """A list filter's value is not one we know; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ConversationFilters:
    status: str = ""
    # "me", "none" or a user id.
    assigned: str = ""
    window_open: bool = False
    campaign_id: int | None = None
    q: str = ""


def _digits_query(q: str) -> str:
    """The digits of a phone query ("+91 98..." and "9198..." alike), '' when not a phone."""
    stripped = q.strip().replace(" ", "").replace("-", "").lstrip("+")
    return stripped if stripped.isdigit() and len(stripped) >= 3 else ""


def contact_search(queryset: QuerySet, q: str, prefix: str = "") -> QuerySet:
    """``queryset`` narrowed to contacts whose phone (with or without "+") or name match."""
    q = (q or "").strip()
    if not q:
        return queryset
    digits = _digits_query(q)
    condition = Q(**{f"{prefix}name__icontains": q})
    if digits:
        condition |= Q(**{f"{prefix}phone__contains": digits})
    return queryset.filter(condition)


def conversations_filter(queryset: QuerySet, filters: ConversationFilters, user) -> QuerySet:
    """Apply the inbox's filters (api.md: status, assigned, window, campaign, q)."""
    from conversations.models import ConversationStatus

    if filters.status:
        if filters.status not in ConversationStatus.values:
            raise FilterError("status", f"one of {', '.join(ConversationStatus.values)}")
        queryset = queryset.filter(status=filters.status)
    if filters.assigned == "me":
        queryset = queryset.filter(assigned_to=user)
    elif filters.assigned == "none":
        queryset = queryset.filter(assigned_to__isnull=True)
    elif filters.assigned:
        if not filters.assigned.isascii() or not filters.assigned.isdigit():
            raise FilterError("assigned", "me, none or a user id")
        queryset = queryset.filter(assigned_to_id=int(filters.assigned))
    if filters.window_open:
        queryset = queryset.filter(window_expires_at__gt=timezone.now())
    if filters.campaign_id is not None:
        queryset = queryset.filter(campaign_id=filters.campaign_id)
    if filters.q:
        queryset = contact_search(queryset, filters.q, prefix="contact__")
    return queryset


def conversation_messages(conversation: Conversation, *, after: int | None = None) -> QuerySet:
    """The timeline, oldest first; with ``after`` only the messages stored after that id."""
    rows = conversation.messages.select_related("user", "recipient", "template")
    if after is not None:
        rows = rows.filter(pk__gt=after)
    return rows.order_by("created_at", "pk")


def messages_changed(conversation: Conversation, since) -> QuerySet:
    """Messages whose status (or automation decision) changed since ``since`` (polling)."""
    return (
        conversation.messages.select_related("user", "recipient", "template")
        .filter(updated_at__gt=since)
        .order_by("created_at", "pk")
    )


def contact_opted_out(contact: Contact) -> Suppression | None:
    if not contact.phone:
        return None
    return Suppression.objects.filter(
        workspace_id=contact.workspace_id, phone=contact.phone
    ).first()


def opted_out_phones(workspace_ids, phones) -> set[tuple[int, str]]:
    """(workspace id, phone) pairs that are suppressed, for a page of contacts."""
    return set(
        Suppression.objects.filter(
            workspace_id__in=set(workspace_ids), phone__in=set(phones)
        ).values_list("workspace_id", "phone")
    )


def contact_campaign_history(contact: Contact, limit: int = 20) -> list[Recipient]:
    """The campaign messages the contact was sent (any number), newest first."""
    if not contact.phone:
        return []
    campaigns = Campaign.objects.filter(workspace_id=contact.workspace_id).values("pk")
    return list(
        Recipient.objects.filter(campaign_id__in=campaigns, phone=contact.phone)
        .select_related("campaign", "template")
        .order_by("-pk")[:limit]
    )


def human_owns(conversation: Conversation, quiet_minutes: int) -> bool:
    """A person has the conversation: it is assigned, or an agent replied in the last
    ``quiet_minutes`` (the bot stays quiet then)."""
    if conversation.assigned_to_id is not None:
        return True
    since = timezone.now() - timedelta(minutes=max(quiet_minutes, 0))
    return Message.objects.filter(
        conversation=conversation,
        direction=Direction.OUT,
        sent_by=SentBy.AGENT,
        created_at__gte=since,
    ).exists()


def message_status(message: Message) -> str:
    """The status to show: a campaign send's is its Recipient's (the one truth)."""
    if message.recipient_id is not None and message.recipient is not None:
        return message.recipient.status
    return message.status


def message_error(message: Message) -> tuple[int | None, str]:
    if message.recipient_id is not None and message.recipient is not None:
        return message.recipient.error_code, message.recipient.error_title
    return message.error_code, message.error_title
