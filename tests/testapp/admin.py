from django.contrib import admin

from accounts.tenancy import WorkspaceScopedAdmin
from tests.testapp.models import Gadget


@admin.register(Gadget)
class GadgetAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace"]
    list_filter = ["workspace"]  # a relation's filter, scoped by WorkspaceScopedAdmin
    fields = ["workspace", "name", "api_key"]

    def has_module_permission(self, request) -> bool:
        # A test fixture, not a product page: no entry in the dashboard's "All pages" (the
        # browser suite's screenshots showed "Testapp > Gadgets"). Its pages still open.
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_module_permission(request)
