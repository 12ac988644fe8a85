"""Admin for templates (read only, with a rendered preview) and each WABA's sync state."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import MANAGER_ROLES, Membership, Workspace
from accounts.tenancy import WorkspaceScopedAdmin, WorkspaceScopedTabularInline
from config.admin import ListTitleMixin, ManagersOnlyMixin, ReadOnlyAdminMixin, badge, status_tone
from numbers.models import Number
from templates_sync.models import (
    Template,
    TemplateStatus,
    TemplateStatusChange,
    WabaSync,
)
from templates_sync.preview import template_preview
from templates_sync.rendering import (
    RenderError,
    example_values,
    render_components,
)
from templates_sync.services import SyncResult, templates_sync


class RemovedFilter(admin.SimpleListFilter):
    title = "at Meta"
    parameter_name = "removed"

    def lookups(self, request, model_admin):
        return [("no", "Still at Meta"), ("yes", "Removed at Meta")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(removed_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(removed_at__isnull=False)
        return queryset


class StatusChangeInline(WorkspaceScopedTabularInline):
    model = TemplateStatusChange
    extra = 0
    can_delete = False
    fields = ["at", "old", "new", "source", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _manageable_workspaces(request) -> QuerySet[Workspace]:
    if request.user.is_superuser:
        return Workspace.objects.filter(pk__in=Number.objects.values("workspace_id"))
    return Workspace.objects.filter(
        memberships__user=request.user, memberships__role__in=MANAGER_ROLES
    )


def _report(modeladmin: admin.ModelAdmin, request, result: SyncResult) -> None:
    modeladmin.message_user(
        request,
        f"Templates synced: {result.created} created, {result.updated} updated, "
        f"{result.removed} removed.",
        messages.SUCCESS if not result.errors else messages.WARNING,
    )
    for error in result.errors:
        modeladmin.message_user(
            request,
            f"WABA {error['waba_id']}: {error['state']}: {error['message']}",
            messages.ERROR,
        )


@admin.register(Template)
class TemplateAdmin(ListTitleMixin, ReadOnlyAdminMixin, ManagersOnlyMixin, WorkspaceScopedAdmin):
    list_title = "Templates"
    # Templates come from Meta only: never added, edited or deleted here.

    list_display = [
        "name",
        "language",
        "category",
        "status_badge",
        "parameter_format",
        "header_format",
        "waba_id",
        "synced_at",
        "removed_at",
    ]
    list_filter = [
        "status",
        "category",
        "parameter_format",
        "header_format",
        RemovedFilter,
        "waba_id",
    ]
    search_fields = ["name"]
    inlines = [StatusChangeInline]
    actions = ["sync_templates"]
    # What a marketer checks first (state, Meta's reason, the bubble) at the top; the ids
    # and the JSON a developer needs folded away under "Technical details".
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "language",
                    "category",
                    "status_badge",
                    "meta_reason",
                    "sendable",
                    "preview",
                    "workspace",
                    "number",
                ]
            },
        ),
        ("Sync", {"fields": ["synced_at", "last_seen_at", "status_changed_at", "removed_at"]}),
        (
            "Technical details",
            {
                "classes": ["collapse"],
                "fields": [
                    "waba_id",
                    "meta_id",
                    "parameter_format",
                    "header_format",
                    "parameters",
                    "send_components",
                    "meta_components",
                ],
            },
        ),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # "View template" over the name said nothing the name would not.
        template = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if template is not None:
            extra.update(title=f"Template: {template.name} ({template.language})", subtitle="")
        return super().change_view(request, object_id, form_url, extra)

    def has_sync_permission(self, request) -> bool:
        return request.user.is_superuser or (
            request.user.is_staff
            and Membership.objects.filter(user=request.user, role__in=MANAGER_ROLES).exists()
        )

    def get_urls(self):
        sync = path(
            "sync/",
            self.admin_site.admin_view(self.sync_view),
            name="templates_sync_template_sync",
        )
        return [sync, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_sync": self.has_sync_permission(request)}
        return super().changelist_view(request, extra_context)

    def sync_view(self, request):
        """The changelist's "Sync templates now" button: every WABA the user manages.

        A POST (it calls Meta and writes); owners and admins only, agents get 403 as in the API.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_sync_permission(request):
            raise PermissionDenied("only workspace owners and admins sync templates")
        changelist = reverse("admin:templates_sync_template_changelist")
        total = SyncResult()
        for workspace in _manageable_workspaces(request).order_by("pk"):
            for waba in templates_sync(workspace=workspace).wabas:
                total.add(waba)
        _report(self, request, total)
        return HttpResponseRedirect(changelist)

    @admin.action(
        description="Sync templates of the selected templates' WABAs", permissions=["sync"]
    )
    def sync_templates(self, request, queryset):
        manageable = set(_manageable_workspaces(request).values_list("pk", flat=True))
        total = SyncResult()
        pairs = queryset.values_list("workspace_id", "waba_id").distinct().order_by("waba_id")
        for workspace_id, waba_id in pairs:
            if not request.user.is_superuser and workspace_id not in manageable:
                continue
            numbers = Number.objects.filter(workspace_id=workspace_id, waba_id=waba_id)
            # A usable number first: its token is the likeliest to work.
            number = min(numbers, key=lambda n: (not n.is_usable, n.pk), default=None)
            if number is None:
                self.message_user(request, f"WABA {waba_id}: no number left to sync it through.")
                continue
            for waba in templates_sync(workspace=number.workspace, number=number).wabas:
                total.add(waba)
        _report(self, request, total)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Template):
        text = obj.get_status_display() + (" (removed at Meta)" if obj.removed_at else "")
        return badge(text, "muted" if obj.removed_at else status_tone(obj.status))

    @admin.display(description="Preview (Meta's example values)")
    def preview(self, obj: Template):
        # H4's WhatsApp-style bubble; every value in it is escaped text.
        return render_to_string("templates_sync/_preview.html", {"preview": template_preview(obj)})

    @admin.display(description="can campaigns send it")
    def sendable(self, obj: Template):
        if obj.unsendable_reason:
            return badge(f"No: {obj.unsendable_reason}", "bad")
        if not obj.is_sendable:
            return badge(f"Not now: it is {obj.get_status_display().lower()}", "warn")
        return badge("Yes", "ok")

    @admin.display(description="Meta's reason")
    def meta_reason(self, obj: Template):
        """Why Meta rejected, paused or disabled the template, as Meta last said it."""
        if obj.status == TemplateStatus.APPROVED:
            return "-"
        change = (
            obj.status_changes.filter(new=obj.status).exclude(reason="").order_by("-at").first()
        )
        return change.reason if change else "Meta gave no reason."

    @admin.display(description="Send components (example values)")
    def send_components(self, obj: Template):
        try:
            rendered = render_components(obj, example_values(obj))
        except RenderError as error:
            return format_html("<em>needs values: {}</em>", ", ".join(error.problems))
        return format_html("<pre>{}</pre>", json.dumps(rendered, indent=2, ensure_ascii=False))

    @admin.display(description="Components (as Meta sent them)")
    def meta_components(self, obj: Template):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.components, indent=2, ensure_ascii=False)
        )


@admin.register(WabaSync)
class WabaSyncAdmin(ListTitleMixin, ReadOnlyAdminMixin, ManagersOnlyMixin, WorkspaceScopedAdmin):
    list_title = "Template syncs"
    list_display = [
        "waba_id",
        "state_badge",
        "number",
        "finished_at",
        "last_success_at",
        "created",
        "updated",
        "removed",
        "error",
        "workspace",
    ]
    list_filter = ["state"]
    readonly_fields = [
        "workspace",
        "waba_id",
        "number",
        "state",
        "started_at",
        "finished_at",
        "last_success_at",
        "data_as_of",
        "created",
        "updated",
        "removed",
        "error",
        "error_code",
    ]

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj: WabaSync):
        return badge(obj.get_state_display() or "never", status_tone(obj.state or "error"))
