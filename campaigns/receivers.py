"""What campaigns do when the layers below them report a change (connected in apps.py)."""

from __future__ import annotations

from django.dispatch import receiver

from campaigns.services import campaigns_pause_for_template
from campaigns.services.lifecycle import campaigns_pause_marketing_for_number
from numbers.signals import number_changed
from templates_sync.models import TemplateCategory, TemplateStatus
from templates_sync.signals import template_category_changed, template_status_changed

# A running campaign cannot send these: each further send would fail at Meta.
PAUSING_TEMPLATE_STATUSES = frozenset(
    {TemplateStatus.PAUSED, TemplateStatus.DISABLED, TemplateStatus.REJECTED}
)


@receiver(template_status_changed, dispatch_uid="campaigns.pause_on_unusable_template")
def pause_campaigns_of_unusable_template(sender, *, template, new, reason, **kwargs) -> None:
    """A template paused, disabled or rejected at Meta pauses the running campaigns sending it,
    whether a sync or a webhook learnt it."""
    if new not in PAUSING_TEMPLATE_STATUSES:
        return
    why = f"template {template.name} ({template.language}) became {new} at Meta"
    if reason:
        why += f": {reason}"
    campaigns_pause_for_template(template=template, reason=why)


@receiver(number_changed, dispatch_uid="campaigns.pause_marketing_on_low_quality")
def pause_marketing_on_low_quality(sender, *, number, changes, **kwargs) -> None:
    """A number whose quality turned RED, or that Meta flagged, pauses its running
    marketing campaigns (more marketing now would lower its tier or get it restricted),
    whether the refresh or a webhook learnt it."""
    quality = changes.get("quality_rating")
    status = changes.get("status")
    if quality is not None and quality[1] == "RED":
        why = f"quality rating of number {number} dropped to RED at Meta"
    elif status is not None and status[1] == "flagged":
        why = f"Meta flagged number {number} for low quality"
    else:
        return
    campaigns_pause_marketing_for_number(
        number_id=number.pk, reason=f"{why}: its marketing campaigns are paused"
    )


@receiver(template_category_changed, dispatch_uid="campaigns.pause_on_category_to_marketing")
def pause_on_category_to_marketing(sender, *, template, old, new, **kwargs) -> None:
    """A template Meta re-categorised as MARKETING mid-campaign pauses the campaigns
    sending it: it is priced, capped and rated as marketing now, a person decides."""
    if new != TemplateCategory.MARKETING or old == TemplateCategory.MARKETING:
        return
    campaigns_pause_for_template(
        template=template,
        reason=f"Meta changed template {template.name} ({template.language}) from {old} to "
        f"{new}: it is now priced, capped and rated as marketing; resume if that is intended",
    )
