"""Admin for the sending engine: the history of the shared send rate (read-only)."""

from django.contrib import admin

from config.admin import ReadOnlyAdminMixin
from messaging.models import RateAdjustment


@admin.register(RateAdjustment)
class RateAdjustmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """System-wide: every workspace's lanes share this one rate."""

    list_display = ["at", "old", "new", "reason"]
    list_filter = ["reason"]
    date_hierarchy = "at"

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff
