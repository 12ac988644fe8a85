"""Admin building blocks shared by the apps."""


class ReadOnlyAdminMixin:
    """For records the system writes (events, history, what Meta reports): shown, never edited.

    Put it before the ModelAdmin base so these win over the base's permissions.
    """

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
