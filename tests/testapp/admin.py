from django.contrib import admin

from accounts.tenancy import WorkspaceScopedAdmin
from tests.testapp.models import Gadget


@admin.register(Gadget)
class GadgetAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace"]
    list_filter = ["workspace"]  # a relation's filter, scoped by WorkspaceScopedAdmin
    fields = ["workspace", "name", "api_key"]
