"""Writes for workspaces and membership."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from accounts.models import Membership, Role, Workspace, default_time_zone, validate_time_zone


class WorkspaceError(ValueError):
    """A workspace change that cannot be made, with the reason for a person."""


@transaction.atomic
def workspace_create(
    *,
    name: str,
    owner_username: str,
    password: str | None = None,
    time_zone: str | None = None,
) -> tuple[Workspace, bool]:
    """Creates workspace ``name`` owned by ``owner_username``.

    The user is created when missing (staff, so the admin lets them in); a
    password is required then and, when given for an existing user, replaces
    theirs. ``time_zone`` is an IANA name (settings.TIME_ZONE when not given).
    Returns the workspace and whether the user was created. Raises WorkspaceError
    when the name is blank, taken, the zone unknown, or a new user has no password.
    """
    name = name.strip()
    if not name:
        raise WorkspaceError("the workspace name is blank")
    slug = slugify(name)[:100]
    if not slug:
        raise WorkspaceError(f"the workspace name {name!r} has no letters or digits")
    if Workspace.objects.filter(slug=slug).exists():
        raise WorkspaceError(f"a workspace named {name!r} (slug {slug!r}) already exists")
    time_zone = (time_zone or "").strip() or default_time_zone()
    try:
        validate_time_zone(time_zone)
    except ValidationError as error:
        raise WorkspaceError(error.messages[0]) from None

    user_model = get_user_model()
    user = user_model.objects.filter(username=owner_username).first()
    created = user is None
    if created:
        if not password:
            raise WorkspaceError(
                f"user {owner_username!r} does not exist: give --password to create it"
            )
        user = user_model.objects.create_user(username=owner_username, password=password)
    elif password:
        user.set_password(password)
    user.is_staff = True
    user.save()

    workspace = Workspace.objects.create(name=name, slug=slug, time_zone=time_zone)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    return workspace, created


def membership_add(*, workspace: Workspace, user, role: Role) -> Membership:
    """Adds ``user`` to ``workspace`` with ``role`` (or changes their role)."""
    membership, _ = Membership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership
