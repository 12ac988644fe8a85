"""Reads of notifications for a user: what they may see, what they have not read."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from accounts.tenancy import scope
from notifications.models import Event, Notification, NotificationRead


def notifications_for(user) -> QuerySet[Notification]:
    """The notifications of the user's workspaces, newest first."""
    return scope(Notification.objects.all(), user).order_by("-created_at", "-pk")


def notifications_with_read_at(user) -> QuerySet[Notification]:
    """``notifications_for`` with ``read_at``: when this user read each (None: unread)."""
    read = NotificationRead.objects.filter(notification=OuterRef("pk"), user=user)
    return notifications_for(user).annotate(read_at=Subquery(read.values("read_at")[:1]))


def unread_count(user) -> int:
    """The bell's number: the user's unread notifications (tests of a channel excluded)."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return notifications_for(user).exclude(event=Event.TEST).exclude(reads__user=user).count()
