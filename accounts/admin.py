"""Admin for workspaces and membership (superusers manage tenants), and API tokens."""

from django import forms
from django.contrib import admin
from knox.models import AuthToken

from accounts.models import Membership, Workspace, time_zone_names


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class WorkspaceForm(forms.ModelForm):
    # A select of the tz database's names rather than free text: a typo cannot be saved.
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=lambda: [(name, name.replace("_", " ")) for name in time_zone_names()],
        help_text=Workspace._meta.get_field("time_zone").help_text,
        error_messages={
            "invalid_choice": "%(value)s is not a time zone name: choose one from the list "
            "(IANA names such as Asia/Kolkata or Europe/Berlin).",
        },
    )

    class Meta:
        model = Workspace
        fields = [
            "name",
            "slug",
            "time_zone",
            "marketing_per_contact",
            "marketing_window_hours",
        ]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceForm
    list_display = ["name", "slug", "time_zone", "created_at"]
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


# knox registers its own admin, which lists every token's full digest and offers
# an add form; ours shows only enough of the digest to tell tokens apart, and the
# token's first characters (knox's token_key, part of the secret) not at all.
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens, for superusers to see who holds one until when, and to revoke them."""

    list_display = ["digest_start", "user", "created", "expiry"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    ordering = ["-created"]
    fields = ["digest_start", "user", "created", "expiry"]
    readonly_fields = fields

    @admin.display(description="digest (start)")
    def digest_start(self, token: AuthToken) -> str:
        return f"{token.digest[:10]}…"

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request) -> bool:
        # Tokens are issued by POST /api/auth/token/ to whoever knows the password.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
