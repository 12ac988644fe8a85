"""What a send's outcome does beyond its own row: to the campaign, the number, the contact.

The engine (``messaging.lanes``) reads the consequence off Graph's one error
table and calls these; so do the status webhooks. Neither writes campaign
rules of its own.
"""

from __future__ import annotations

import logging

from django.db import transaction

from campaigns.models import Campaign, CampaignStatus, RecipientStatus, SuppressionSource
from campaigns.services.lifecycle import (
    campaign_lanes_kick_after_commit,
    campaign_pause_if_running,
    campaigns_pause_for_account,
    campaigns_pause_for_number,
)
from campaigns.services.suppressions import suppression_ensure
from config.commit import after_commit
from messaging.graph import GraphError, error_explanation
from numbers.models import Number
from numbers.services import number_block, number_record_graph_error
from templates_sync.models import Template

logger = logging.getLogger(__name__)


def number_stop_for_error(*, number_id: int, error: GraphError) -> list[int]:
    """The number cannot send (token expired, blocked, disconnected): it is marked so and
    its running campaigns are paused. Returns the paused campaigns' ids."""
    number = Number.objects.get(pk=number_id)
    number_record_graph_error(number=number, error=error)
    return campaigns_pause_for_number(
        number_id=number_id,
        reason=f"number stopped: {number.status} ({error.code}): {error.message}",
    )


def number_pause_for_error(*, number_id: int, error: GraphError) -> list[int]:
    """Meta limits the number (spam rate): the number is held (a person lifts it, after
    SPAM_RATE_COOLDOWN_SECONDS) and every running campaign on it pauses."""
    reason = f"Meta spam-rate limited the number ({error.code}): {error.message}"
    number_block(number_id=number_id, code=error.code or 131048, reason=reason)
    return campaigns_pause_for_number(number_id=number_id, reason=reason)


def account_pause_for_error(*, number_id: int, error: GraphError) -> list[int]:
    """The business account cannot send (payment, restriction): every running campaign
    on any number of the number's WABA pauses. Returns the paused campaigns' ids."""
    number = Number.objects.get(pk=number_id)
    number_record_graph_error(number=number, error=error)
    return campaigns_pause_for_account(
        waba_id=number.waba_id,
        reason=f"Meta refused the WhatsApp Business Account {number.waba_id} ({error.code}): "
        f"{error_explanation(error.code, error.message)}",
    )


def campaign_pause_for_template_error(
    *, campaign_id: int, template_name: str, error: GraphError
) -> bool:
    """The campaign's template is gone or blocked at Meta: the campaign pauses."""
    return campaign_pause_if_running(
        campaign_id=campaign_id,
        reason=f"template {template_name!r} refused by Meta ({error.code}): {error.message}",
    )


def campaign_pause_for_template_change(
    *, campaign_id: int, template_id: int, error: GraphError
) -> bool:
    """The template changed at Meta under the campaign (132000): the campaign pauses for
    a person to look, and the workspace's templates are synced again after commit."""
    template = Template.objects.get(pk=template_id)
    paused = campaign_pause_if_running(
        campaign_id=campaign_id,
        reason=f"template {template.name!r} changed at Meta ({error.code}): {error.message}; "
        "the templates are being synced again, check the campaign before resuming",
    )
    if paused:
        after_commit(_sync_templates, workspace_id=template.workspace_id)
    return paused


def _sync_templates(*, workspace_id: int) -> None:
    from templates_sync.tasks import sync_workspace_templates

    try:
        sync_workspace_templates.apply_async((workspace_id,), retry=False)
    except Exception:
        # The periodic sync catches up; the pause is what protects the audience.
        logger.warning("could not queue a template sync of workspace %s", workspace_id)


def recipient_suppress_for_error(*, campaign_id: int, phone: str, code: int, message: str) -> bool:
    """The user stopped marketing messages (131050): the phone is suppressed in the
    campaign's workspace, cancelling its unsent messages everywhere. True when new."""
    workspace_id = Campaign.objects.values_list("workspace_id", flat=True).get(pk=campaign_id)
    return suppression_ensure(
        workspace_id=workspace_id,
        phone=phone,
        reason=f"Meta error {code}: {message}"[:200],
        source=SuppressionSource.META_131050,
    )


class ResendError(ValueError):
    """The unknowns of this campaign cannot be resent now, with the reason."""


def recipients_resend_unknown(*, campaign: Campaign, user) -> int:
    """Puts the campaign's ``unknown`` recipients back in line; returns how many.

    An explicit operator decision: some of them may have reached the contact
    already, so this may duplicate those. Only for a running or paused campaign.
    """
    if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
        raise ResendError(f"cannot resend the unknowns of a {campaign.status} campaign")
    with transaction.atomic():
        count = campaign.recipients.filter(status=RecipientStatus.UNKNOWN).update(
            status=RecipientStatus.PENDING,
            claim_token="",
            next_attempt_at=None,
            error_title="",
            error_details="resent by an operator",
        )
        if campaign.status == CampaignStatus.RUNNING:
            campaign_lanes_kick_after_commit(campaign)
    logger.info("campaign %s: %s unknown messages resent by %s", campaign.pk, count, user)
    return count
