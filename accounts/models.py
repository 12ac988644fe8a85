"""Workspaces (tenants) and who belongs to them with which role."""

import functools
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"


# Roles that may change configuration (numbers, templates, campaigns);
# agents read everything and answer conversations.
MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


# In the tz database but not places: "localtime" is whatever the server's clock is set to,
# "Factory" a placeholder zone.
NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """The IANA zone names a workspace may use, sorted (read once from the tz database)."""
    return tuple(sorted(zoneinfo.available_timezones() - NOT_PLACES))


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            "%(value)r is not a time zone name: use an IANA name such as Asia/Kolkata, "
            "Europe/Berlin or UTC.",
            code="invalid_time_zone",
            params={"value": value},
        )


def default_time_zone() -> str:
    # A callable, so the migration does not freeze the TIME_ZONE of the machine it was
    # made on.
    return settings.TIME_ZONE


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces"
    )
    # Frequency guard (docs/deliverability.md): at most this many marketing templates per
    # contact per rolling window, across all campaigns; 0 switches it off.
    marketing_per_contact = models.PositiveSmallIntegerField(
        "marketing messages per contact",
        default=1,
        help_text="At most this many marketing templates per contact in the window, across "
        "campaigns (0: no limit). Further ones are skipped, not sent later.",
    )
    marketing_window_hours = models.PositiveSmallIntegerField(
        "frequency window (hours)", default=24
    )
    # The zone the workspace's people think in: the admin shows and reads its times
    # (schedules, "sent today") there, and the API reads a scheduled_at without an offset
    # there. Stored times stay UTC.
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text='Schedules and "today" are shown and entered in this zone.',
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """``time_zone`` as a ZoneInfo (settings.TIME_ZONE for a name the tz database no
        longer has, so a page never fails on it)."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone or settings.TIME_ZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo(settings.TIME_ZONE)


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class WorkspaceQuerySet(models.QuerySet):
    def for_user(self, user):
        """Rows of the workspaces ``user`` belongs to (nothing for anonymous users)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(workspace__memberships__user=user)


class WorkspaceOwned(models.Model):
    """Base of every domain model: it belongs to exactly one workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        abstract = True
