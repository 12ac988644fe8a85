"""What campaigns do when the layers below them report a change (connected in apps.py)."""

from __future__ import annotations

from django.dispatch import receiver

from campaigns.services import campaigns_pause_for_template
from templates_sync.models import TemplateStatus
from templates_sync.signals import template_status_changed

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
