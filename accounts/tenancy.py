"""The one mechanism that scopes every API query and admin list to the caller's workspaces.

API views mix in ``WorkspaceScopedMixin``; admin classes inherit
``WorkspaceScopedAdmin``. Both filter by membership, so another workspace's
object is simply not found (404), never forbidden (403): a refusal must not
confirm that the object exists.
"""

from django.contrib import admin
from django.db.models import Model, QuerySet
from rest_framework import exceptions, permissions

from accounts.models import MANAGER_ROLES, Membership, Workspace

WORKSPACE_HEADER = "X-Workspace"


def scope(queryset: QuerySet, user, lookup: str = "workspace") -> QuerySet:
    """``queryset`` narrowed to rows whose ``lookup`` is a workspace ``user`` belongs to."""
    if not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{f"{lookup}__memberships__user": user})


def workspace_id_of(obj: Model, lookup: str = "workspace") -> int:
    """The workspace id of ``obj``, following ``lookup`` (e.g. ``campaign__workspace``)."""
    *path, last = lookup.split("__")
    for part in path:
        obj = getattr(obj, part)
    return getattr(obj, f"{last}_id")


def role_in(user, workspace: Workspace | int) -> str | None:
    workspace_id = workspace.pk if isinstance(workspace, Workspace) else workspace
    return (
        Membership.objects.filter(user=user, workspace_id=workspace_id)
        .values_list("role", flat=True)
        .first()
    )


def resolve_workspace(user, requested: str | None) -> Workspace:
    """The workspace a write goes to.

    With one membership it is implied; with several the client names it (the
    ``X-Workspace`` header or ``workspace`` query parameter, by id or slug).
    Raises ValidationError when ambiguous or not one of the user's.
    """
    memberships = Workspace.objects.filter(memberships__user=user)
    if requested:
        field = "pk" if requested.isdigit() else "slug"
        workspace = memberships.filter(**{field: requested}).first()
        if workspace is None:
            raise exceptions.ValidationError(
                {"workspace": [f"you are not a member of workspace {requested!r}"]}
            )
        return workspace
    found = list(memberships[:2])
    if len(found) == 1:
        return found[0]
    if not found:
        raise exceptions.PermissionDenied("you are not a member of any workspace")
    raise exceptions.ValidationError(
        {
            "workspace": [
                f"you belong to several workspaces: name one in the {WORKSPACE_HEADER} header"
            ]
        }
    )


class IsWorkspaceManagerOrReadOnly(permissions.BasePermission):
    """Owners and admins write; agents read. Checked per object's workspace."""

    message = "only a workspace owner or admin may change this"

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return role_in(request.user, view.workspace_of(obj)) in MANAGER_ROLES


class WorkspaceScopedMixin:
    """For DRF generic views: scoped queryset, workspace set on create, role check."""

    workspace_lookup = "workspace"
    # Role needed to create; the object-level permission covers the rest.
    create_roles = MANAGER_ROLES

    def get_queryset(self):
        return scope(super().get_queryset(), self.request.user, self.workspace_lookup)

    def get_permissions(self):
        return [*super().get_permissions(), IsWorkspaceManagerOrReadOnly()]

    def request_workspace(self) -> Workspace:
        requested = self.request.headers.get(WORKSPACE_HEADER) or self.request.query_params.get(
            "workspace"
        )
        return resolve_workspace(self.request.user, requested)

    def workspace_of(self, obj: Model) -> int:
        return workspace_id_of(obj, self.workspace_lookup)

    def perform_create(self, serializer):
        workspace = self.request_workspace()
        if role_in(self.request.user, workspace) not in self.create_roles:
            raise exceptions.PermissionDenied(IsWorkspaceManagerOrReadOnly.message)
        serializer.save(workspace=workspace)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["workspace_scope"] = lambda qs, lookup="workspace": scope(
            qs, self.request.user, lookup
        )
        return context


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Admin for a workspace-owned model: members see and edit only their workspaces.

    Staff users are granted access by their membership role instead of
    per-model Django permissions: owners and admins change, agents view.
    """

    workspace_lookup = "workspace"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return scope(queryset, request.user, self.workspace_lookup)

    def _roles(self, request) -> set[str]:
        return set(Membership.objects.filter(user=request.user).values_list("role", flat=True))

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser or bool(request.user.is_staff and self._roles(request))

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        if obj is not None:
            return (
                role_in(request.user, workspace_id_of(obj, self.workspace_lookup)) in MANAGER_ROLES
            )
        return bool(request.user.is_staff and self._roles(request) & MANAGER_ROLES)

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if db_field.name == "workspace" and not request.user.is_superuser:
            kwargs["queryset"] = Workspace.objects.filter(
                memberships__user=request.user, memberships__role__in=MANAGER_ROLES
            )
        elif not request.user.is_superuser and _has_workspace(related):
            kwargs["queryset"] = scope(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if not request.user.is_superuser and _has_workspace(related):
            kwargs["queryset"] = scope(related._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def _has_workspace(model) -> bool:
    return any(field.name == "workspace" for field in model._meta.get_fields())
