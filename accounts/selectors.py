"""Reads about workspaces that several apps share."""

from __future__ import annotations

import zoneinfo

from accounts.models import Workspace


def user_zone(user) -> zoneinfo.ZoneInfo | None:
    """The time zone of ``user``'s workspaces when they all have the same one (a user of one
    workspace: its zone); None when they have none, or workspaces in different zones (the
    caller then keeps settings.TIME_ZONE)."""
    if not getattr(user, "is_authenticated", False):
        return None
    names = set(
        Workspace.objects.filter(memberships__user=user).values_list("time_zone", flat=True)
    )
    if len(names) != 1:
        return None
    return Workspace(time_zone=names.pop()).zone
