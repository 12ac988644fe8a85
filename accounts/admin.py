"""Admin for workspaces and membership (superusers manage tenants)."""

from django.contrib import admin

from accounts.models import Membership, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(memberships__user=request.user)

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser or (
            request.user.is_staff and request.user.memberships.exists()
        )

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)
