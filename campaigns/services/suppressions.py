"""The suppression list: phones a workspace must never message again, from any number.

Every path that suppresses (the API and admin, an opt-out keyword or button,
Meta's 131050 in a send answer or a status webhook, a ``user_preferences``
stop) goes through ``suppression_create``, so each one cancels the phone's
unsent messages in every campaign of the workspace (running, paused, scheduled
and drafts alike: a suppressed row is never sent). Every opt-in (a START
keyword, Meta's ``resume``, a person deleting the entry) goes through
``suppression_lift``, which records it as a ``SuppressionLift``.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import Workspace
from campaigns.models import (
    UNSENT_STATES,
    Recipient,
    RecipientStatus,
    Suppression,
    SuppressionLift,
    SuppressionSource,
)
from campaigns.phones import InvalidPhone, normalize_phone


class SuppressionError(ValueError):
    """A suppression that cannot be added (invalid phone, already suppressed)."""


def suppression_check(*, workspace: Workspace, phone: str) -> str:
    """The phone in E.164 if it can be suppressed in ``workspace``; else SuppressionError."""
    try:
        e164 = normalize_phone(phone)
    except InvalidPhone as error:
        raise SuppressionError(f"invalid phone: {error}") from None
    if Suppression.objects.filter(workspace=workspace, phone=e164).exists():
        raise SuppressionError(f"{e164} is already suppressed")
    return e164


def suppression_create(
    *, workspace: Workspace, phone: str, reason: str = "", source: str = SuppressionSource.MANUAL
) -> Suppression:
    """Adds ``phone`` to the workspace's suppression list and cancels its unsent messages.

    Raises SuppressionError for an invalid phone or one already suppressed.
    """
    e164 = suppression_check(workspace=workspace, phone=phone)
    try:
        with transaction.atomic():
            suppression = Suppression.objects.create(
                workspace=workspace, phone=e164, reason=reason.strip()[:255], source=source
            )
            Recipient.objects.filter(
                campaign__workspace=workspace, phone=e164, status__in=UNSENT_STATES
            ).update(
                status=RecipientStatus.CANCELLED,
                error_title="Opted out",
                error_details=reason.strip(),
            )
    except IntegrityError:
        # Added concurrently between the check and the insert.
        raise SuppressionError(f"{e164} is already suppressed") from None
    return suppression


def suppression_ensure(*, workspace_id: int, phone: str, reason: str, source: str) -> bool:
    """``suppression_create`` for automatic sources, where "already suppressed" is fine.

    True when the suppression is new; False when it existed or the phone is not
    one we could ever have sent to.
    """
    try:
        suppression_create(
            workspace=Workspace.objects.get(pk=workspace_id),
            phone=phone,
            reason=reason,
            source=source,
        )
    except SuppressionError:
        return False
    return True


def suppression_lift(
    *, workspace_id: int, phone: str, source: str, reason: str = ""
) -> SuppressionLift | None:
    """The contact opted back in: removes the phone's suppression and records the lift.

    Returns the SuppressionLift, or None when the phone was not suppressed (or is
    not a phone at all). Messages cancelled because of the suppression stay cancelled.
    """
    try:
        e164 = normalize_phone(phone)
    except InvalidPhone:
        return None
    with transaction.atomic():
        suppression = (
            Suppression.objects.select_for_update()
            .filter(workspace_id=workspace_id, phone=e164)
            .first()
        )
        if suppression is None:
            return None
        lift = _lift(suppression, source=source, reason=reason)
        suppression.delete()
    return lift


def _lift(suppression: Suppression, *, source: str, reason: str) -> SuppressionLift:
    return SuppressionLift.objects.create(
        workspace_id=suppression.workspace_id,
        phone=suppression.phone,
        source=source,
        reason=reason.strip()[:255],
        suppressed_source=suppression.source,
        suppressed_reason=suppression.reason,
        suppressed_at=suppression.created_at,
    )


def suppression_delete(
    *, suppression: Suppression, source: str = SuppressionSource.MANUAL, reason: str = ""
) -> SuppressionLift:
    """A person removed the suppression (an opt-in they were told of); recorded as a lift.

    Contacts cancelled because of it stay cancelled.
    """
    with transaction.atomic():
        lift = _lift(suppression, source=source, reason=reason or "removed by a person")
        suppression.delete()
    return lift
