"""What a failed send does beyond its own row, the same whether Meta said it in the send's
answer (``messaging.lanes``) or in a ``failed`` status webhook (``webhooks.statuses``).

The consequence is read off the one error table (``messaging.graph.ERROR_TABLE``);
the campaign rules it triggers are the campaigns' services (pause through
``campaigns.services.lifecycle``, so notifications follow). The per-phone marketing
back-off (131049) is a Redis marker that the lanes read at claim time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from django.conf import settings
from redis import exceptions as redis_exceptions

from campaigns.models import Campaign
from campaigns.services.lifecycle import campaigns_pause_for_number
from campaigns.services.outcomes import (
    account_pause_for_error,
    campaign_pause_for_template_change,
    campaign_pause_for_template_error,
    number_pause_for_error,
    number_stop_for_error,
    recipient_suppress_for_error,
)
from config.redis import get_redis
from messaging.breakers import Trip
from messaging.graph import ERROR_TABLE, Consequence, GraphError, error_explanation
from templates_sync.models import Template

logger = logging.getLogger(__name__)

BACKOFF_PREFIX = "backoff:marketing:"


def backoff_key(workspace_id: int, phone: str) -> str:
    return f"{BACKOFF_PREFIX}{workspace_id}:{phone}"


def recipient_backoff_set(*, workspace_id: int, phone: str, seconds: int | None = None) -> float:
    """No marketing template to ``phone`` from any campaign of the workspace for
    ``seconds`` (RECIPIENT_BACKOFF_SECONDS): returns the time it ends (epoch seconds)."""
    seconds = int(seconds or settings.RECIPIENT_BACKOFF_SECONDS)
    until = time.time() + seconds
    get_redis().set(backoff_key(workspace_id, phone), f"{until:.3f}", ex=seconds)
    return until


def recipients_backed_off(workspace_id: int, phones: Iterable[str]) -> dict[str, float]:
    """The phones of ``phones`` backed off in the workspace, with when each back-off ends."""
    phones = list(dict.fromkeys(phones))
    if not phones:
        return {}
    values = get_redis().mget([backoff_key(workspace_id, phone) for phone in phones])
    now = time.time()
    found = {}
    for phone, value in zip(phones, values, strict=True):
        if value is not None and float(value) > now:
            found[phone] = float(value)
    return found


def failure_apply(
    *,
    error: GraphError,
    number_id: int,
    campaign_id: int,
    phone: str,
    template_id: int,
    workspace_id: int | None = None,
) -> Consequence:
    """Apply what the table says ``error`` does beyond its row; returns the consequence.

    Row-level outcomes (retry, wait, fail) are the caller's: the lane and the webhooks
    write rows differently, but decide them from the same consequence.
    """
    consequence = error.rule.consequence
    if consequence is Consequence.STOP_NUMBER:
        number_stop_for_error(number_id=number_id, error=error)
    elif consequence is Consequence.PAUSE_NUMBER:
        number_pause_for_error(number_id=number_id, error=error)
    elif consequence is Consequence.PAUSE_ACCOUNT:
        account_pause_for_error(number_id=number_id, error=error)
    elif consequence is Consequence.PAUSE_CAMPAIGN:
        campaign_pause_for_template_error(
            campaign_id=campaign_id,
            template_name=Template.objects.values_list("name", flat=True).get(pk=template_id),
            error=error,
        )
    elif consequence is Consequence.TEMPLATE_CHANGED:
        campaign_pause_for_template_change(
            campaign_id=campaign_id, template_id=template_id, error=error
        )
    elif consequence is Consequence.SUPPRESS:
        recipient_suppress_for_error(
            campaign_id=campaign_id, phone=phone, code=error.code, message=error.message
        )
    elif consequence is Consequence.BACKOFF_RECIPIENT:
        if workspace_id is None:
            workspace_id = Campaign.objects.values_list("workspace_id", flat=True).get(
                pk=campaign_id
            )
        try:
            recipient_backoff_set(workspace_id=workspace_id, phone=phone)
        except redis_exceptions.RedisError:
            # The row is failed with the code already; only the hold of the others is lost.
            logger.warning("could not record the marketing back-off of a phone")
    return consequence


def breaker_trip_apply(trip: Trip) -> list[int]:
    """A breaker tripped on a number: its running campaigns pause with the reason."""
    if trip.code in ERROR_TABLE:
        reason = f"paused by the breaker: {trip.reason} ({error_explanation(trip.code)})"
    else:
        reason = f"paused by the breaker: {trip.reason}"
    paused = campaigns_pause_for_number(number_id=trip.number_id, reason=reason)
    logger.warning("breaker tripped on number %s: %s", trip.number_id, trip.reason)
    return paused
