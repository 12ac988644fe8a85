"""What each product event becomes as a notification (connected in apps.py).

Every receiver runs inside the transaction of the change it reports and writes
through ``notification_emit``. A failure here is logged and rolled back to its
own savepoint: a notification must never undo the pause or import it reports.
"""

from __future__ import annotations

import functools
import logging

from django.db import transaction

from notifications.models import Event, Severity
from notifications.services import notification_emit, object_ref

logger = logging.getLogger(__name__)


def _guarded(fn):
    @functools.wraps(fn)
    def receiver(*args, **kwargs):
        try:
            with transaction.atomic():
                fn(*args, **kwargs)
        except Exception:
            logger.exception("notification for %s not written", fn.__name__)

    return receiver


def _campaign_ref(campaign) -> dict:
    return object_ref(campaign, kind="campaign", name=campaign.name)


def _campaign_data(campaign) -> dict:
    return {"campaign": {"id": campaign.pk, "name": campaign.name, "status": campaign.status}}


@_guarded
def on_campaign_paused(sender, *, campaign, reason, by="product", **kwargs) -> None:
    notification_emit(
        workspace_id=campaign.workspace_id,
        event=Event.CAMPAIGN_PAUSED,
        severity=Severity.WARNING,
        title=f"Campaign “{campaign.name}” was paused",
        body=f"Paused by the {by}: {reason}" if reason else f"Paused by the {by}.",
        objects=[_campaign_ref(campaign)],
        data={**_campaign_data(campaign), "reason": reason, "by": by},
    )


def campaign_funnel(campaign) -> dict[str, int]:
    """Contacts that reached each step: sent (or later), delivered (or later), read, ..."""
    from campaigns.selectors import campaign_counts

    counts = campaign_counts([campaign.pk])[campaign.pk]
    return {
        "total": counts["total"],
        "sent": counts.get("sent", 0) + counts.get("delivered", 0) + counts.get("read", 0),
        "delivered": counts.get("delivered", 0) + counts.get("read", 0),
        "read": counts.get("read", 0),
        "replied": counts.get("replied", 0),
        "failed": counts.get("failed", 0),
        "unknown": counts.get("unknown", 0),
        "cancelled": counts.get("cancelled", 0),
    }


@_guarded
def on_campaign_completed(sender, *, campaign, **kwargs) -> None:
    funnel = campaign_funnel(campaign)
    body = (
        f"{funnel['total']} contacts: {funnel['sent']} sent, {funnel['delivered']} delivered, "
        f"{funnel['read']} read, {funnel['replied']} replied, {funnel['failed']} failed"
    )
    if funnel["unknown"]:
        body += f", {funnel['unknown']} with an unknown outcome"
    notification_emit(
        workspace_id=campaign.workspace_id,
        event=Event.CAMPAIGN_COMPLETED,
        title=f"Campaign “{campaign.name}” completed",
        body=body + ".",
        objects=[_campaign_ref(campaign)],
        data={**_campaign_data(campaign), "funnel": funnel},
        dedup_key=f"campaign:{campaign.pk}",
    )


@_guarded
def on_campaign_preflight_failed(sender, *, campaign, problems, **kwargs) -> None:
    problems = [str(problem) for problem in problems]
    notification_emit(
        workspace_id=campaign.workspace_id,
        event=Event.CAMPAIGN_PREFLIGHT_FAILED,
        severity=Severity.CRITICAL,
        title=f"Scheduled campaign “{campaign.name}” was not started: its pre-flight failed",
        body="\n".join(f"- {problem}" for problem in problems),
        objects=[_campaign_ref(campaign)],
        data={**_campaign_data(campaign), "problems": problems},
        dedup_key=f"campaign:{campaign.pk}",
    )


@_guarded
def on_campaign_expired(sender, *, campaign, **kwargs) -> None:
    notification_emit(
        workspace_id=campaign.workspace_id,
        event=Event.CAMPAIGN_EXPIRED,
        severity=Severity.WARNING,
        title=f"Scheduled campaign “{campaign.name}” expired without starting",
        body=(
            f"It was scheduled for {campaign.scheduled_at:%Y-%m-%d %H:%M} UTC and had not "
            "started since; it was failed rather than sent late. Schedule it again if it "
            "should still go out."
            if campaign.scheduled_at
            else ""
        ),
        objects=[_campaign_ref(campaign)],
        data=_campaign_data(campaign),
        dedup_key=f"campaign:{campaign.pk}",
    )


@_guarded
def on_import_finished(sender, *, campaign, result, **kwargs) -> None:
    job = result
    counts = {
        "data_rows": job.data_rows,
        "accepted": job.accepted,
        "rejected": job.rejected,
        "duplicates": job.duplicates,
        "suppressed": job.suppressed,
    }
    if job.status == "failed":
        title = f"Import into “{campaign.name}” failed"
        body = job.error or "the import failed"
        severity = Severity.WARNING
    else:
        title = f"Import into “{campaign.name}” finished: {job.accepted} contacts accepted"
        body = (
            f"{job.data_rows} rows: {job.accepted} accepted, {job.rejected} rejected, "
            f"{job.duplicates} duplicates, {job.suppressed} suppressed."
        )
        severity = Severity.WARNING if job.rejected else Severity.INFO
    notification_emit(
        workspace_id=campaign.workspace_id,
        event=Event.IMPORT_FINISHED,
        severity=severity,
        title=title,
        body=body,
        objects=[_campaign_ref(campaign)],
        data={
            **_campaign_data(campaign),
            "import": {"id": job.pk, "status": job.status, "filename": job.filename, **counts},
        },
        dedup_key=f"import:{job.pk}",
    )


# Statuses a person must hear about (issue 14); PENDING, IN_APPEAL and the like are not news.
_TEMPLATE_STATUS_SEVERITY = {
    "APPROVED": Severity.INFO,
    "PAUSED": Severity.WARNING,
    "DISABLED": Severity.CRITICAL,
    "REJECTED": Severity.CRITICAL,
}


def _template_ref(template) -> dict:
    return object_ref(template, kind="template", name=f"{template.name} ({template.language})")


@_guarded
def on_template_status_changed(sender, *, template, old, new, reason="", source="", **kwargs):
    severity = _TEMPLATE_STATUS_SEVERITY.get(str(new).upper())
    if severity is None:
        return
    body = f"{old or 'new'} → {new}" + (f". Meta's reason: {reason}" if reason else "")
    notification_emit(
        workspace_id=template.workspace_id,
        event=Event.TEMPLATE_STATUS_CHANGED,
        severity=severity,
        title=f"Template {template.name} ({template.language}) is now {new}",
        body=body,
        objects=[_template_ref(template)],
        data={
            "template": {"id": template.pk, "name": template.name, "language": template.language},
            "old": old,
            "new": new,
            "reason": reason,
            "source": source,
        },
    )


@_guarded
def on_template_category_changed(sender, *, template, old, new, **kwargs) -> None:
    notification_emit(
        workspace_id=template.workspace_id,
        event=Event.TEMPLATE_CATEGORY_CHANGED,
        # Meta moving a template to MARKETING changes its price and its limits.
        severity=Severity.WARNING if str(new).upper() == "MARKETING" else Severity.INFO,
        title=f"Template {template.name} ({template.language}) is now in category {new}",
        body=f"Meta changed its category from {old} to {new}.",
        objects=[_template_ref(template)],
        data={
            "template": {"id": template.pk, "name": template.name, "language": template.language},
            "old": old,
            "new": new,
        },
    )


_QUALITY_SEVERITY = {"RED": Severity.CRITICAL, "YELLOW": Severity.WARNING}
_STATUS_SEVERITY = {"blocked": Severity.CRITICAL, "disconnected": Severity.CRITICAL}


def _number_ref(number) -> dict:
    return object_ref(number, kind="number", name=str(number))


def _number_data(number) -> dict:
    return {
        "number": {
            "id": number.pk,
            "phone_number_id": number.phone_number_id,
            "display_phone_number": number.display_phone_number,
            "label": number.label,
        }
    }


@_guarded
def on_number_changed(sender, *, number, changes, **kwargs) -> None:
    for field, (old, new) in changes.items():
        if field == "quality_rating" and old:
            # "" -> X is the first report after adding the number, not a change.
            event, severity = (
                Event.NUMBER_QUALITY_CHANGED,
                _QUALITY_SEVERITY.get(new, Severity.INFO),
            )
            title = f"Number {number} quality rating: {old} → {new or 'unknown'}"
        elif field == "messaging_limit_tier" and old:
            event, severity = Event.NUMBER_TIER_CHANGED, Severity.INFO
            title = f"Number {number} messaging-limit tier: {old} → {new or 'unknown'}"
        elif field == "status" and new != "token_expired":
            # A token that stopped working is number.token_invalid (its own receiver).
            event, severity = Event.NUMBER_STATUS_CHANGED, _STATUS_SEVERITY.get(new, Severity.INFO)
            title = f"Number {number} is now {new}"
        else:
            continue
        body = number.last_error if field == "status" and number.last_error else ""
        notification_emit(
            workspace_id=number.workspace_id,
            event=event,
            severity=severity,
            title=title,
            body=body,
            objects=[_number_ref(number)],
            data={**_number_data(number), "field": field, "old": old, "new": new},
            dedup_key=f"number:{number.pk}",
        )


@_guarded
def on_number_token_invalid(sender, *, number, error="", **kwargs) -> None:
    notification_emit(
        workspace_id=number.workspace_id,
        event=Event.NUMBER_TOKEN_INVALID,
        severity=Severity.CRITICAL,
        title=f"Number {number}: its access token expired or was revoked",
        body=(error or "")
        + ("\n" if error else "")
        + "Enter a new token on the number's page; its campaigns are paused until then.",
        objects=[_number_ref(number)],
        data={**_number_data(number), "error": error or ""},
        dedup_key=f"number:{number.pk}",
    )


@_guarded
def on_handed_over(sender, *, conversation, reason="", **kwargs) -> None:
    contact = getattr(conversation, "contact", None)
    who = (getattr(contact, "name", "") or getattr(contact, "phone", "")) if contact else ""
    notification_emit(
        workspace_id=conversation.workspace_id,
        event=Event.CONVERSATION_HANDED_OVER,
        severity=Severity.WARNING,
        title=f"Conversation with {who or 'a contact'} needs a person",
        body=reason or "",
        objects=[object_ref(conversation, kind="conversation", name=who or str(conversation))],
        data={"conversation": {"id": conversation.pk}, "reason": reason or ""},
    )


def connect() -> None:
    """Connect every receiver (apps.ready); conversations' signal once that app defines it."""
    from campaigns import signals as campaigns_signals
    from numbers import signals as numbers_signals
    from templates_sync import signals as templates_signals

    pairs = [
        (campaigns_signals.campaign_paused, on_campaign_paused),
        (campaigns_signals.campaign_completed, on_campaign_completed),
        (campaigns_signals.campaign_preflight_failed, on_campaign_preflight_failed),
        (campaigns_signals.campaign_expired, on_campaign_expired),
        (campaigns_signals.import_finished, on_import_finished),
        (templates_signals.template_status_changed, on_template_status_changed),
        (templates_signals.template_category_changed, on_template_category_changed),
        (numbers_signals.number_changed, on_number_changed),
        (numbers_signals.number_token_invalid, on_number_token_invalid),
    ]
    try:
        from conversations import signals as conversations_signals
    except ImportError:
        conversations_signals = None
    handed_over = getattr(conversations_signals, "handed_over", None)
    if handed_over is not None:
        pairs.append((handed_over, on_handed_over))
    for signal, receiver in pairs:
        signal.connect(receiver, dispatch_uid=f"notifications.{receiver.__name__}")
