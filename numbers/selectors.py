"""Reads about numbers that other apps' state decides (which campaigns use a number)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import apps

if TYPE_CHECKING:
    from numbers.models import Number

# Campaign states in which a campaign still sends, or will, through its numbers.
ACTIVE_CAMPAIGN_STATES = ("running", "paused", "scheduled")


def number_in_use_reason(*, number: Number) -> str | None:
    """Why ``number`` must not be deleted now, or None when nothing active uses it."""
    # Looked up by name: campaigns depends on numbers, not the other way round.
    campaign_model = apps.get_model("campaigns", "Campaign")
    names = list(
        campaign_model._default_manager.filter(numbers=number, status__in=ACTIVE_CAMPAIGN_STATES)
        .order_by("pk")
        .values_list("name", flat=True)[:6]
    )
    if not names:
        return None
    shown = ", ".join(repr(name) for name in names[:5])
    more = " and more" if len(names) > 5 else ""
    return (
        f"campaigns {shown}{more} are scheduled, running or paused on this number; "
        "finish or cancel them first"
    )
