"""Campaign lifecycle: settings, the state machine, scheduled starts and finishing.

Every state change goes through ``_transition``: it locks the campaign row,
checks the change against ALLOWED_TRANSITIONS and the service's own rules,
and records a CampaignEvent in the same transaction. A refused change raises
CampaignStateError and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Workspace
from campaigns import preflight as preflight_checks
from campaigns.locks import campaign_lock_for_transaction
from campaigns.models import (
    ALLOWED_TRANSITIONS,
    EDITABLE_STATES,
    NOT_DONE_STATES,
    UNSENT_STATES,
    Campaign,
    CampaignEvent,
    CampaignStatus,
    CampaignTemplate,
    Recipient,
    RecipientStatus,
)
from campaigns.preflight import campaign_preflight
from campaigns.signals import (
    campaign_completed,
    campaign_expired,
    campaign_paused,
    campaign_preflight_failed,
)
from messaging.kick import lanes_kick_after_commit
from numbers.models import Number
from numbers.services import NumberBlockCooldown, number_block_clear
from templates_sync.models import Template

logger = logging.getLogger(__name__)


class CampaignStateError(Exception):
    """A state change (or edit) the campaign's state does not allow; the API answers 409."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CampaignInvalid(ValueError):
    """A campaign setting that is not acceptable; ``field`` names it (the API answers 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _actor(user) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# --- settings -----------------------------------------------------------------------------


def _check_setup(
    *, workspace_id: int, numbers: Sequence[Number], templates: Sequence[tuple[Template, int]]
) -> None:
    if not numbers:
        raise CampaignInvalid("numbers", "choose at least one number")
    if not templates:
        raise CampaignInvalid("templates", "choose at least one template")
    for number in numbers:
        if number.workspace_id != workspace_id:
            raise CampaignInvalid("numbers", f"number {number.pk} does not exist")
    seen = set()
    for template, weight in templates:
        if template.workspace_id != workspace_id:
            raise CampaignInvalid("templates", f"template {template.pk} does not exist")
        if template.pk in seen:
            raise CampaignInvalid("templates", f"template {template.name!r} is listed twice")
        seen.add(template.pk)
        if weight < 1:
            raise CampaignInvalid("templates", "a weight is a whole number of 1 or more")
        if not template.is_sendable:
            state = "removed at Meta" if template.removed_at else template.status
            raise CampaignInvalid(
                "templates",
                f"template {template.name!r} ({template.language}) cannot be sent: it is {state}",
            )
        for number in numbers:
            # Every number may be given any contact, so each must reach every template.
            if number.waba_id != template.waba_id:
                raise CampaignInvalid(
                    "templates",
                    f"template {template.name!r} belongs to WABA {template.waba_id}; number "
                    f"{number} is in WABA {number.waba_id} and cannot send it",
                )


def _check_mapping(mapping: Any, templates: Sequence[tuple[Template, int]]) -> dict:
    if mapping in (None, ""):
        return {}
    if not isinstance(mapping, dict):
        raise CampaignInvalid(
            "variable_mapping", 'expected {"<template id>": {"body.1": "column"}}'
        )
    by_id = {str(template.pk): template for template, _ in templates}
    for key, columns in mapping.items():
        template = by_id.get(str(key))
        if template is None:
            raise CampaignInvalid("variable_mapping", f"template {key} is not in this campaign")
        if not isinstance(columns, dict) or not all(
            isinstance(value, str) and value.strip() for value in columns.values()
        ):
            raise CampaignInvalid(
                "variable_mapping", f'template {key}: expected {{"body.1": "column name"}}'
            )
        unknown = sorted(set(columns) - set(template.parameters or []))
        if unknown:
            raise CampaignInvalid(
                "variable_mapping",
                f"template {template.name!r} has no parameter {', '.join(unknown)} "
                f"(it has: {', '.join(template.parameters or []) or 'none'})",
            )
    return {str(key): dict(columns) for key, columns in mapping.items()}


def campaign_setup_check(
    *,
    workspace_id: int,
    numbers: Sequence[Number],
    templates: Sequence[tuple[Template, int]],
    variable_mapping: Any,
) -> dict:
    """The rules a campaign's numbers, templates and mapping must keep, for forms that
    build a campaign outside campaign_create (the admin). Returns the cleaned mapping;
    raises CampaignInvalid naming the field."""
    _check_setup(workspace_id=workspace_id, numbers=numbers, templates=templates)
    return _check_mapping(variable_mapping, templates)


def campaign_schedule_time_check(scheduled_at: datetime) -> None:
    """Raises CampaignInvalid unless ``scheduled_at`` is in the future."""
    if scheduled_at <= timezone.now():
        raise CampaignInvalid("scheduled_at", "the scheduled time has passed")


@transaction.atomic
def campaign_create(
    *,
    workspace: Workspace,
    user,
    name: str,
    numbers: Sequence[Number],
    templates: Sequence[tuple[Template, int]],
    scheduled_at: datetime | None = None,
    variable_mapping: dict | None = None,
) -> Campaign:
    """A new draft campaign (scheduled when ``scheduled_at`` is given).

    Raises CampaignInvalid: no numbers or templates, another workspace's,
    a template that cannot be sent, or one outside a number's WABA.
    """
    _check_setup(workspace_id=workspace.pk, numbers=numbers, templates=templates)
    mapping = _check_mapping(variable_mapping, templates)
    if scheduled_at is not None:
        campaign_schedule_time_check(scheduled_at)
    campaign = Campaign.objects.create(
        workspace=workspace, name=name.strip(), created_by=_actor(user), variable_mapping=mapping
    )
    campaign.numbers.set(numbers)
    CampaignTemplate.objects.bulk_create(
        CampaignTemplate(campaign=campaign, template=template, weight=weight)
        for template, weight in templates
    )
    if scheduled_at is not None:
        campaign_schedule(campaign=campaign, user=user, scheduled_at=scheduled_at)
    return campaign


_UNSET: Any = object()


def campaign_update(
    *,
    campaign: Campaign,
    user,
    name: str | None = None,
    numbers: Sequence[Number] | None = None,
    templates: Sequence[tuple[Template, int]] | None = None,
    variable_mapping: dict | None = None,
    scheduled_at: datetime | None = _UNSET,
) -> Campaign:
    """Changes a draft or scheduled campaign.

    Templates, weights and the mapping are fixed once contacts are imported
    (each contact was checked against its template); a change of numbers
    spreads the contacts evenly over the new ones. Setting ``scheduled_at``
    schedules a draft; clearing it returns a scheduled campaign to draft.
    Raises CampaignStateError (not editable now) or CampaignInvalid.
    """
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        _check_editable(locked, "change")
        current_templates = [
            (use.template, use.weight)
            for use in locked.campaign_templates.select_related("template").order_by("pk")
        ]
        new_numbers = list(numbers) if numbers is not None else list(locked.numbers.all())
        new_templates = list(templates) if templates is not None else current_templates
        _check_setup(workspace_id=locked.workspace_id, numbers=new_numbers, templates=new_templates)
        has_recipients = locked.recipients.exists()
        if templates is not None and _template_key(new_templates) != _template_key(
            current_templates
        ):
            if has_recipients:
                raise CampaignInvalid(
                    "templates",
                    "templates and weights cannot change once contacts are imported "
                    "(each contact was checked against its template)",
                )
            locked.campaign_templates.all().delete()
            CampaignTemplate.objects.bulk_create(
                CampaignTemplate(campaign=locked, template=template, weight=weight)
                for template, weight in new_templates
            )
        if variable_mapping is not None:
            mapping = _check_mapping(variable_mapping, new_templates)
            if mapping != locked.variable_mapping:
                if has_recipients:
                    raise CampaignInvalid(
                        "variable_mapping",
                        "the mapping is applied when contacts are imported; it cannot change "
                        "once contacts are imported",
                    )
                locked.variable_mapping = mapping
        if name is not None:
            locked.name = name.strip()
        locked.save(update_fields=["name", "variable_mapping"])
        if numbers is not None:
            old = sorted(locked.numbers.values_list("pk", flat=True))
            if sorted(number.pk for number in new_numbers) != old:
                locked.numbers.set(new_numbers)
                _spread_over_numbers(locked, sorted(number.pk for number in new_numbers))
    if scheduled_at is not _UNSET:
        if scheduled_at is None and locked.status == CampaignStatus.SCHEDULED:
            campaign_unschedule(campaign=locked, user=user)
        elif scheduled_at is not None and locked.status == CampaignStatus.DRAFT:
            campaign_schedule(campaign=locked, user=user, scheduled_at=scheduled_at)
        elif scheduled_at is not None:
            campaign_schedule_time_check(scheduled_at)
            Campaign.objects.filter(pk=locked.pk).update(scheduled_at=scheduled_at)
    campaign.refresh_from_db()
    return campaign


def _template_key(templates: Iterable[tuple[Template, int]]) -> list[tuple[int, int]]:
    return sorted((template.pk, weight) for template, weight in templates)


def _check_editable(campaign: Campaign, verb: str) -> None:
    if campaign.status not in EDITABLE_STATES:
        raise CampaignStateError(
            f"a {campaign.status} campaign cannot {verb}: only draft and scheduled campaigns can"
            if verb == "be deleted"
            else f"cannot {verb} a {campaign.status} campaign: only draft and scheduled "
            "campaigns can be changed"
        )
    if not campaign_lock_for_transaction(campaign.pk):
        raise CampaignStateError(
            "contacts are being imported into this campaign; try again when the import has finished"
        )


def _spread_over_numbers(campaign: Campaign, number_ids: list[int]) -> None:
    """Reassigns the unsent contacts round-robin over ``number_ids``, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_recipient AS r
               SET number_id = (%s::bigint[])[(s.position %% %s) + 1]
              FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS position
                      FROM campaigns_recipient
                     WHERE campaign_id = %s AND status = ANY(%s)) AS s
             WHERE r.id = s.id
            """,
            [number_ids, len(number_ids), campaign.pk, list(UNSENT_STATES)],
        )


def campaign_delete(*, campaign: Campaign) -> None:
    """Deletes a draft or scheduled campaign and its contacts; raises CampaignStateError."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        _check_editable(locked, "be deleted")
        locked.delete()


# --- the state machine ----------------------------------------------------------------


def _transition(
    campaign: Campaign,
    *,
    user,
    to: str,
    verb: str,
    from_states: Iterable[str],
    reason: str | None,
    check: Callable[[Campaign], None] | None = None,
    after: Callable[[Campaign], None] | None = None,
    **fields: Any,
) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        current = locked.status
        if current not in from_states or to not in ALLOWED_TRANSITIONS[current]:
            raise CampaignStateError(f"cannot {verb} a {current} campaign")
        if not campaign_lock_for_transaction(locked.pk):
            raise CampaignStateError(
                f"cannot {verb} the campaign while contacts are being imported into it; "
                "try again when the import has finished"
            )
        if check is not None:
            check(locked)
        locked.status = to
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save(update_fields=["status", *fields])
        CampaignEvent.objects.create(
            campaign=locked,
            user=_actor(user),
            from_status=current,
            to_status=to,
            reason=reason or "",
        )
        if after is not None:
            after(locked)
    campaign.refresh_from_db()
    return campaign


def _ready_to_send(campaign: Campaign, *, need_contacts: bool) -> None:
    """Raises CampaignStateError unless a usable number, sendable templates (and contacts) exist."""
    problems = []
    if need_contacts and not campaign.recipients.filter(status__in=UNSENT_STATES).exists():
        problems.append("it has no contacts waiting to be sent: import a CSV first")
    numbers = list(campaign.numbers.all())
    if not any(number.is_usable for number in numbers):
        states = ", ".join(f"{number} is {number.status}" for number in numbers) or "none chosen"
        problems.append(f"no number can send ({states})")
    for use in campaign.campaign_templates.select_related("template"):
        template = use.template
        if not template.is_sendable:
            state = "removed at Meta" if template.removed_at else template.status
            problems.append(f"template {template.name!r} ({template.language}) is {state}")
    if problems:
        raise CampaignStateError("the campaign cannot send: " + "; ".join(problems))


def _preflight_passes(campaign: Campaign, *, resume: bool) -> None:
    """Pre-flight on the stored state, for every start and resume (a person's or the
    product's): its problems refuse the change (CampaignStateError listing them). Meta's
    side is kept current by the hourly refresh, the template syncs and the webhooks; the
    pre-flight action asks Meta itself. On a resume, contacts already all claimed are
    no problem, and a budget shortfall is the engine's to hold (a warning)."""
    result = preflight_checks.campaign_preflight(
        campaign=campaign, check_meta=False, budget_blocks=not resume
    )
    problems = [
        problem
        for problem in result.problems
        if not (resume and problem.startswith("no contacts are waiting"))
    ]
    if problems:
        raise CampaignStateError("pre-flight found problems: " + "; ".join(problems))


def campaign_schedule(
    *, campaign: Campaign, user, scheduled_at: datetime, reason: str | None = None
) -> Campaign:
    """draft -> scheduled at ``scheduled_at`` (in the future, else CampaignInvalid)."""
    campaign_schedule_time_check(scheduled_at)
    return _transition(
        campaign,
        user=user,
        to=CampaignStatus.SCHEDULED,
        verb="schedule",
        from_states=[CampaignStatus.DRAFT],
        reason=reason or f"scheduled for {scheduled_at.isoformat()}",
        scheduled_at=scheduled_at,
    )


def campaign_unschedule(*, campaign: Campaign, user, reason: str | None = None) -> Campaign:
    """scheduled -> draft (the time is cleared)."""
    return _transition(
        campaign,
        user=user,
        to=CampaignStatus.DRAFT,
        verb="unschedule",
        from_states=[CampaignStatus.SCHEDULED],
        reason=reason,
        scheduled_at=None,
    )


def campaign_lanes_kick_after_commit(campaign: Campaign) -> None:
    """Queues the campaign's lanes (one link per number) once the change is committed."""
    lanes_kick_after_commit(number_ids=list(campaign.numbers.values_list("pk", flat=True)))


def _ready_to_start(campaign: Campaign) -> None:
    _ready_to_send(campaign, need_contacts=True)
    _preflight_passes(campaign, resume=False)


def campaign_start(*, campaign: Campaign, user, reason: str | None = None) -> Campaign:
    """draft|scheduled -> running; needs contacts, a usable number, sendable templates and
    a passing pre-flight (on the stored state)."""
    return _transition(
        campaign,
        user=user,
        to=CampaignStatus.RUNNING,
        verb="start",
        from_states=[CampaignStatus.DRAFT, CampaignStatus.SCHEDULED],
        reason=reason,
        check=_ready_to_start,
        after=campaign_lanes_kick_after_commit,
        started_at=campaign.started_at or timezone.now(),
    )


def campaign_pause(*, campaign: Campaign, user, reason: str | None = None) -> Campaign:
    """running -> paused; ``reason`` is kept in pause_reason (auto-pauses say why)."""
    return _transition(
        campaign,
        user=user,
        to=CampaignStatus.PAUSED,
        verb="pause",
        from_states=[CampaignStatus.RUNNING],
        reason=reason,
        paused_at=timezone.now(),
        pause_reason=reason or "",
    )


def _lift_number_blocks(campaign: Campaign, user) -> None:
    """A person resuming lifts the holds the product put on the campaign's numbers after
    Meta's errors (368, 131048): that is the person's decision the hold waits for. A
    spam-rate hold (131048) cannot be lifted before its cooldown: CampaignStateError
    saying when. The product resuming on its own lifts nothing."""
    if _actor(user) is None:
        return
    for number in campaign.numbers.filter(block_code__isnull=False).order_by("pk"):
        try:
            number_block_clear(number=number, user=user)
        except NumberBlockCooldown as error:
            raise CampaignStateError(f"cannot resume yet: {error.message}") from None


def campaign_resume(*, campaign: Campaign, user, reason: str | None = None) -> Campaign:
    """paused -> running; needs a usable number and sendable templates. A person's resume
    lifts the product's holds on the campaign's numbers (after a 131048 cooldown)."""

    def check(locked: Campaign) -> None:
        _lift_number_blocks(locked, user)
        _ready_to_send(locked, need_contacts=False)
        _preflight_passes(locked, resume=True)

    return _transition(
        campaign,
        user=user,
        to=CampaignStatus.RUNNING,
        verb="resume",
        from_states=[CampaignStatus.PAUSED],
        reason=reason,
        check=check,
        after=campaign_lanes_kick_after_commit,
        pause_reason="",
    )


def _stop_unsent(title: str, details: str) -> Callable[[Campaign], None]:
    def stop(campaign: Campaign) -> None:
        Recipient.objects.filter(campaign=campaign, status__in=UNSENT_STATES).update(
            status=RecipientStatus.CANCELLED, error_title=title, error_details=details
        )

    return stop


def campaign_cancel(*, campaign: Campaign, user, reason: str | None = None) -> Campaign:
    """Any unfinished campaign -> cancelled; its unsent contacts become cancelled in one UPDATE.

    Messages already claimed by a lane (``sending``) are left for the engine to settle.
    """
    return _transition(
        campaign,
        user=user,
        to=CampaignStatus.CANCELLED,
        verb="cancel",
        from_states=[
            CampaignStatus.DRAFT,
            CampaignStatus.SCHEDULED,
            CampaignStatus.RUNNING,
            CampaignStatus.PAUSED,
        ],
        reason=reason,
        after=_stop_unsent("Campaign cancelled", reason or ""),
        completed_at=timezone.now(),
    )


def campaign_complete(*, campaign: Campaign, user=None, reason: str | None = None) -> Campaign:
    """running -> completed (the engine's sweeper calls it when nothing is left to send)."""
    return _transition(
        campaign,
        user=user,
        to=CampaignStatus.COMPLETED,
        verb="complete",
        from_states=[CampaignStatus.RUNNING],
        reason=reason,
        after=lambda locked: campaign_completed.send(sender=Campaign, campaign=locked),
        completed_at=timezone.now(),
    )


def campaign_fail(*, campaign: Campaign, user=None, reason: str | None = None) -> Campaign:
    """scheduled|running|paused -> failed; unsent contacts become cancelled with the reason."""
    return _transition(
        campaign,
        user=user,
        to=CampaignStatus.FAILED,
        verb="fail",
        from_states=[CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED],
        reason=reason,
        after=_stop_unsent("Campaign failed", reason or ""),
        completed_at=timezone.now(),
    )


# --- what the engine and Meta's events do to campaigns -----------------------------------


def campaign_finish_if_done(*, campaign: Campaign) -> bool:
    """Completes a running campaign with nothing left to send; True when it did."""
    if campaign.recipients.filter(status__in=NOT_DONE_STATES).exists():
        return False
    try:
        campaign_complete(campaign=campaign, reason="nothing left to send")
    except CampaignStateError:
        return False
    return True


def campaign_pause_if_running(*, campaign_id: int, reason: str) -> bool:
    """Pauses the campaign on the product's own decision; False when it was not running.

    Already paused, cancelled or completed by someone else: nothing to do.
    """
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return False
    try:
        # One transaction, so the notification outbox commits (or not) with the pause.
        with transaction.atomic():
            campaign_pause(campaign=campaign, user=None, reason=reason)
            campaign_paused.send(sender=Campaign, campaign=campaign, reason=reason, by="product")
    except CampaignStateError:
        return False
    logger.warning("campaign %s paused: %s", campaign_id, reason)
    return True


def campaign_hold(*, campaign_id: int, reason: str, until: datetime) -> bool:
    """A guard holds a running campaign's sends back until ``until`` (its rows wait): the
    reason shows on the campaign, and the first hold of a run is announced like a pause
    (``campaign_paused``, by "product") so notifications follow. True when newly held."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id, status=CampaignStatus.RUNNING)
            .first()
        )
        if campaign is None:
            return False
        newly = not campaign.hold_reason
        campaign.hold_reason = reason
        campaign.held_until = until
        campaign.save(update_fields=["hold_reason", "held_until"])
        if newly:
            CampaignEvent.objects.create(
                campaign=campaign,
                from_status=campaign.status,
                to_status=campaign.status,
                reason=f"held: {reason}",
            )
            campaign_paused.send(sender=Campaign, campaign=campaign, reason=reason, by="product")
    if newly:
        logger.warning("campaign %s held: %s", campaign_id, reason)
    return newly


def campaigns_hold_clear(*, campaign_ids: Iterable[int]) -> int:
    """The campaigns send again: their holds are cleared (one statement; none matched is
    the usual case and writes nothing)."""
    return (
        Campaign.objects.filter(pk__in=list(campaign_ids))
        .exclude(hold_reason="")
        .update(hold_reason="", held_until=None)
    )


def _pause_running(*, reason: str, **match) -> list[int]:
    """Pauses the running campaigns that ``match`` selects, in id order; returns their ids."""
    ids = Campaign.objects.filter(status=CampaignStatus.RUNNING, **match).order_by("pk").distinct()
    return [
        pk
        for pk in ids.values_list("pk", flat=True)
        if campaign_pause_if_running(campaign_id=pk, reason=reason)
    ]


def campaigns_pause_for_number(*, number_id: int, reason: str) -> list[int]:
    """Pauses every running campaign that sends through the number; returns their ids."""
    return _pause_running(reason=reason, numbers=number_id)


def campaigns_pause_for_account(*, waba_id: str, reason: str) -> list[int]:
    """Pauses every running campaign sending through any number of the WhatsApp Business
    Account; returns their ids."""
    return _pause_running(reason=reason, numbers__waba_id=waba_id)


def campaigns_pause_marketing_for_number(*, number_id: int, reason: str) -> list[int]:
    """Pauses the running campaigns on the number that send a MARKETING template (Meta's
    quality verdict is about marketing); returns their ids."""
    return _pause_running(
        reason=reason, numbers=number_id, campaign_templates__template__category="MARKETING"
    )


def campaigns_pause_for_template(*, template: Template, reason: str) -> list[int]:
    """Pauses every running campaign that sends ``template``; returns their ids."""
    return _pause_running(reason=reason, campaign_templates__template=template)


def campaigns_start_due(*, now=None) -> int:
    """Starts scheduled campaigns whose time has come; returns how many started.

    A failed pre-flight fails the campaign with the problems (it must not send
    on its own what a person would not have started). So does a time more than
    CAMPAIGN_SCHEDULE_EXPIRY_HOURS past (beat was down, or it kept being refused):
    Monday's announcement must not go out on Wednesday by itself.
    """
    started = 0
    now = now or timezone.now()
    expired_before = now - timedelta(hours=settings.CAMPAIGN_SCHEDULE_EXPIRY_HOURS)
    due = Campaign.objects.filter(status=CampaignStatus.SCHEDULED, scheduled_at__lte=now)
    for campaign in due.order_by("scheduled_at", "pk"):
        try:
            if campaign.scheduled_at < expired_before:
                with transaction.atomic():
                    campaign_fail(
                        campaign=campaign,
                        user=None,
                        reason=f"expired: its scheduled time ({campaign.scheduled_at.isoformat()})"
                        f" passed more than {settings.CAMPAIGN_SCHEDULE_EXPIRY_HOURS:g} hours "
                        "ago without it starting",
                    )
                    campaign_expired.send(sender=Campaign, campaign=campaign)
                continue
            result = campaign_preflight(campaign=campaign)
            if result.ok:
                campaign_start(campaign=campaign, user=None, reason="scheduled time reached")
                started += 1
            else:
                with transaction.atomic():
                    campaign_fail(
                        campaign=campaign,
                        user=None,
                        reason="pre-flight failed at the scheduled time: "
                        + "; ".join(result.problems),
                    )
                    campaign_preflight_failed.send(
                        sender=Campaign, campaign=campaign, problems=list(result.problems)
                    )
        except CampaignStateError as error:
            # Changed meanwhile (cancelled, importing): the next run looks again.
            logger.info("scheduled campaign %s not started: %s", campaign.pk, error.reason)
    return started
