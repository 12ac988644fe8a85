"""Admin building blocks shared by the apps."""

from django.utils.html import format_html


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


def can_configure(user) -> bool:
    """Whether ``user`` manages numbers and templates somewhere (owner or admin)."""
    from accounts.models import MANAGER_ROLES, Membership

    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    # Asked by several admins on every page: once per request (request.user lives as long).
    cached = getattr(user, "_wac_can_configure", None)
    if cached is None:
        cached = Membership.objects.filter(user=user, role__in=MANAGER_ROLES).exists()
        user._wac_can_configure = cached
    return cached


# The tone (admin.css: .wac-ok, .wac-warn, .wac-bad, .wac-muted) of each status word the
# admin shows, whatever model it belongs to; anything else is muted.
STATUS_TONES = {
    # campaigns
    "running": "ok",
    "completed": "ok",
    "scheduled": "warn",
    "paused": "warn",
    "failed": "bad",
    "cancelled": "muted",
    "draft": "muted",
    # messages
    "read": "ok",
    "delivered": "ok",
    "sent": "ok",
    "pending": "muted",
    "sending": "warn",
    "retry_wait": "warn",
    "unknown": "warn",
    # templates
    "APPROVED": "ok",
    "PENDING": "warn",
    "IN_APPEAL": "warn",
    "FLAGGED": "warn",
    "PAUSED": "bad",
    "REJECTED": "bad",
    "DISABLED": "bad",
    # numbers: quality and connection
    "GREEN": "ok",
    "YELLOW": "warn",
    "RED": "bad",
    "active": "ok",
    "token_expired": "bad",
    "blocked": "bad",
    "disconnected": "muted",
    "flagged": "bad",
    "rate_limited": "warn",
    "auth_failed": "bad",
    # imports, syncs
    "done": "ok",
    "ok": "ok",
    "queued": "muted",
    "throttled": "warn",
    "error": "bad",
}


# A number's quality as words, so it never depends on telling colours apart.
QUALITY_WORDS = {"GREEN": "high (green)", "YELLOW": "medium (yellow)", "RED": "low (red)"}


def status_tone(value: str | None) -> str:
    return STATUS_TONES.get(value or "", "muted")


def badge(text: str, tone: str = "muted"):
    """A status as text plus colour (never colour alone); ``text`` is escaped."""
    return format_html('<span class="wac-badge wac-{}">{}</span>', tone, text)


class ManagersOnlyMixin:
    """For configuration (numbers, templates, syncs): owners and admins of a workspace see
    it; agents do not (they read campaigns and answer conversations). Put it before
    WorkspaceScopedAdmin, whose view permission lets every member read."""

    def has_module_permission(self, request) -> bool:
        return can_configure(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        if not self.has_module_permission(request):
            return False
        if obj is None or request.user.is_superuser:
            return True
        from accounts.models import MANAGER_ROLES
        from accounts.tenancy import role_in, workspace_id_of

        return role_in(request.user, workspace_id_of(obj, self.workspace_lookup)) in MANAGER_ROLES


class ListTitleMixin:
    """A list page titled with what it lists ("Numbers"), not Django's "Select number to
    change". Put it first among the bases."""

    list_title = ""

    def changelist_view(self, request, extra_context=None):
        if self.list_title:
            extra_context = {"title": self.list_title, **(extra_context or {})}
        return super().changelist_view(request, extra_context)
