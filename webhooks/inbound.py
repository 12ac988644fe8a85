"""Inbound messages: storing what users send our numbers, linking replies to their messages."""

from __future__ import annotations

import logging
from collections import defaultdict

from django.db.models import Count, Q
from redis import exceptions as redis_exceptions

from campaigns.models import Campaign, Recipient
from campaigns.selectors import RECIPIENT_FIELDS
from messaging.ratelimit import inbound_take
from numbers.models import Number
from webhooks.models import InboundMessage, WebhookEvent
from webhooks.parse import as_text, event_time, message_fields
from webhooks.report import Report
from webhooks.signals import inbound_stored

logger = logging.getLogger(__name__)


def store_inbound(
    event: WebhookEvent, items: list[tuple[str, dict, dict[str, str]]], report: Report
) -> None:
    """Store ``items`` (phone number id, message object, contact names) once per number
    and message id, and link the new ones to the messages they answer."""
    numbers = defaultdict(list)
    for number in Number.objects.filter(phone_number_id__in={pnid for pnid, _, _ in items}).only(
        "pk", "workspace_id", "phone_number_id", "max_mps"
    ):
        numbers[number.phone_number_id].append(number)
    rows: dict[tuple[int, str], InboundMessage] = {}
    for pnid, item, names in items:
        message_id = as_text(item.get("id"), 128)
        sender = as_text(item.get("from"), 32) or ""
        # Meta's business-scoped user id: the only sender id of a user who hides the phone.
        user_id = as_text(item.get("from_user_id"), 128) or ""
        kind = as_text(item.get("type"), 32)
        if not message_id or not (sender or user_id) or not kind:
            report.problem("an inbound message without id, from (or from_user_id) or type")
            continue
        if not numbers.get(pnid):
            report.counts["inbound_unknown_number"] += 1
            continue
        at, _ = event_time(
            item.get("timestamp"),
            received_at=event.received_at,
            report=report,
            what=f"inbound {message_id}",
        )
        fields = message_fields(kind, item)
        for number in numbers[pnid]:
            rows.setdefault(
                (number.pk, message_id),
                InboundMessage(
                    workspace_id=number.workspace_id,
                    number=number,
                    event=event,
                    message_id=message_id,
                    wa_id=sender,
                    contact_name=names.get(sender) or names.get(user_id, ""),
                    type=kind,
                    at=at,
                    received_at=event.received_at,
                    raw=item,
                    **fields,
                ),
            )
    if not rows:
        return
    InboundMessage.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
    _count_against_throughput(event, {n.pk: n.max_mps for ns in numbers.values() for n in ns})
    mine = list(InboundMessage.objects.filter(event=event, recipient__isnull=True).order_by("pk"))
    report.counts["inbound"] += len(rows)
    report.counts["inbound_duplicates"] += (
        len(rows) - InboundMessage.objects.filter(event=event).count()
    )
    link_replies(mine, report)
    # The inbox threads them (conversations connects); a redelivered message is left out
    # by the unique (number, message_id) above, and the receiver deduplicates by wamid.
    inbound_stored.send(
        sender=InboundMessage, messages=list(InboundMessage.objects.filter(event=event))
    )


def _count_against_throughput(event: WebhookEvent, max_mps: dict[int, int]) -> None:
    """Inbound messages use the number's throughput at Meta as sends do: the new ones of
    this event are counted against their numbers' limiters (best effort: the messages
    are stored whatever Redis says)."""
    stored = (
        InboundMessage.objects.filter(event=event)
        .values_list("number_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts = {number_id: (max_mps.get(number_id, 80), n) for number_id, n in stored}
    try:
        inbound_take(counts)
    except redis_exceptions.RedisError:
        logger.warning("could not count inbound messages against the numbers' throughput")


def link_replies(messages: list[InboundMessage], report: Report) -> None:
    """Link each message to the campaign message it answers (its ``replied_at``)."""
    if not messages:
        return
    contexts = {m.context_wamid for m in messages if m.context_wamid}
    by_wamid = {r.wamid: r for r in lock_recipients(Q(wamid__in=contexts))} if contexts else {}
    replied: dict[int, Recipient] = {}
    for message in messages:
        recipient = by_wamid.get(message.context_wamid)
        if recipient is None or recipient.number_id != message.number_id:
            recipient = _latest_sent_to(message.number_id, message.wa_id)
        if recipient is None:
            continue
        recipient = replied.get(recipient.pk, recipient)
        message.recipient = recipient
        message.campaign_id = recipient.campaign_id
        if recipient.replied_at is None or message.at < recipient.replied_at:
            recipient.replied_at = message.at
            replied[recipient.pk] = recipient
    linked = [m for m in messages if m.recipient_id]
    InboundMessage.objects.bulk_update(linked, ["recipient", "campaign"])
    if replied:
        Recipient.objects.bulk_update(list(replied.values()), ["replied_at"])
    report.counts["replies_linked"] += len(linked)


def unlinked_replies_to(recipients: list[Recipient]) -> list[InboundMessage]:
    """Stored replies to ``recipients``' messages not linked yet (they beat the send's answer)."""
    return list(
        InboundMessage.objects.filter(
            context_wamid__in={r.wamid for r in recipients if r.wamid},
            number_id__in={r.number_id for r in recipients},
            recipient__isnull=True,
        ).order_by("pk")
    )


def _latest_sent_to(number_id: int, wa_id: str) -> Recipient | None:
    """The latest campaign message this number sent to ``wa_id``, locked."""
    uses = Campaign.numbers.through.objects.filter(number_id=number_id).values("campaign_id")
    # Through the campaigns using the number, so the (campaign, phone) index serves it.
    found = lock_recipients(
        Q(
            pk__in=Recipient.objects.filter(
                campaign_id__in=uses, number_id=number_id, phone=f"+{wa_id}", sent_at__isnull=False
            )
            .order_by("-sent_at", "-pk")
            .values("pk")[:1]
        )
    )
    return found[0] if found else None


def lock_recipients(condition: Q) -> list[Recipient]:
    """The recipients matching ``condition``, locked, with the columns statuses and replies
    change."""
    # Locked in id order: two events touching the same recipients cannot deadlock here.
    return list(
        Recipient.objects.select_for_update(of=("self",))
        .filter(condition)
        .only("id", "campaign_id", "number_id", *RECIPIENT_FIELDS)
        .order_by("pk")
    )
