"""Account-level webhook changes: template statuses, number and account updates, opt-outs."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Q

from campaigns.models import SuppressionSource
from campaigns.services import suppression_ensure, suppression_lift
from campaigns.services.lifecycle import campaigns_pause_for_account
from numbers.models import Number, NumberStatus
from templates_sync.models import StatusSource, Template
from templates_sync.services import template_status_record
from templates_sync.signals import template_category_changed
from webhooks.parse import as_dict, as_text
from webhooks.report import Report

logger = logging.getLogger(__name__)


def suppress(*, workspace_id: int, phone: str, reason: str, report: Report) -> None:
    """Suppress ``phone`` in the workspace (source: user_preferences); counts added or
    existing."""
    added = suppression_ensure(
        workspace_id=workspace_id,
        phone=phone,
        reason=reason,
        source=SuppressionSource.USER_PREFERENCES,
    )
    report.counts["suppressions_added" if added else "suppressions_existing"] += 1


def apply_preference(pnid: str, item: dict, report: Report) -> None:
    """user_preferences: a user's "stop" for marketing messages suppresses them in every
    workspace owning the number; their "resume" lifts it (recorded as an opt-in)."""
    wa_id = as_text(item.get("wa_id"), 32)
    if not wa_id or item.get("category") != "marketing_messages":
        report.counts["preferences_ignored"] += 1
        return
    value = item.get("value")
    if value not in ("stop", "resume"):
        report.counts[f"preference:{str(value)[:20]}"] += 1
        return
    workspace_ids = set(
        Number.objects.filter(phone_number_id=pnid).values_list("workspace_id", flat=True)
    )
    if value == "resume":
        detail = str(item.get("detail") or "user resumed marketing messages")
        for workspace_id in workspace_ids:
            lifted = suppression_lift(
                workspace_id=workspace_id,
                phone=f"+{wa_id}",
                source=SuppressionSource.USER_PREFERENCES,
                reason=detail,
            )
            report.counts["suppressions_lifted" if lifted else "preference:resume"] += 1
        return
    detail = str(item.get("detail") or "user stopped marketing messages")
    for workspace_id in workspace_ids:
        suppress(workspace_id=workspace_id, phone=f"+{wa_id}", reason=detail, report=report)


def apply_template_status(waba_id: str, at: datetime, value: dict, report: Report) -> None:
    """message_template_status_update: the template's new status and its history; a
    template that became unusable pauses the running campaigns that send it."""
    status = as_text(value.get("event"), 32)
    meta_id = as_text(value.get("message_template_id"), 32)
    name = as_text(value.get("message_template_name"), 512)
    language = as_text(value.get("message_template_language"), 16)
    if not status or not waba_id or not (meta_id or (name and language)):
        report.problem("template status update without event, WABA or template")
        return
    match = Q(meta_id=meta_id) if meta_id else Q(pk__in=[])
    if name and language:
        match |= Q(name=name, language=language)
    reason = str(value.get("reason") or "")
    if reason.upper() == "NONE":
        reason = ""
    templates = Template.objects.select_for_update().filter(match, waba_id=waba_id).order_by("pk")
    found = False
    for template in templates:
        found = True
        if template.status_changed_at and at < template.status_changed_at:
            # Older than what we know (a replay, or Meta's retries overtaken by a sync).
            report.counts["template_stale"] += 1
            continue
        if not template_status_record(
            template=template, status=status, source=StatusSource.WEBHOOK, reason=reason, at=at
        ):
            report.counts["template_unchanged"] += 1
            continue
        template.save(update_fields=["status", "status_changed_at"])
        # Campaigns sending it pause by the one rule every status change follows
        # (campaigns.receivers), whether a sync or this webhook learnt of it.
        report.counts["template_updated"] += 1
    if not found:
        report.counts["template_unknown"] += 1


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def apply_number_change(kind: str, waba_id: str, at: datetime, value: dict, report: Report) -> None:
    """phone_number_quality_update (one number, by display number) and account_update
    (every number of the WABA): store what the event says, then refresh from Meta."""
    numbers = list(Number.objects.select_for_update().filter(waba_id=waba_id).order_by("pk"))
    event = str(value.get("event") or "")
    if kind == "phone_number_quality_update":
        display = _digits(str(value.get("display_phone_number") or ""))
        numbers = [n for n in numbers if display and _digits(n.display_phone_number) == display]
    if not numbers:
        report.counts[f"{kind}_unknown_number"] += 1
        return
    for number in numbers:
        if kind == "phone_number_quality_update":
            fields = _quality_fields(number, event, value)
        elif kind == "business_capability_update":
            fields = _capability_fields(number, value)
        else:
            fields = _account_fields(number, event, value, at)
        if fields:
            number.save(update_fields=sorted(fields))
            report.counts[f"{kind}_applied"] += 1
        report.after_commit.append(_refresh_later(number.pk))
    restriction = _account_restriction(kind, event, value)
    if restriction:
        paused = campaigns_pause_for_account(
            waba_id=waba_id, reason=f"{restriction}: every campaign of the account is paused"
        )
        report.counts["campaigns_paused"] += len(paused)


def _account_restriction(kind: str, event: str, value: dict) -> str:
    """Why the event stops the whole account from sending ('' when it does not)."""
    if kind == "account_update":
        state = str(as_dict(value.get("ban_info")).get("waba_ban_state") or "")
        if event == "DISABLED_UPDATE" and state == "DISABLE":
            return "Meta disabled the WhatsApp Business Account"
        if event == "ACCOUNT_DELETED":
            return "Meta deleted the WhatsApp Business Account"
        if event == "ACCOUNT_RESTRICTION":
            kinds = [
                str(as_dict(item).get("restriction_type") or "")
                for item in (value.get("restriction_info") or [])
                if isinstance(item, dict)
            ]
            detail = f" ({', '.join(k for k in kinds if k)})" if any(kinds) else ""
            return f"Meta restricted the WhatsApp Business Account{detail}"
    if kind == "business_capability_update" and _capability_zero(value):
        return "Meta set the business's messaging capability to zero"
    return ""


_CAPABILITY_LIMITS = ("max_daily_conversations_per_business", "max_daily_conversation_per_phone")


def _capability_zero(value: dict) -> bool:
    return any(str(value.get(name)) == "0" for name in _CAPABILITY_LIMITS if name in value)


def _capability_fields(number: Number, value: dict) -> set[str]:
    """business_capability_update: the portfolio's messaging limit, when it names a tier."""
    limit = as_text(value.get("max_daily_conversations_per_business"), 32)
    if (
        limit
        and limit.startswith("TIER_")
        and limit not in _NOT_A_TIER
        and limit != number.business_messaging_limit
    ):
        number.business_messaging_limit = limit
        return {"business_messaging_limit"}
    return set()


def apply_template_change(
    kind: str, waba_id: str, at: datetime, value: dict, report: Report
) -> None:
    """message_template_quality_update (the template's quality score) and
    template_category_update (its category: a change to MARKETING pauses the campaigns
    sending it, campaigns.receivers), recorded on the template."""
    meta_id = as_text(value.get("message_template_id"), 32)
    name = as_text(value.get("message_template_name"), 512)
    language = as_text(value.get("message_template_language"), 16)
    if not waba_id or not (meta_id or (name and language)):
        report.problem(f"{kind} without WABA or template")
        return
    match = Q(meta_id=meta_id) if meta_id else Q(pk__in=[])
    if name and language:
        match |= Q(name=name, language=language)
    templates = list(
        Template.objects.select_for_update().filter(match, waba_id=waba_id).order_by("pk")
    )
    if not templates:
        report.counts["template_unknown"] += 1
        return
    for template in templates:
        if kind == "message_template_quality_update":
            changed = _template_quality(template, value, at)
        else:
            changed = _template_category(template, value, at)
        report.counts[f"{kind}_applied" if changed else f"{kind}_unchanged"] += 1


def _template_quality(template: Template, value: dict, at: datetime) -> bool:
    score = as_text(value.get("new_quality_score"), 16)
    if not score or score == template.quality_score:
        return False
    if template.quality_changed_at and at < template.quality_changed_at:
        return False
    template.quality_score = score
    template.quality_changed_at = at
    template.save(update_fields=["quality_score", "quality_changed_at"])
    return True


def _template_category(template: Template, value: dict, at: datetime) -> bool:
    new = as_text(value.get("new_category"), 32) or as_text(value.get("correct_category"), 32)
    if not new or new == template.category:
        return False
    if template.category_changed_at and at < template.category_changed_at:
        return False
    old = template.category
    template.previous_category = old
    template.category = new
    template.category_changed_at = at
    template.save(update_fields=["previous_category", "category", "category_changed_at"])
    template_category_changed.send(sender=Template, template=template, old=old, new=new)
    return True


def _refresh_later(number_id: int):
    def enqueue() -> None:
        from numbers.tasks import refresh_number

        try:
            refresh_number.apply_async((number_id,), retry=False)
        except Exception:
            # The hourly refresh catches up; the event itself is applied.
            logger.warning("could not queue a refresh of number %s", number_id, exc_info=True)

    return enqueue


# Limit values of phone_number_quality_update that are not a messaging-limit tier:
# TIER_NOT_SET is "no limit known yet" (never a limit of 0).
_NOT_A_TIER = frozenset({"TIER_NOT_SET", ""})


def _quality_fields(number: Number, event: str, value: dict) -> set[str]:
    """What a phone_number_quality_update changes on the number. The limit is the
    business portfolio's (Meta, since October 2025): it is stored as such and as the
    number's old tier field; TIER_UNLIMITED with THROUGHPUT_UPGRADE is the throughput
    upgrade, not a tier."""
    fields: set[str] = set()
    tier = as_text(value.get("max_daily_conversations_per_business"), 32) or as_text(
        value.get("current_limit"), 32
    )
    if tier == "TIER_UNLIMITED" and event == "THROUGHPUT_UPGRADE":
        tier = ""
    if tier and tier not in _NOT_A_TIER:
        if tier != number.messaging_limit_tier:
            number.messaging_limit_tier = tier
            fields.add("messaging_limit_tier")
        if tier != number.business_messaging_limit:
            number.business_messaging_limit = tier
            fields.add("business_messaging_limit")
    if event == "FLAGGED" and number.quality_rating != "RED":
        # Meta flags a number when its quality rating drops to low; campaigns react to
        # the rating (campaigns.receivers: its marketing campaigns pause).
        number.quality_rating = "RED"
        fields.add("quality_rating")
    if event == "THROUGHPUT_UPGRADE" and number.throughput_level != "HIGH":
        number.throughput_level = "HIGH"
        number.apply_max_mps()
        fields |= {"throughput_level", "max_mps"}
    return fields


def _account_fields(number: Number, event: str, value: dict, at: datetime) -> set[str]:
    ban = as_dict(value.get("ban_info"))
    state = str(ban.get("waba_ban_state") or "")
    when = f" ({ban['waba_ban_date']})" if ban.get("waba_ban_date") else ""
    if event == "DISABLED_UPDATE" and state == "DISABLE":
        number.status = NumberStatus.BLOCKED
        number.last_error = f"Meta disabled the WhatsApp Business Account{when}"
    elif event == "DISABLED_UPDATE" and state == "SCHEDULE_FOR_DISABLE":
        number.last_error = f"Meta scheduled the WhatsApp Business Account to be disabled{when}"
    elif event == "ACCOUNT_DELETED":
        number.status = NumberStatus.DISCONNECTED
        number.last_error = "Meta deleted the WhatsApp Business Account"
    elif event == "ACCOUNT_VIOLATION":
        kind = as_dict(value.get("violation_info")).get("violation_type") or "unspecified"
        number.last_error = f"Meta reported a policy violation: {kind}"
    elif event == "ACCOUNT_RESTRICTION":
        number.last_error = "Meta restricted the WhatsApp Business Account"
    else:
        # REINSTATE and the rest: the refresh that follows reads the real state.
        return set()
    number.last_error = f"{number.last_error} [{at.isoformat()}]"
    return {"status", "last_error"}
