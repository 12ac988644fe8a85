"""The inbox's rules: threading inbound messages, replies, assignment, notes, status.

Entry points (the webhook receivers, API views, admin views, tasks) call these and
nothing else writes conversations.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership
from campaigns.models import Campaign, Recipient, Suppression
from config.commit import after_commit
from conversations import signals
from conversations.models import (
    STATUS_RANK,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
    MessageStatus,
    Note,
    SentBy,
)
from messaging.graph import GraphError
from messaging.ratelimit import RateLimiter
from templates_sync.models import Template, TemplateStatus
from templates_sync.rendering import RenderError, preview_text, render_components

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
# Meta's "re-engagement message" refusal: free-form outside the 24 h window.
WINDOW_CLOSED = 131047
PREVIEW_LENGTH = 200
# Inbound types stored under their own kind; any other type Meta adds is "unsupported".
INBOUND_KINDS = frozenset(
    {
        MessageKind.TEXT,
        MessageKind.IMAGE,
        MessageKind.VIDEO,
        MessageKind.AUDIO,
        MessageKind.DOCUMENT,
        MessageKind.STICKER,
        MessageKind.LOCATION,
        MessageKind.CONTACTS,
        MessageKind.INTERACTIVE,
        MessageKind.BUTTON,
        MessageKind.REACTION,
        MessageKind.UNSUPPORTED,
    }
)
# What an upload may be sent as, by MIME type prefix; the rest go as documents.
_UPLOAD_KINDS = (("image/", MessageKind.IMAGE), ("video/", MessageKind.VIDEO))
# Meta's limits for uploaded media (bytes).
MAX_UPLOAD_BYTES = {MessageKind.IMAGE: 5 * 1024 * 1024, MessageKind.VIDEO: 16 * 1024 * 1024}
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
VIDEO_TYPES = frozenset({"video/mp4", "video/3gpp"})


class ReplyError(Exception):
    """A reply refused before anything was sent; ``detail`` says why."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class WindowClosed(ReplyError):
    """Free-form outside the 24 h window; ``expired_at`` is when it closed (None: never
    opened)."""

    status_code = 409

    def __init__(self, expired_at: datetime | None) -> None:
        when = f" at {expired_at:%Y-%m-%d %H:%M} UTC" if expired_at else ""
        super().__init__(
            f"The 24-hour window closed{when}: only an approved template can reopen it."
            if expired_at
            else "The contact never wrote: only an approved template can open a conversation."
        )
        self.expired_at = expired_at


class OptedOut(ReplyError):
    status_code = 409

    def __init__(self) -> None:
        super().__init__("The contact opted out: nothing may be sent to them.")


@dataclass(frozen=True)
class Upload:
    """A file to send: its name, bytes and MIME type (from the client)."""

    name: str
    content: bytes
    content_type: str


# --- contacts ----------------------------------------------------------------------------


def phone_of(wa_id: str) -> str:
    """The E.164 phone of a WhatsApp id (its digits), '' for one that is not a phone."""
    digits = (wa_id or "").strip().lstrip("+")
    # isascii: str.isdigit() also accepts "²" and full-width digits, which no phone has.
    ok = digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15
    return f"+{digits}" if ok else ""


def contact_ensure(
    *,
    workspace_id: int,
    wa_id: str = "",
    name: str = "",
    bsuid: str = "",
    at: datetime | None = None,
) -> Contact:
    """The workspace's contact for ``wa_id`` (or the business-scoped ``bsuid`` when Meta
    sent no phone), created when new. A contact known only by its bsuid is merged into
    the phone's contact once a webhook carries both."""
    phone = phone_of(wa_id)
    at = at or timezone.now()
    if not phone and not bsuid:
        raise ValueError("a contact needs a phone (wa_id) or a business-scoped user id")
    rows = Contact.objects.filter(workspace_id=workspace_id)
    by_phone = rows.filter(phone=phone).first() if phone else None
    by_bsuid = rows.filter(bsuid=bsuid).first() if bsuid else None
    if by_phone and by_bsuid and by_phone.pk != by_bsuid.pk:
        if by_bsuid.phone:
            # The id is another phone's already: keep the two apart, trust the phone.
            bsuid, by_bsuid = "", None
        else:
            _contacts_merge(keep=by_phone, drop=by_bsuid)
            by_bsuid = None
    contact = by_phone or by_bsuid
    if contact is None:
        try:
            with transaction.atomic():
                return Contact.objects.create(
                    workspace_id=workspace_id,
                    phone=phone,
                    wa_id=wa_id if phone else "",
                    bsuid=bsuid,
                    name=name,
                    first_seen_at=at,
                )
        except IntegrityError:
            # Another worker created it meanwhile.
            return contact_ensure(workspace_id=workspace_id, wa_id=wa_id, name=name, bsuid=bsuid)
    changed = []
    if phone and not contact.phone:
        contact.phone, contact.wa_id = phone, wa_id
        changed += ["phone", "wa_id"]
    if bsuid and not contact.bsuid:
        contact.bsuid = bsuid
        changed.append("bsuid")
    if name and name != contact.name:
        contact.name = name
        changed.append("name")
    if at < contact.first_seen_at:
        contact.first_seen_at = at
        changed.append("first_seen_at")
    if changed:
        contact.save(update_fields=changed)
    return contact


def _contacts_merge(*, keep: Contact, drop: Contact) -> None:
    """Move ``drop``'s conversations (or, where ``keep`` has one on the same number, their
    messages and notes) to ``keep``, then delete ``drop``; ``keep`` takes its bsuid."""
    for conversation in Conversation.objects.select_for_update().filter(contact=drop):
        target = (
            Conversation.objects.select_for_update()
            .filter(number_id=conversation.number_id, contact=keep)
            .first()
        )
        if target is None:
            conversation.contact = keep
            conversation.save(update_fields=["contact"])
            continue
        Message.objects.filter(conversation=conversation).update(conversation=target)
        Note.objects.filter(conversation=conversation).update(conversation=target)
        target.unread += conversation.unread
        for field in ("window_expires_at", "last_message_at"):
            theirs = getattr(conversation, field)
            if theirs and (getattr(target, field) is None or theirs > getattr(target, field)):
                setattr(target, field, theirs)
                if field == "last_message_at":
                    target.last_message_preview = conversation.last_message_preview
        target.save()
        conversation.delete()
    bsuid, attributes = drop.bsuid, {**drop.attributes, **keep.attributes}
    first_seen = min(keep.first_seen_at, drop.first_seen_at)
    last_inbound = max((x for x in (keep.last_inbound_at, drop.last_inbound_at) if x), default=None)
    drop.delete()
    keep.bsuid, keep.attributes = bsuid, attributes
    keep.first_seen_at, keep.last_inbound_at = first_seen, last_inbound
    keep.save(update_fields=["bsuid", "attributes", "first_seen_at", "last_inbound_at"])


def contact_opted_out(contact: Contact) -> bool:
    return bool(contact.phone) and (
        Suppression.objects.filter(workspace_id=contact.workspace_id, phone=contact.phone).exists()
    )


# --- inbound -------------------------------------------------------------------------------


def _inbound_fields(inbound) -> dict[str, Any]:
    """kind, text, media, payload and error of one webhooks.InboundMessage."""
    raw = inbound.raw if isinstance(inbound.raw, dict) else {}
    kind = inbound.type if inbound.type in INBOUND_KINDS else MessageKind.UNSUPPORTED
    text, media = inbound.text, inbound.media
    if kind == MessageKind.LOCATION:
        media = {k: v for k, v in (raw.get("location") or {}).items() if k in _LOCATION_KEYS}
    elif kind == MessageKind.CONTACTS:
        cards = raw.get("contacts") if isinstance(raw.get("contacts"), list) else []
        media = {"contacts": cards[:20]}
        names = [
            str((card.get("name") or {}).get("formatted_name") or "")
            for card in cards
            if isinstance(card, dict)
        ]
        text = ", ".join(n for n in names if n)
    elif kind == MessageKind.UNSUPPORTED and inbound.type != MessageKind.UNSUPPORTED:
        text = text or f"({inbound.type} message)"
    error_code, error_title = None, ""
    errors = raw.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        error_code = code if isinstance(code, int) else None
        error_title = str(errors[0].get("title") or errors[0].get("message") or "")[:255]
    return {
        "kind": kind,
        "text": text,
        "media": media,
        "payload": inbound.payload,
        "context_wamid": inbound.context_wamid,
        "error_code": error_code,
        "error_title": error_title,
    }


_LOCATION_KEYS = ("latitude", "longitude", "name", "address", "url")


def _preview(kind: str, text: str) -> str:
    shown = text.strip() or f"[{kind}]"
    return shown[:PREVIEW_LENGTH]


def _text_id(value: Any) -> str:
    """A sender id from the raw message: text or a number, never a list's repr."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()[:128]


def inbound_thread(messages: Iterable) -> list[Message]:
    """Thread webhooks.InboundMessage rows into conversations; returns the new Messages.

    Called inside the webhook's transaction. A message delivered twice makes one Message
    (unique per conversation and wamid, checked under the conversation's row lock); one
    delivered late takes its place by Meta's time, and moves the window, the last
    message and the preview only forward. A new inbound reopens a resolved conversation.
    """
    created: list[Message] = []
    for inbound in sorted(messages, key=lambda m: (m.at, m.pk)):
        message = _thread_one(inbound)
        if message is not None:
            created.append(message)
    return created


def _thread_one(inbound) -> Message | None:
    raw = inbound.raw if isinstance(inbound.raw, dict) else {}
    bsuid = _text_id(raw.get("from_user_id")) or _text_id(raw.get("user_id"))
    if not phone_of(inbound.wa_id) and not bsuid:
        # Stored by the webhook as Meta sent it, but there is nobody to thread it to (a
        # `from` that is no WhatsApp id and no business-scoped id): failing the event
        # would lose the other messages it carries.
        logger.warning(
            "inbound %s on number %s has no usable sender; not threaded",
            inbound.message_id,
            inbound.number_id,
        )
        return None
    contact = contact_ensure(
        workspace_id=inbound.workspace_id,
        wa_id=inbound.wa_id,
        name=inbound.contact_name,
        bsuid=bsuid,
        at=inbound.at,
    )
    conversation = _conversation_locked(inbound.workspace_id, inbound.number_id, contact)
    if Message.objects.filter(conversation=conversation, wamid=inbound.message_id).exists():
        return None
    fields = _inbound_fields(inbound)
    message = Message.objects.create(
        workspace_id=inbound.workspace_id,
        conversation=conversation,
        direction=Direction.IN,
        wamid=inbound.message_id,
        status=MessageStatus.RECEIVED,
        sent_by=SentBy.CONTACT,
        created_at=inbound.at,
        updated_at=timezone.now(),
        **fields,
    )
    changed = {"unread"}
    conversation.unread += 1
    window = inbound.at + WINDOW
    if conversation.window_expires_at is None or window > conversation.window_expires_at:
        conversation.window_expires_at = window
        changed.add("window_expires_at")
    if conversation.last_message_at is None or inbound.at >= conversation.last_message_at:
        conversation.last_message_at = inbound.at
        conversation.last_message_preview = _preview(fields["kind"], fields["text"])
        changed |= {"last_message_at", "last_message_preview"}
    if conversation.status == ConversationStatus.RESOLVED:
        conversation.status = ConversationStatus.OPEN
        conversation.resolved_at = None
        changed |= {"status", "resolved_at"}
    if inbound.campaign_id and inbound.campaign_id != conversation.campaign_id:
        conversation.campaign_id = inbound.campaign_id
        changed.add("campaign")
    conversation.save(update_fields=sorted(changed))
    if contact.last_inbound_at is None or inbound.at > contact.last_inbound_at:
        Contact.objects.filter(pk=contact.pk).update(last_inbound_at=inbound.at)
    conversation_campaign_sync(conversation, contact=contact)
    signals.inbound_created.send(sender=Message, message=message)
    return message


def _conversation_locked(workspace_id: int, number_id: int, contact: Contact) -> Conversation:
    """The (number, contact) conversation, created when new, locked for this transaction."""
    conversation = (
        Conversation.objects.select_for_update()
        .filter(number_id=number_id, contact=contact)
        .first()
    )
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            Conversation.objects.create(
                workspace_id=workspace_id, number_id=number_id, contact=contact
            )
    except IntegrityError:
        pass  # Another worker created it meanwhile: lock that one.
    return Conversation.objects.select_for_update().get(number_id=number_id, contact=contact)


# --- campaign sends in the timeline ---------------------------------------------------------


def contact_recipients(contact: Contact, *, number_id: int | None = None):
    """The campaign recipient rows of ``contact`` (by workspace and phone), newest first."""
    if not contact.phone:
        return Recipient.objects.none()
    campaigns = Campaign.objects.filter(workspace_id=contact.workspace_id)
    if number_id is not None:
        campaigns = campaigns.filter(numbers=number_id)
    rows = Recipient.objects.filter(campaign_id__in=campaigns.values("pk"), phone=contact.phone)
    if number_id is not None:
        rows = rows.filter(number_id=number_id)
    return rows.order_by(F("sent_at").desc(nulls_last=True), "-pk")


def conversation_campaign_sync(
    conversation: Conversation, *, contact: Contact | None = None
) -> int:
    """Add the campaign messages the contact received from this number to the timeline
    (one Message per Recipient row, pointing at it), take the contact's attributes from
    their CSV columns, and set the conversation's campaign to the latest one.

    Done here, when the inbox touches the conversation, rather than by the engine: its
    hot path never looks contacts up. Returns how many messages were added.
    """
    contact = contact or conversation.contact
    sent = list(
        contact_recipients(contact, number_id=conversation.number_id)
        .filter(sent_at__isnull=False)
        .select_related("campaign", "template")[:200]
    )
    if not sent:
        return 0
    known = set(
        Message.objects.filter(recipient_id__in=[r.pk for r in sent]).values_list(
            "recipient_id", flat=True
        )
    )
    new = [
        Message(
            workspace_id=conversation.workspace_id,
            conversation=conversation,
            direction=Direction.OUT,
            kind=MessageKind.TEMPLATE,
            text=preview_text(r.template, r.variables or {}),
            wamid="",
            status=MessageStatus.ACCEPTED,
            sent_by=SentBy.CAMPAIGN,
            created_at=r.sent_at,
            recipient=r,
            template=r.template,
            parameters=r.variables or {},
        )
        for r in sent
        if r.pk not in known
    ]
    if new:
        Message.objects.bulk_create(new, ignore_conflicts=True)
    latest = sent[0]
    changed = []
    if conversation.campaign_id != latest.campaign_id:
        conversation.campaign_id = latest.campaign_id
        changed.append("campaign")
    if conversation.last_message_at is None or latest.sent_at > conversation.last_message_at:
        conversation.last_message_at = latest.sent_at
        conversation.last_message_preview = _preview("template", new[0].text if new else "")
        changed += ["last_message_at", "last_message_preview"]
    if changed:
        conversation.save(update_fields=changed)
    attributes = _csv_attributes(sent)
    if attributes and {**contact.attributes, **attributes} != contact.attributes:
        contact.attributes = {**contact.attributes, **attributes}
        Contact.objects.filter(pk=contact.pk).update(attributes=contact.attributes)
    return len(new)


def _csv_attributes(recipients: list[Recipient]) -> dict[str, str]:
    """CSV column -> value from the recipients' variables (oldest first, so the latest
    campaign's value wins), by each campaign's variable mapping."""
    attributes: dict[str, str] = {}
    for recipient in reversed(recipients):
        mapping = (recipient.campaign.variable_mapping or {}).get(str(recipient.template_id), {})
        for key, value in (recipient.variables or {}).items():
            column = mapping.get(key) if isinstance(mapping, dict) else None
            attributes[str(column or key)] = str(value)
    return attributes


# --- statuses of replies --------------------------------------------------------------------


def reply_statuses_apply(updates: list) -> dict[int, str]:
    """Apply webhook statuses (webhooks.StatusUpdate rows, in order) to the inbox's own
    outgoing messages, forward only; returns {update id: outcome} for those it knew."""
    wamids = {u.wamid for u in updates if u.wamid}
    if not wamids:
        return {}
    messages = {
        m.wamid: m
        for m in Message.objects.select_for_update()
        .filter(wamid__in=wamids, direction=Direction.OUT)
        .order_by("pk")
    }
    taken: dict[int, str] = {}
    changed: dict[int, Message] = {}
    now = timezone.now()
    for update in updates:
        message = messages.get(update.wamid)
        if message is None:
            continue
        if _advance_message(message, update.status, update.errors):
            message.updated_at = now
            changed[message.pk] = message
            taken[update.pk] = "applied"
        else:
            taken[update.pk] = "unchanged"
    if changed:
        Message.objects.bulk_update(
            list(changed.values()), ["status", "error_code", "error_title", "updated_at"]
        )
        _windows_closed_by_meta([m for m in changed.values() if m.error_code == WINDOW_CLOSED])
    return taken


def _advance_message(message: Message, status: str, errors: Any) -> bool:
    if message.status == MessageStatus.FAILED:
        return False
    if status == "failed":
        first = errors[0] if isinstance(errors, list) and errors else {}
        message.status = MessageStatus.FAILED
        code = first.get("code") if isinstance(first, dict) else None
        message.error_code = code if isinstance(code, int) else None
        message.error_title = str((first or {}).get("title") or "")[:255]
        return True
    if status not in STATUS_RANK or STATUS_RANK[status] <= STATUS_RANK.get(message.status, 0):
        return False
    message.status = status
    return True


# --- replies ----------------------------------------------------------------------------------


def reply_send(
    *,
    conversation: Conversation,
    user=None,
    sent_by: str = SentBy.AGENT,
    text: str | None = None,
    template: Template | int | None = None,
    parameters: Mapping[str, Any] | None = None,
    upload: Upload | None = None,
    caption: str = "",
    idempotency_key: str | None = None,
    allow_opted_out: bool = False,
) -> Message:
    """Store a reply and queue it on the fast reply path; returns the Message (queued).

    Exactly one of ``text``, ``template`` (an APPROVED template of the number's WABA,
    with ``parameters``) or ``upload`` (an image, video or document; ``caption``).
    Free-form outside the 24 h window raises WindowClosed; a suppressed contact
    OptedOut (unless ``allow_opted_out``, for the opt-out confirmation). A second call
    with the same ``idempotency_key`` returns the first call's message and sends
    nothing. An upload goes to Meta's media endpoint first (a refusal is a ReplyError).
    """
    key = (idempotency_key or "").strip()[:128]
    if key:
        existing = Message.objects.filter(conversation=conversation, idempotency_key=key).first()
        if existing is not None:
            return existing
    given = [x for x in (text, template, upload) if x not in (None, "")]
    if len(given) != 1:
        raise ReplyError("Send exactly one of: text, a template, or a file.")
    contact = conversation.contact
    if not allow_opted_out and contact_opted_out(contact):
        raise OptedOut()
    if not contact.phone:
        raise ReplyError("The contact's phone number is not known yet: Meta sent only a user id.")
    fields: dict[str, Any]
    if template is not None:
        fields = _template_fields(conversation, template, parameters or {})
    else:
        if not conversation.window_open():
            raise WindowClosed(conversation.window_expires_at)
        if upload is not None:
            fields = _upload_fields(conversation, upload, caption)
        else:
            body = str(text).strip()
            if len(body) > 4096:
                raise ReplyError(f"The text is {len(body)} characters; WhatsApp's limit is 4096.")
            fields = {"kind": MessageKind.TEXT, "text": body}
    now = timezone.now()
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if key:
            existing = Message.objects.filter(conversation=locked, idempotency_key=key).first()
            if existing is not None:
                return existing
        message = Message.objects.create(
            workspace_id=locked.workspace_id,
            conversation=locked,
            direction=Direction.OUT,
            status=MessageStatus.QUEUED,
            sent_by=sent_by,
            user=user if user is not None and user.is_authenticated else None,
            created_at=now,
            updated_at=now,
            idempotency_key=key,
            **fields,
        )
        locked.last_message_at = now
        locked.last_message_preview = _preview(message.kind, message.text)
        update = ["last_message_at", "last_message_preview"]
        if sent_by == SentBy.AGENT:
            locked.unread = 0
            update.append("unread")
        if message.template_id and locked.status == ConversationStatus.RESOLVED:
            locked.status = ConversationStatus.OPEN
            update.append("status")
        locked.save(update_fields=update)
        after_commit(_queue_delivery, message.pk)
    return message


def _queue_delivery(message_id: int) -> None:
    from conversations.tasks import reply_deliver

    reply_deliver.apply_async(args=[message_id], queue="replies")


def _template_fields(
    conversation: Conversation, template: Template | int, parameters: Mapping[str, Any]
) -> dict[str, Any]:
    number = conversation.number
    if not isinstance(template, Template):
        template = Template.objects.filter(
            pk=template, workspace_id=conversation.workspace_id
        ).first()
        if template is None:
            raise ReplyError("No such template in this workspace.")
    if template.workspace_id != conversation.workspace_id or template.waba_id != number.waba_id:
        raise ReplyError("That template does not belong to this number's WhatsApp account.")
    if template.status != TemplateStatus.APPROVED:
        raise ReplyError(f"Template {template.name!r} is {template.status}, not APPROVED.")
    values = {str(k): str(v) for k, v in parameters.items()}
    try:
        render_components(template, values)
    except RenderError as exc:
        problems = "; ".join(f"{k}: {v}" for k, v in exc.problems.items())
        raise ReplyError(f"Template parameters: {problems}") from None
    return {
        "kind": MessageKind.TEMPLATE,
        "template": template,
        "parameters": values,
        "text": preview_text(template, values),
    }


def _upload_fields(conversation: Conversation, upload: Upload, caption: str) -> dict[str, Any]:
    mime = (upload.content_type or "application/octet-stream").split(";")[0].strip().lower()
    kind = next((k for prefix, k in _UPLOAD_KINDS if mime.startswith(prefix)), None)
    if kind == MessageKind.IMAGE and mime not in IMAGE_TYPES:
        raise ReplyError(f"Images must be JPEG or PNG for WhatsApp, not {mime}.")
    if kind == MessageKind.VIDEO and mime not in VIDEO_TYPES:
        raise ReplyError(f"Videos must be MP4 or 3GPP for WhatsApp, not {mime}.")
    kind = kind or MessageKind.DOCUMENT
    limit = MAX_UPLOAD_BYTES.get(kind, MAX_DOCUMENT_BYTES)
    if not upload.content:
        raise ReplyError("The file is empty.")
    if len(upload.content) > limit:
        raise ReplyError(
            f"The {kind} is {len(upload.content)} bytes; WhatsApp's limit is {limit} bytes."
        )
    number = conversation.number
    try:
        media_id = number.graph_client().upload_media(
            phone_number_id=number.phone_number_id,
            filename=upload.name or "file",
            content=upload.content,
            mime_type=mime,
        )
    except GraphError as exc:
        raise ReplyError(f"Meta refused the file: {exc.title or exc.message}") from None
    return {
        "kind": kind,
        "text": caption.strip()[:1024],
        "media": {"id": media_id, "mime_type": mime, "filename": upload.name, "caption": caption},
    }


def reply_deliver(message_id: int) -> str:
    """Send one queued reply through the number's limiter, ahead of any campaign backlog.

    The message turns ``unknown`` before the call (the attempt mark): an answer lost to
    a crash or a timeout leaves it unknown, and it is never resent on its own. A
    certain refusal of the pair rate or a throttle waits and tries again.
    """
    claimed = Message.objects.filter(pk=message_id, status=MessageStatus.QUEUED).update(
        status=MessageStatus.UNKNOWN, updated_at=timezone.now()
    )
    if not claimed:
        return "not queued"
    message = Message.objects.select_related(
        "conversation__number", "conversation__contact", "template"
    ).get(pk=message_id)
    conversation = message.conversation
    number, contact = conversation.number, conversation.contact
    limiter = _limiter()
    attempts = 0
    while True:
        wait = limiter.reserve_reply(
            number_id=number.pk,
            number_mps=number.max_mps,
            wa_id=contact.wa_id or contact.phone.lstrip("+"),
            pair_seconds=settings.REPLY_PAIR_SECONDS,
            pair_burst=settings.REPLY_PAIR_BURST,
        )
        if wait > 0:
            time.sleep(wait)
        try:
            result = _graph_send(number, contact, message)
        except GraphError as error:
            retry = not error.outcome_unknown and error.rule.consequence.value in (
                "retry",
                "retry_recipient",
            )
            if retry and attempts < settings.REPLY_MAX_RETRIES:
                attempts += 1
                time.sleep(
                    min(REPLY_RETRY_MAX_SECONDS, REPLY_RETRY_FIRST_SECONDS * 2 ** (attempts - 1))
                )
                continue
            return _record_failure(message, error)
        break
    now = timezone.now()
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, status=MessageStatus.UNKNOWN).update(
            status=MessageStatus.ACCEPTED, wamid=result.wamid, updated_at=now
        )
        # A status webhook may have beaten this answer and been parked: apply it now.
        from webhooks.models import PendingStatus

        if PendingStatus.objects.filter(wamid=result.wamid).exists():
            from webhooks.statuses import pending_statuses_apply

            after_commit(pending_statuses_apply)
    return "accepted"


# A throttle (130429, the number's per-second window; 131056, the pair) clears within a
# second: the first retries come quickly, so a reply that met the campaign's already
# reserved slots at Meta is not held a whole second (bench/inbox.py: p99 1,089 ms with a
# first retry after 1 s). 0.2, 0.4, 0.8, 1.6, 3.2 s: 6.2 s over REPLY_MAX_RETRIES=5.
REPLY_RETRY_FIRST_SECONDS = 0.2
REPLY_RETRY_MAX_SECONDS = 6.0


@functools.cache
def _limiter() -> RateLimiter:
    # One per worker process: it registers its Lua scripts with Redis once.
    return RateLimiter()


def _graph_send(number, contact, message: Message):
    client = number.graph_client()
    to = contact.wa_id or contact.phone.lstrip("+")
    if message.kind == MessageKind.TEXT:
        return client.send_text(phone_number_id=number.phone_number_id, to=to, body=message.text)
    if message.kind == MessageKind.TEMPLATE:
        template = message.template
        return client.send_template(
            phone_number_id=number.phone_number_id,
            to=to,
            name=template.name,
            language=template.language,
            components=render_components(template, message.parameters or {}),
        )
    media = message.media or {}
    return client.send_media(
        phone_number_id=number.phone_number_id,
        to=to,
        kind=message.kind,
        media_id=str(media.get("id") or ""),
        caption=message.text,
        filename=str(media.get("filename") or ""),
    )


def _record_failure(message: Message, error: GraphError) -> str:
    if error.outcome_unknown:
        # Meta may have it: it stays unknown and is never resent on its own.
        Message.objects.filter(pk=message.pk).update(
            error_title=(error.title or error.message)[:255], updated_at=timezone.now()
        )
        return "unknown"
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED,
        error_code=error.code,
        error_title=(error.title or error.message)[:255],
        updated_at=timezone.now(),
    )
    if error.code == WINDOW_CLOSED:
        _windows_closed_by_meta([message])
    return "failed"


def _windows_closed_by_meta(messages: list[Message]) -> None:
    """Meta refused a free-form message with 131047: its window is closed, whatever our
    clock or a lost inbound said. Believe it, so the inbox offers templates."""
    if messages:
        Conversation.objects.filter(
            pk__in={m.conversation_id for m in messages}, window_expires_at__gt=timezone.now()
        ).update(window_expires_at=timezone.now())


# --- read receipts and typing -----------------------------------------------------------------


def conversation_open(*, conversation: Conversation, user=None, typing: bool = False) -> bool:
    """A member opened the thread: unread goes to 0, and Meta is told the last inbound was
    read (once per inbound). Returns whether a read receipt was queued."""
    last = (
        Message.objects.filter(conversation=conversation, direction=Direction.IN)
        .exclude(wamid="")
        .order_by("-created_at", "-pk")
        .values_list("wamid", flat=True)
        .first()
    )
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        fields = []
        if locked.unread:
            locked.unread = 0
            fields.append("unread")
        queue = bool(last) and (last != locked.read_wamid or typing)
        if last and last != locked.read_wamid:
            locked.read_wamid = last
            fields.append("read_wamid")
        if fields:
            locked.save(update_fields=fields)
        if queue:
            after_commit(_queue_read, locked.pk, last, typing)
    conversation.unread = 0
    return queue


def _queue_read(conversation_id: int, wamid: str, typing: bool) -> None:
    from conversations.tasks import read_receipt_send

    read_receipt_send.apply_async(args=[conversation_id, wamid, typing], queue="replies")


def read_receipt_send(conversation_id: int, wamid: str, typing: bool = False) -> bool:
    conversation = Conversation.objects.select_related("number").get(pk=conversation_id)
    number = conversation.number
    try:
        number.graph_client().mark_read(
            phone_number_id=number.phone_number_id, message_id=wamid, typing=typing
        )
    except GraphError as error:
        logger.info("read receipt for conversation %s failed: %s", conversation_id, error)
        return False
    return True


def conversation_typing(*, conversation: Conversation) -> bool:
    """Show the contact a typing indicator (Meta ties it to the last inbound)."""
    return conversation_open(conversation=conversation, typing=True)


# --- assignment, notes, status ----------------------------------------------------------------


def conversation_assign(
    *, conversation: Conversation, user_id: int | None, by=None
) -> Conversation:
    """Assign to a member of the conversation's workspace, or to nobody."""
    if (
        user_id is not None
        and not Membership.objects.filter(
            workspace_id=conversation.workspace_id, user_id=user_id
        ).exists()
    ):
        raise ReplyError(f"User {user_id} is not a member of this workspace.")
    Conversation.objects.filter(pk=conversation.pk).update(assigned_to_id=user_id)
    conversation.assigned_to_id = user_id
    return conversation


def note_add(*, conversation: Conversation, text: str, user=None, by: str = "agent") -> Note:
    body = (text or "").strip()
    if not body:
        raise ReplyError("A note needs text.")
    if len(body) > 10_000:
        raise ReplyError(f"The note is {len(body)} characters; the limit is 10000.")
    return Note.objects.create(
        workspace_id=conversation.workspace_id,
        conversation=conversation,
        user=user if user is not None and user.is_authenticated else None,
        by=by,
        text=body,
    )


def conversation_resolve(*, conversation: Conversation) -> Conversation:
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(
        status=ConversationStatus.RESOLVED, resolved_at=now, unread=0
    )
    conversation.status, conversation.resolved_at, conversation.unread = (
        ConversationStatus.RESOLVED,
        now,
        0,
    )
    return conversation


def conversation_reopen(*, conversation: Conversation) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(
        status=ConversationStatus.OPEN, resolved_at=None
    )
    conversation.status, conversation.resolved_at = ConversationStatus.OPEN, None
    return conversation


def conversation_handover(*, conversation: Conversation, reason: str, by: str = "bot") -> None:
    """A bot hands the conversation to people: unassigned, pending, the reason noted."""
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(
            assigned_to=None, status=ConversationStatus.PENDING, resolved_at=None
        )
        conversation.assigned_to_id, conversation.status = None, ConversationStatus.PENDING
        note_add(conversation=conversation, text=reason or "Handed over", by=by)
        signals.handed_over.send(sender=Conversation, conversation=conversation, reason=reason)


def message_automation_record(*, message: Message, decision: Mapping[str, Any]) -> None:
    """Store what the auto-reply pipeline decided about an inbound (a polling client
    redraws it)."""
    Message.objects.filter(pk=message.pk).update(
        automation=dict(decision), updated_at=timezone.now()
    )
    message.automation = dict(decision)


__all__ = [
    "OptedOut",
    "ReplyError",
    "Upload",
    "WindowClosed",
    "contact_ensure",
    "conversation_assign",
    "conversation_handover",
    "conversation_open",
    "conversation_reopen",
    "conversation_resolve",
    "conversation_typing",
    "inbound_thread",
    "message_automation_record",
    "note_add",
    "reply_deliver",
    "reply_send",
    "reply_statuses_apply",
]
