"""Pre-flight (dry run): everything that would stop or hurt a campaign, as problems a person can act on.

Checks, in order: the state allows a start, there are contacts, every number
answers Meta with a valid token and is active, every template is still
APPROVED at Meta (templates are re-synced from each WABA first), the
audience fits each WABA's messaging-limit tier after the last 24 h of sends,
every contact renders its template, and no marketing template goes to a +1
number. Problems block a start; warnings do not.

The estimate uses min(sum of the usable numbers' max_mps, SEND_RATE_START (60)):
the adaptive rate store is the sending engine's, and a campaign starts at
its starting rate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from campaigns.models import (
    UNSENT_STATES,
    Campaign,
    CampaignStatus,
    ImportRowError,
    Recipient,
    RowProblem,
)
from numbers.models import Number
from numbers.services import number_test_connection
from templates_sync.models import Template, TemplateCategory
from templates_sync.rendering import RenderError, render_components
from templates_sync.services import templates_sync

# Unique users per rolling 24 h a business may start conversations with, per tier.
TIER_LIMITS: dict[str, int | None] = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
    "TIER_UNLIMITED": None,
}
RENDER_EXAMPLES = 3


@dataclass
class Preflight:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audience: int = 0
    estimated_seconds: int | None = None

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.ok = False

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "warnings": self.warnings,
            "audience": self.audience,
            "estimated_seconds": self.estimated_seconds,
        }


def campaign_preflight(
    *, campaign: Campaign, check_meta: bool = True, budget_blocks: bool = True
) -> Preflight:
    """Runs every check and returns the findings; never raises for what it finds.

    With ``check_meta`` the numbers are tested and the templates re-synced
    against the Graph API (which updates their stored state); without it the
    stored state is used. Without ``budget_blocks`` an audience beyond the
    messaging-limit headroom is a warning (a resume: the engine holds the excess
    until the window rolls), not a problem.
    """
    result = Preflight()
    if campaign.status not in (
        CampaignStatus.DRAFT,
        CampaignStatus.SCHEDULED,
        CampaignStatus.PAUSED,
    ):
        result.problem(f"the campaign is {campaign.status}: there is nothing to start")
    unsent = Recipient.objects.filter(campaign=campaign, status__in=UNSENT_STATES)
    result.audience = unsent.count()
    if not result.audience:
        result.problem("no contacts are waiting to be sent: import a CSV of contacts")

    numbers = _check_numbers(campaign, result, check_meta)
    templates = _check_templates(campaign, numbers, result, check_meta)
    _check_tiers(campaign, numbers, result, budget_blocks)
    _check_rendering(campaign, templates, result)
    _check_us_marketing(campaign, result)

    # The adaptive rate's starting value (engine.md): what a campaign gets first.
    starting_rate = int(getattr(settings, "SEND_RATE_START", 60))
    rate = min(sum(number.max_mps for number in numbers if number.is_usable), starting_rate)
    if rate:
        result.estimated_seconds = math.ceil(result.audience / rate)
    return result


def _check_numbers(campaign: Campaign, result: Preflight, check_meta: bool) -> list[Number]:
    numbers = list(campaign.numbers.order_by("pk"))
    if not numbers:
        result.problem("the campaign has no numbers: choose at least one")
    for index, number in enumerate(numbers):
        if check_meta:
            numbers[index] = number = number_test_connection(number=number)
        if not number.is_usable:
            detail = f": {number.last_error}" if number.last_error else ""
            result.problem(
                f"number {number} is {number.get_status_display().lower()}{detail}; "
                + (
                    "paste a new access token"
                    if number.status == "token_expired"
                    else "fix it at Meta or remove it from the campaign"
                )
            )
    return numbers


def _check_templates(
    campaign: Campaign, numbers: list[Number], result: Preflight, check_meta: bool
) -> list[Template]:
    uses = list(campaign.campaign_templates.select_related("template").order_by("pk"))
    if check_meta:
        synced = set()
        for number in numbers:
            if number.waba_id in synced or not number.is_usable:
                continue
            synced.add(number.waba_id)
            outcome = templates_sync(workspace=campaign.workspace, number=number)
            for error in outcome.errors:
                result.problem(
                    f"could not re-check the templates of WABA {number.waba_id} with Meta: "
                    f"{error.get('message') or error.get('state')}"
                )
    templates = []
    for use in uses:
        template = Template.objects.get(pk=use.template_id)
        templates.append(template)
        if not template.is_sendable:
            state = "no longer at Meta" if template.removed_at else f"{template.status} at Meta"
            result.problem(
                f"template {template.name!r} ({template.language}) is {state}: "
                "only APPROVED templates can be sent; replace it in the campaign"
            )
        if template.unsendable_reason:
            result.problem(
                f"template {template.name!r} ({template.language}) cannot be sent by this "
                f"product: {template.unsendable_reason}; replace it in the campaign"
            )
    return templates


def _check_tiers(
    campaign: Campaign, numbers: list[Number], result: Preflight, budget_blocks: bool = True
) -> None:
    """The audience against each business portfolio's messaging limit (the numbers'
    ``whatsapp_business_manager_messaging_limit``, else their deprecated tier), after
    the people messaged in the last 24 h. A portfolio is approximated by the WABA (the
    Graph API gives a number no portfolio id)."""
    by_waba: dict[str, list[Number]] = defaultdict(list)
    for number in numbers:
        by_waba[number.waba_id].append(number)
    audience_by_number = dict(
        Recipient.objects.filter(campaign=campaign, status__in=UNSENT_STATES)
        .values_list("number_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    since = timezone.now() - timedelta(hours=24)
    for waba_id, members in sorted(by_waba.items()):
        tiers = {number.messaging_limit for number in members if number.messaging_limit}
        if not tiers:
            result.warnings.append(
                f"WABA {waba_id}: Meta reported no messaging-limit tier; the audience could not "
                "be checked against it"
            )
            continue
        # The limit is the business's: every number shows it; take the highest shown.
        known = [TIER_LIMITS.get(tier, 0) for tier in tiers]
        limit = None if None in known else max(value for value in known if value is not None)
        if limit is None:
            continue
        audience = sum(audience_by_number.get(number.pk, 0) for number in members)
        recent = (
            Recipient.objects.filter(
                number__waba_id=waba_id,
                number__workspace_id=campaign.workspace_id,
                sent_at__gte=since,
            )
            .values("phone")
            .distinct()
            .count()
        )
        headroom = max(limit - recent, 0)
        if audience > headroom:
            text = (
                f"WABA {waba_id} may start conversations with {limit:,} people per 24 h "
                f"({', '.join(sorted(tiers))}); {recent:,} were messaged in the last 24 h, so "
                f"{headroom:,} remain and this campaign has {audience:,}"
            )
            if budget_blocks:
                result.problem(f"{text}: split the list or wait")
            else:
                result.warnings.append(
                    f"{text}: the rest waits, held by the engine until the window rolls"
                )


def _check_rendering(campaign: Campaign, templates: list[Template], result: Preflight) -> None:
    by_id = {template.pk: template for template in templates}
    failures: dict[int, list[str]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    rows = (
        Recipient.objects.filter(campaign=campaign, status__in=UNSENT_STATES)
        .order_by("pk")
        .values_list("template_id", "variables", "row_number", "phone")
    )
    for template_id, variables, row, phone in rows.iterator(chunk_size=5000):
        template = by_id.get(template_id)
        if template is None or template.unsendable_reason:
            continue  # an unsendable shape is one problem (_check_templates), not one per row
        try:
            render_components(template, variables)
        except RenderError as error:
            counts[template_id] += 1
            if len(failures[template_id]) < RENDER_EXAMPLES:
                failures[template_id].append(f"row {row} ({phone}): {error}")
    for template_id, count in counts.items():
        result.problem(
            f"{count} contacts cannot fill template {by_id[template_id].name!r}, e.g. "
            + "; ".join(failures[template_id])
        )


def _check_us_marketing(campaign: Campaign, result: Preflight) -> None:
    waiting = Recipient.objects.filter(
        campaign=campaign,
        status__in=UNSENT_STATES,
        phone__startswith="+1",
        template__category=TemplateCategory.MARKETING,
    ).count()
    if waiting:
        result.problem(
            f"{waiting} US (+1) contacts have a marketing template: Meta does not deliver these"
        )
    skipped = ImportRowError.objects.filter(
        job__campaign=campaign,
        kind=RowProblem.REJECTED,
        reason__contains="marketing templates to US (+1)",
    ).count()
    if skipped:
        result.warnings.append(
            f"{skipped} US (+1) rows were not imported: Meta does not deliver marketing "
            "templates to US numbers"
        )
