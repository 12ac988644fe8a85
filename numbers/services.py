"""Adding, testing, updating and deleting WhatsApp numbers (each write checks with Meta first)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.models import Workspace
from config.inputs import bearer_token_problem, graph_id_problem
from messaging.graph import ErrorClass, GraphClient, GraphError, InvalidTokenError
from numbers.models import PRODUCT_BLOCK_CODES, Number, NumberStatus
from numbers.selectors import number_in_use_reason

logger = logging.getLogger(__name__)


class NumberError(Exception):
    """A refused number operation; ``field`` names the input at fault (None: the whole request)."""

    def __init__(self, message: str, *, field: str | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class NumberInvalidError(NumberError):
    """An id or token that can never be sent to Meta; refused before any call or query."""


class NumberConnectionError(NumberError):
    """Meta refused the test connection (bad token, unknown id, id not in the WABA, ...)."""


class NumberExistsError(NumberError):
    """The workspace already has this phone-number id."""


class NumberInUseError(NumberError):
    """The number cannot be deleted: campaigns use it."""


# Meta's statuses of a phone number (GET /{id} "status") that stop all sending.
_META_BLOCKED = frozenset({"BANNED", "RESTRICTED"})
_META_DISCONNECTED = frozenset({"DISCONNECTED", "DELETED", "MIGRATED", "PENDING", "UNVERIFIED"})
# Meta's statuses of a number that exists but must not send now.
_META_HELD = {"FLAGGED": NumberStatus.FLAGGED, "RATE_LIMITED": NumberStatus.RATE_LIMITED}

# Fields the connection test writes; a concurrent label or token edit is never overwritten.
_REPORTED_FIELDS: Final = [
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "messaging_limit_tier",
    "business_messaging_limit",
    "throughput_level",
    "name_status",
    "platform_type",
    "meta_status",
    "is_on_biz_app",
    "max_mps",
    "status",
    "last_checked_at",
    "last_error",
    "last_error_code",
]
_BLOCK_FIELDS: Final = ["block_code", "block_reason", "blocked_at"]


@dataclass(frozen=True)
class NumberProbe:
    """What a successful connection test learnt: the trimmed inputs and Meta's fields."""

    phone_number_id: str
    waba_id: str
    access_token: str = field(repr=False)
    info: dict[str, Any]


def describe_graph_error(error: GraphError) -> str:
    """Meta's answer in one line for a person: its message and code."""
    if error.code is None:
        return f"could not reach the Graph API: {error.message}"
    code = f"code {error.code}" + (f", subcode {error.subcode}" if error.subcode else "")
    text = f"Meta answered: {error.message} ({code})"
    if error.details:
        text += f": {error.details}"
    return text


def status_for_error(error: GraphError) -> NumberStatus | None:
    """The number status a Graph error implies, or None when it says nothing about the number."""
    state = error.rule.number_state
    if state is not None:
        return NumberStatus(state)
    if error.code == 100 and error.subcode == 33:
        # "Object does not exist or missing permissions": the number left this token's reach.
        return NumberStatus.DISCONNECTED
    return None


def _status_from_meta(meta_status: str) -> NumberStatus:
    if meta_status.upper() in _META_BLOCKED:
        return NumberStatus.BLOCKED
    if meta_status.upper() in _META_DISCONNECTED:
        return NumberStatus.DISCONNECTED
    return _META_HELD.get(meta_status.upper(), NumberStatus.ACTIVE)


def _block_status(code: int) -> NumberStatus:
    return NumberStatus.RATE_LIMITED if code == 131048 else NumberStatus.BLOCKED


def _field_for(error: GraphError, id_field: str) -> str | None:
    if error.code == 190 or error.error_class is ErrorClass.AUTH:
        return "access_token"
    if error.code == 100:
        return id_field
    return None


def number_inputs_check(
    *,
    phone_number_id: str | None = None,
    waba_id: str | None = None,
    access_token: str | None = None,
) -> None:
    """Raise NumberInvalidError naming the first of the given (trimmed) inputs that cannot
    be sent to Meta: ids must be digits, the token one line of printable ASCII. The
    message never contains the token."""
    problems = (
        ("phone_number_id", phone_number_id, graph_id_problem),
        ("waba_id", waba_id, graph_id_problem),
        ("access_token", access_token, bearer_token_problem),
    )
    for name, value, problem_of in problems:
        if value is None:
            continue
        problem = problem_of(value)
        if problem is not None:
            raise NumberInvalidError(problem, field=name)


# Django's DEBUG error page shows every frame's variables, except those named so.
@sensitive_variables("access_token", "token")
def number_probe(*, phone_number_id: str, waba_id: str, access_token: str) -> NumberProbe:
    """Test a connection without saving anything.

    GETs the phone number's fields, then checks that it is one of the WABA's numbers.
    Raises NumberInvalidError for an input that cannot be sent (before any call), or
    NumberConnectionError with Meta's message; both name the field at fault.
    """
    phone_number_id, waba_id, token = phone_number_id.strip(), waba_id.strip(), access_token.strip()
    number_inputs_check(phone_number_id=phone_number_id, waba_id=waba_id, access_token=token)
    client = GraphClient(token)
    try:
        info = client.get_phone_number(phone_number_id)
    except GraphError as error:
        raise NumberConnectionError(
            describe_graph_error(error),
            field=_field_for(error, "phone_number_id"),
            code=error.code,
        ) from error
    try:
        waba_numbers = {str(item.get("id")) for item in client.list_phone_numbers(waba_id)}
    except GraphError as error:
        raise NumberConnectionError(
            describe_graph_error(error), field=_field_for(error, "waba_id"), code=error.code
        ) from error
    if phone_number_id not in waba_numbers:
        raise NumberConnectionError(
            f"phone number {phone_number_id} is not one of the numbers of WhatsApp Business "
            f"Account {waba_id}",
            field="phone_number_id",
        )
    return NumberProbe(phone_number_id, waba_id, token, info)


def _apply_info(number: Number, info: dict[str, Any]) -> None:
    throughput = info.get("throughput")
    number.display_phone_number = str(info.get("display_phone_number") or "")
    number.verified_name = str(info.get("verified_name") or "")
    number.quality_rating = str(info.get("quality_rating") or "")
    number.messaging_limit_tier = str(info.get("messaging_limit_tier") or "")
    limit = str(info.get("whatsapp_business_manager_messaging_limit") or "")
    # TIER_NOT_SET is "no limit known yet", not a limit of zero.
    number.business_messaging_limit = "" if limit == "TIER_NOT_SET" else limit
    number.throughput_level = str(
        (throughput.get("level") if isinstance(throughput, dict) else throughput) or ""
    )
    number.name_status = str(info.get("name_status") or "")
    number.platform_type = str(info.get("platform_type") or "")
    number.meta_status = str(info.get("status") or "")
    number.is_on_biz_app = info.get("is_on_biz_app") is True
    number.apply_max_mps()
    number.status = _status_from_meta(number.meta_status)
    if number.block_code is not None and number.status == NumberStatus.ACTIVE:
        # A block the product set stays until a person lifts it (number_block_clear):
        # Meta shows such numbers as CONNECTED again long before it is safe to send.
        number.status = _block_status(number.block_code)
    number.last_checked_at = timezone.now()
    number.last_error = ""
    number.last_error_code = None


@sensitive_variables("access_token", "probe")
def number_add(
    *,
    workspace: Workspace,
    label: str,
    phone_number_id: str,
    waba_id: str,
    access_token: str,
    max_mps_override: int | None = None,
    probe: NumberProbe | None = None,
) -> Number:
    """Test the connection, then save the number with what Meta reported.

    ``probe`` is a connection test already made for exactly these inputs (the admin
    form tests during validation). Raises NumberInvalidError, NumberExistsError or
    NumberConnectionError; nothing is saved then.
    """
    phone_number_id, waba_id = phone_number_id.strip(), waba_id.strip()
    # Before the query below: an id with a NUL in it cannot even be looked up.
    number_inputs_check(
        phone_number_id=phone_number_id, waba_id=waba_id, access_token=access_token.strip()
    )
    if Number.objects.filter(workspace=workspace, phone_number_id=phone_number_id).exists():
        raise NumberExistsError(
            f"this workspace already has phone number {phone_number_id}", field="phone_number_id"
        )
    if probe is None or (probe.phone_number_id, probe.waba_id, probe.access_token) != (
        phone_number_id,
        waba_id,
        access_token.strip(),
    ):
        probe = number_probe(
            phone_number_id=phone_number_id, waba_id=waba_id, access_token=access_token
        )
    number = Number(
        workspace=workspace,
        label=label.strip(),
        phone_number_id=probe.phone_number_id,
        waba_id=probe.waba_id,
        access_token=probe.access_token,
        max_mps_override=max_mps_override,
    )
    _apply_info(number, probe.info)
    if not number.label:
        number.label = number.verified_name or number.display_phone_number or phone_number_id
    try:
        with transaction.atomic():
            number.save()
    except IntegrityError:
        # Added concurrently by someone else between the check above and this insert.
        raise NumberExistsError(
            f"this workspace already has phone number {phone_number_id}", field="phone_number_id"
        ) from None
    logger.info("number %s added to workspace %s", number.pk, workspace.pk)
    return number


def number_record_graph_error(
    *, number: Number, error: GraphError, checked: bool = False
) -> Number:
    """Record a Graph failure met while using ``number`` and the status it implies.

    ``checked``: the failure came from a connection test, so it also sets last_checked_at.
    """
    number.last_error = describe_graph_error(error)
    number.last_error_code = error.code
    fields = ["last_error", "last_error_code"]
    if checked:
        number.last_checked_at = timezone.now()
        fields.append("last_checked_at")
    status = status_for_error(error)
    if status is not None:
        number.status = status
        fields.append("status")
    if error.code in PRODUCT_BLOCK_CODES and number.block_code is None:
        _set_block(number, error.code, describe_graph_error(error))
        number.status = _block_status(error.code)
        fields += [*_BLOCK_FIELDS, "status"]
    number.save(update_fields=fields)
    return number


def _set_block(number: Number, code: int, reason: str) -> None:
    number.block_code = code
    number.block_reason = reason
    number.blocked_at = timezone.now()


def number_block(*, number_id: int, code: int, reason: str) -> bool:
    """Hold the number after Meta's ``code`` (131048 spam rate, 368 policy block): it
    stops sending until a person lifts the hold. False when it was held already (the
    first hold, and its time, stay)."""
    with transaction.atomic():
        number = Number.objects.select_for_update().get(pk=number_id)
        if number.block_code is not None:
            return False
        _set_block(number, code, reason)
        number.status = _block_status(code)
        number.last_error = reason
        number.last_error_code = code
        number.save(update_fields=[*_BLOCK_FIELDS, "status", "last_error", "last_error_code"])
    logger.warning("number %s held after Meta error %s: %s", number_id, code, reason)
    return True


def number_block_cooldown_left(number: Number, *, now=None) -> float:
    """Seconds before a person may lift the number's 131048 hold (0 when they may)."""
    if number.block_code != 131048 or number.blocked_at is None:
        return 0.0
    ready = number.blocked_at.timestamp() + settings.SPAM_RATE_COOLDOWN_SECONDS
    return max(0.0, ready - (now or timezone.now()).timestamp())


class NumberBlockCooldown(NumberError):
    """A 131048 hold cannot be lifted yet; ``ready_at`` says when it can."""

    def __init__(self, message: str, *, ready_at):
        super().__init__(message)
        self.ready_at = ready_at


def number_block_clear(*, number: Number, user=None) -> Number:
    """A person lifts the product's hold on the number: its status is Meta's again (as
    last reported; the next refresh reads it anew). A spam-rate hold (131048) can be
    lifted only after SPAM_RATE_COOLDOWN_SECONDS: raises NumberBlockCooldown."""
    with transaction.atomic():
        locked = Number.objects.select_for_update().get(pk=number.pk)
        if locked.block_code is None:
            number.refresh_from_db()
            return number
        left = number_block_cooldown_left(locked)
        if left > 0:
            ready_at = timezone.now() + timedelta(seconds=left)
            raise NumberBlockCooldown(
                f"number {locked} was spam-rate limited by Meta (131048) at "
                f"{locked.blocked_at:%Y-%m-%d %H:%M} UTC; it can be resumed from "
                f"{ready_at:%Y-%m-%d %H:%M} UTC (in {math.ceil(left / 60)} minutes)",
                ready_at=ready_at,
            )
        locked.block_code = None
        locked.block_reason = ""
        locked.blocked_at = None
        locked.status = _status_from_meta(locked.meta_status)
        locked.save(update_fields=[*_BLOCK_FIELDS, "status"])
    logger.info("number %s: block lifted by %s", number.pk, user)
    number.refresh_from_db()
    return number


def number_test_connection(*, number: Number) -> Number:
    """Refresh what Meta reports about ``number``; a failure sets its status and last_error.

    Never raises for a Graph failure: the outcome is in ``status`` and ``last_error``.
    """
    try:
        client = number.graph_client()
    except InvalidTokenError as error:
        # Stored before tokens were checked on the way in: it must be entered again.
        number.last_error = f"the stored access token cannot be used: {error}"
        number.last_error_code = None
        number.last_checked_at = timezone.now()
        number.status = NumberStatus.TOKEN_EXPIRED
        number.save(update_fields=["last_error", "last_error_code", "last_checked_at", "status"])
        return number
    try:
        info = client.get_phone_number(number.phone_number_id)
    except GraphError as error:
        logger.info("number %s connection test failed: %r", number.pk, error)
        return number_record_graph_error(number=number, error=error, checked=True)
    _apply_info(number, info)
    number.save(update_fields=_REPORTED_FIELDS)
    return number


_UNSET: Any = object()


@sensitive_variables("access_token", "token", "probe")
def number_update(
    *,
    number: Number,
    label: str | None = None,
    access_token: str | None = None,
    max_mps_override: int | None = _UNSET,
    probe: NumberProbe | None = None,
) -> Number:
    """Change a number's label, override or token; a new token is tested with Meta first.

    A blank ``access_token`` keeps the stored one. Raises NumberInvalidError (a token
    that cannot be sent) or NumberConnectionError (Meta refuses it), changing nothing.
    """
    fields: list[str] = []
    token = (access_token or "").strip()
    if token:
        number_inputs_check(access_token=token)
    if token and token != number.access_token:
        if probe is None or (probe.phone_number_id, probe.waba_id, probe.access_token) != (
            number.phone_number_id,
            number.waba_id,
            token,
        ):
            probe = number_probe(
                phone_number_id=number.phone_number_id,
                waba_id=number.waba_id,
                access_token=token,
            )
        number.access_token = token
        _apply_info(number, probe.info)
        fields += ["access_token", *_REPORTED_FIELDS]
    if label is not None:
        number.label = label.strip()
        fields.append("label")
    if max_mps_override is not _UNSET:
        number.max_mps_override = max_mps_override
        number.apply_max_mps()
        fields += ["max_mps_override", "max_mps"]
    if fields:
        number.save(update_fields=sorted(set(fields)))
    return number


def number_delete(*, number: Number) -> None:
    """Delete ``number``; raises NumberInUseError with the reason when campaigns use it."""
    reason = number_in_use_reason(number=number)
    if reason:
        raise NumberInUseError(reason)
    try:
        number.delete()
    except ProtectedError:
        raise NumberInUseError(
            "campaign history refers to this number; it cannot be deleted"
        ) from None


def numbers_refresh_all() -> int:
    """Run the connection test of every number; returns how many were tested."""
    count = 0
    for number in Number.objects.order_by("pk").iterator():
        number_test_connection(number=number)
        count += 1
    return count
