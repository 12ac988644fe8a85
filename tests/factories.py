"""Test data builders: workspaces, numbers, templates, campaigns and recipients, written
straight to the database in the shape the product leaves them.

Every builder is keyword-only and returns the saved row(s); anything a builder does not
name is passed on to the model as a field (``make_number(workspace=ws, status="banned")``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from django.utils import timezone

from accounts.models import Workspace
from campaigns.models import Campaign, CampaignStatus, CampaignTemplate, Recipient, RecipientStatus
from numbers.models import MPS_STANDARD, Number
from templates_sync.models import Template
from templates_sync.rendering import parse_parameters

WABA_ID = "100000000000001"
PHONE_NUMBER_ID = "200000000000001"
# Statuses in which Meta has accepted the message: the row has a wamid and a sent_at.
ACCEPTED_STATES = (RecipientStatus.SENT, RecipientStatus.DELIVERED, RecipientStatus.READ)


class _Derived(enum.Enum):
    """A default worked out from the row's other values (see each builder)."""

    DERIVED = "derived"


DERIVED = _Derived.DERIVED


def make_workspace(*, name: str = "Acme", slug: str = "acme") -> Workspace:
    return Workspace.objects.create(name=name, slug=slug)


def make_number(
    *,
    workspace: Workspace,
    label: str = "main",
    phone_number_id: str = PHONE_NUMBER_ID,
    waba_id: str = WABA_ID,
    access_token: str | None = None,
    display_phone_number: str = "+91 98765 00001",
    messaging_limit_tier: str = "TIER_10K",
    max_mps: int = MPS_STANDARD,
    **fields: Any,
) -> Number:
    """A connected number; its access token is ``token-<phone_number_id>`` unless given."""
    return Number.objects.create(
        workspace=workspace,
        label=label,
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        access_token=access_token if access_token is not None else f"token-{phone_number_id}",
        display_phone_number=display_phone_number,
        messaging_limit_tier=messaging_limit_tier,
        max_mps=max_mps,
        **fields,
    )


def make_template(
    *,
    workspace: Workspace,
    name: str = "order_update",
    body: str = "Hi {{1}}, your order {{2}} shipped",
    components: list[dict[str, Any]] | None = None,
    parameter_format: str = "POSITIONAL",
    language: str = "en_US",
    category: str = "UTILITY",
    status: str = "APPROVED",
    waba_id: str = WABA_ID,
    synced_at: datetime | None = None,
    **fields: Any,
) -> Template:
    """A synced template whose only component is a BODY of ``body``, unless ``components``
    is given; ``parameters`` are parsed from the components, as a sync does. Synced, last
    seen and status-changed at ``synced_at`` (default now)."""
    at = synced_at or timezone.now()
    if components is None:
        components = [{"type": "BODY", "text": body}]
    return Template.objects.create(
        workspace=workspace,
        waba_id=waba_id,
        name=name,
        language=language,
        category=category,
        status=status,
        parameter_format=parameter_format,
        components=components,
        parameters=parse_parameters(components, parameter_format),
        synced_at=at,
        last_seen_at=at,
        status_changed_at=at,
        **fields,
    )


def make_campaign(
    *,
    workspace: Workspace,
    numbers: Iterable[Number],
    templates: Iterable[Template | tuple[Template, int]],
    name: str = "Diwali",
    status: str = CampaignStatus.DRAFT,
    started_at: datetime | Literal[_Derived.DERIVED] | None = DERIVED,
    **fields: Any,
) -> Campaign:
    """A campaign sending through ``numbers`` with ``templates``, each a template (weight 1)
    or a ``(template, weight)`` pair. A running campaign has started now unless
    ``started_at`` says otherwise; in any other status it has not started."""
    if started_at is DERIVED:
        started_at = timezone.now() if status == CampaignStatus.RUNNING else None
    campaign = Campaign.objects.create(
        workspace=workspace, name=name, status=status, started_at=started_at, **fields
    )
    campaign.numbers.set(numbers)
    for item in templates:
        template, weight = item if isinstance(item, tuple) else (item, 1)
        CampaignTemplate.objects.create(campaign=campaign, template=template, weight=weight)
    return campaign


def _recipient_fields(
    *,
    campaign: Campaign,
    phone: str,
    template: Template,
    number: Number,
    status: str,
    wamid: str | Literal[_Derived.DERIVED] | None,
    sent_at: datetime | None,
    **fields: Any,
) -> dict[str, Any]:
    accepted = status in ACCEPTED_STATES
    if wamid is DERIVED:
        wamid = f"wamid.{phone.lstrip('+')}" if accepted else None
    if accepted:
        sent_at = sent_at or timezone.now()
        fields.setdefault(
            "delivered_at",
            sent_at if status in (RecipientStatus.DELIVERED, RecipientStatus.READ) else None,
        )
        fields.setdefault("read_at", sent_at if status == RecipientStatus.READ else None)
    else:
        sent_at = None
    if status == RecipientStatus.FAILED:
        fields.setdefault("failed_at", timezone.now())
    return {
        "campaign": campaign,
        "phone": phone,
        "template": template,
        "number": number,
        "status": status,
        "wamid": wamid,
        "sent_at": sent_at,
        "attempts": 0 if status == RecipientStatus.PENDING else 1,
        **fields,
    }


def make_recipient(
    *,
    campaign: Campaign,
    phone: str,
    template: Template | None = None,
    number: Number | None = None,
    status: str = RecipientStatus.PENDING,
    wamid: str | Literal[_Derived.DERIVED] | None = DERIVED,
    sent_at: datetime | None = None,
    **fields: Any,
) -> Recipient:
    """One contact of ``campaign`` in ``status`` as the engine leaves it: pending rows are
    unattempted; every other row was attempted once; accepted ones (sent, delivered, read)
    have ``sent_at`` (default now) and, unless given, the wamid ``wamid.<phone digits>``.
    Delivered and read rows were delivered (and read) at ``sent_at``; failed rows failed now.
    ``template`` and ``number`` default to the campaign's first."""
    return Recipient.objects.create(
        **_recipient_fields(
            campaign=campaign,
            phone=phone,
            template=template or campaign.campaign_templates.first().template,
            number=number or campaign.numbers.order_by("pk").first(),
            status=status,
            wamid=wamid,
            sent_at=sent_at,
            **fields,
        )
    )


def make_recipients(
    *,
    campaign: Campaign,
    count: int | None = None,
    phones: Sequence[str] | None = None,
    template: Template | None = None,
    numbers: Sequence[Number] | None = None,
    status: str = RecipientStatus.PENDING,
) -> list[Recipient]:
    """``count`` contacts of ``campaign`` (``+9198`` and eight digits: 0, 1, ...), or one per
    phone of ``phones``, as an import leaves them: row i is file line i + 2 with values
    ``{"body.1": "Name<i>", "body.2": "CODE<i>"}``, spread round-robin over ``numbers``
    (default: the campaign's, by pk). ``template`` defaults to the campaign's first; rows in
    ``status`` look as ``make_recipient`` describes."""
    if phones is None:
        if count is None:
            raise TypeError("make_recipients needs count or phones")
        phones = [f"+9198{i:08d}" for i in range(count)]
    elif count is not None and count != len(phones):
        raise ValueError(f"count={count} but {len(phones)} phones")
    template = template or campaign.campaign_templates.first().template
    numbers = numbers or list(campaign.numbers.order_by("pk"))
    return Recipient.objects.bulk_create(
        Recipient(
            **_recipient_fields(
                campaign=campaign,
                phone=phone,
                template=template,
                number=numbers[i % len(numbers)],
                status=status,
                wamid=DERIVED,
                sent_at=None,
                variables={"body.1": f"Name{i}", "body.2": f"CODE{i}"},
                row_number=i + 2,
            )
        )
        for i, phone in enumerate(phones)
    )
