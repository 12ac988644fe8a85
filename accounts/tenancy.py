"""The one mechanism that scopes every API query and admin list to the caller's workspaces.

API views mix in ``WorkspaceScopedMixin``; admin classes inherit
``WorkspaceScopedAdmin`` (and their inlines ``WorkspaceScopedTabularInline`` or
``WorkspaceScopedStackedInline``). Both filter by membership, so another
workspace's object is simply not found (404), never forbidden (403): a refusal
must not confirm that the object exists. In the admin the same goes for every
choice offered: form fields, list filters and their values.
"""

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.exceptions import ValidationError
from django.db.models import BooleanField, DateField, Model, QuerySet
from django.template.response import SimpleTemplateResponse
from django.utils import timezone
from rest_framework import exceptions, permissions

from accounts.models import MANAGER_ROLES, Membership, Workspace
from accounts.selectors import user_zone
from config.inputs import is_ascii_digits

WORKSPACE_HEADER = "X-Workspace"


def view_in_zone(request, zone, view, *args, **kwargs):
    """Runs an admin view with ``zone`` active (None: settings.TIME_ZONE) and renders its page
    inside it, so the times its forms read and its page shows are in that zone: a
    TemplateResponse would otherwise render after the view returned, in the default zone.
    ``request.wac_time_zone`` names the zone for help texts (None when not one zone)."""
    request.wac_time_zone = zone.key if zone is not None else None
    with timezone.override(zone):
        response = view(*args, **kwargs)
        if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
            response.render()
    return response


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
        # str.isdigit() accepts "²" and other digits int() refuses: a 500 for a header.
        field = "pk" if is_ascii_digits(requested) else "slug"
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


def visible_choices(model, request, admin_site) -> QuerySet | None:
    """The rows of ``model`` that the admin may offer ``request.user`` as choices.

    Workspaces they belong to; workspace-owned rows of those; rows that
    ``model``'s own scoped admin lists; users who share a workspace with them.
    None when no rule applies (the model holds nothing of a workspace).
    """
    user = request.user
    if model is Workspace:
        return Workspace.objects.filter(memberships__user=user)
    if _has_workspace(model):
        return scope(model._default_manager.all(), user)
    try:
        model_admin = admin_site.get_model_admin(model)
    except NotRegistered:
        model_admin = None
    if isinstance(model_admin, WorkspaceScopedAdmin):
        return model_admin.get_queryset(request)
    if model is get_user_model():
        return model._default_manager.filter(memberships__workspace__memberships__user=user)
    return None


class WorkspaceScopedChoices:
    """Foreign-key and many-to-many form fields offer only the user's workspaces' objects.

    For ModelAdmins (through ``WorkspaceScopedAdmin``) and their inlines
    (``WorkspaceScopedTabularInline``, ``WorkspaceScopedStackedInline``);
    superusers are offered everything. A ``workspace`` field offers only the
    workspaces the user manages: that is where the object is written.
    """

    def _scoped_choices(self, db_field, request, kwargs: dict) -> None:
        if request.user.is_superuser or "queryset" in kwargs:
            return
        related = db_field.related_model
        if related is Workspace:
            kwargs["queryset"] = Workspace.objects.filter(
                memberships__user=request.user, memberships__role__in=MANAGER_ROLES
            )
            return
        visible = visible_choices(related, request, self.admin_site)
        if visible is not None:
            kwargs["queryset"] = related._default_manager.filter(pk__in=visible.values("pk"))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        self._scoped_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        self._scoped_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A relation's list filter that offers only what the user may see (all for superusers)."""

    def field_choices(self, field, request, model_admin):
        if request.user.is_superuser:
            return super().field_choices(field, request, model_admin)
        visible = visible_choices(field.related_model, request, model_admin.admin_site)
        if visible is None:
            # Only what the (scoped) rows of this list point to.
            visible = model_admin.get_queryset(request).values(f"{self.field_path}__pk")
        else:
            visible = visible.values("pk")
        return field.get_choices(
            include_blank=False,
            limit_choices_to={"pk__in": visible},
            ordering=self.field_admin_ordering(field, request, model_admin),
        )


class ScopedAllValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """A filter on a related model's field lists the values of the user's rows only.

    Django's own takes the values from every row of the related model.
    """

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        if not request.user.is_superuser:
            self.lookup_choices = (
                model_admin.get_queryset(request)
                .order_by(field_path)
                .values_list(field_path, flat=True)
                .distinct()
            )


def _scoped_list_filter(model, entry):
    """``entry`` of ``list_filter`` with Django's filter swapped for its scoped twin, if any."""
    if isinstance(entry, str):
        field = get_fields_from_path(model, entry)[-1]
        if field.is_relation:
            return (entry, ScopedRelatedFieldListFilter)
        static = field.choices or isinstance(field, (BooleanField, DateField))
        if "__" in entry and not static:
            return (entry, ScopedAllValuesFieldListFilter)
        return entry
    if isinstance(entry, (list, tuple)):
        path, filter_class = entry
        if filter_class in (admin.RelatedFieldListFilter, admin.RelatedOnlyFieldListFilter):
            return (path, ScopedRelatedFieldListFilter)
        if filter_class is admin.AllValuesFieldListFilter:
            return (path, ScopedAllValuesFieldListFilter)
    return entry


class WorkspaceScopedAdmin(WorkspaceScopedChoices, admin.ModelAdmin):
    """Admin for a workspace-owned model: members see and edit only their workspaces.

    Staff users are granted access by their membership role instead of
    per-model Django permissions: owners and admins change, agents view.
    Choices are scoped too: form fields (``WorkspaceScopedChoices``), list
    filters on relations, and values of related fields. Inlines must be
    scoped as well (system check ``accounts.E001``).
    """

    workspace_lookup = "workspace"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return scope(queryset, request.user, self.workspace_lookup)

    def get_list_filter(self, request):
        return [
            _scoped_list_filter(self.model, entry) for entry in super().get_list_filter(request)
        ]

    # Times on a page of one workspace's object are in that workspace's zone; on a list,
    # in the zone of the user's workspaces when they share one (Workspace.time_zone).

    def change_view(self, request, object_id, form_url="", extra_context=None):
        view = super().change_view
        if hasattr(request, "wac_time_zone"):  # a subclass already chose the zone
            return view(request, object_id, form_url, extra_context)
        return view_in_zone(
            request,
            self._object_zone(request, object_id),
            view,
            request,
            object_id,
            form_url,
            extra_context,
        )

    def changelist_view(self, request, extra_context=None):
        view = super().changelist_view
        if hasattr(request, "wac_time_zone"):
            return view(request, extra_context)
        return view_in_zone(request, user_zone(request.user), view, request, extra_context)

    def _object_zone(self, request, object_id):
        try:
            name = (
                self.get_queryset(request)
                .filter(pk=unquote(object_id))
                .values_list(f"{self.workspace_lookup}__time_zone", flat=True)
                .first()
            )
        except (ValidationError, ValueError):
            return None
        return Workspace(time_zone=name).zone if name else None

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        for inline in self.inlines:
            if not issubclass(inline, WorkspaceScopedChoices):
                errors.append(
                    checks.Error(
                        f"{inline.__name__} would offer every workspace's objects as choices.",
                        hint="Base it on WorkspaceScopedTabularInline or "
                        "WorkspaceScopedStackedInline (accounts.tenancy).",
                        obj=type(self),
                        id="accounts.E001",
                    )
                )
        return errors

    def _roles(self, request) -> set[str]:
        # Asked by every registered admin on every page (the nav sidebar lists them all):
        # once per request.
        cached = getattr(request, "_workspace_roles", None)
        if cached is None:
            cached = set(
                Membership.objects.filter(user=request.user).values_list("role", flat=True)
            )
            request._workspace_roles = cached
        return cached

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


class WorkspaceScopedTabularInline(WorkspaceScopedChoices, admin.TabularInline):
    """A tabular inline of a ``WorkspaceScopedAdmin``: its choices are scoped the same way."""


class WorkspaceScopedStackedInline(WorkspaceScopedChoices, admin.StackedInline):
    """A stacked inline of a ``WorkspaceScopedAdmin``: its choices are scoped the same way."""


def _has_workspace(model) -> bool:
    return any(field.name == "workspace" for field in model._meta.get_fields())
