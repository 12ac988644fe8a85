"""Admin for webhook data: raw events (read-only, superusers, with "reprocess"), refused
POSTs (counters and the last few, superusers) and the inbound messages of each workspace."""

from __future__ import annotations

import contextlib
import json

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html

from accounts.models import MANAGER_ROLES, Workspace
from accounts.tenancy import WorkspaceScopedAdmin
from config.admin import ReadOnlyAdminMixin, can_configure
from numbers.models import Number
from webhooks.ingest import webhook_event_process
from webhooks.models import (
    InboundMessage,
    StatusUpdate,
    WebhookEvent,
    WebhookRefusalCount,
    WebhookRefusalSample,
)
from webhooks.parse import storable_text


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    """Raw events span every workspace, so only superusers see them."""

    list_display = ["id", "received_at", "status", "signature_valid", "short_outcome", "error"]
    list_filter = ["status", "signature_valid"]
    search_fields = ["dedupe_key", "error"]
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    fields = [
        "received_at",
        "status",
        "signature_valid",
        "attempts",
        "processed_at",
        "error",
        "outcome",
        "headers",
        "dedupe_key",
        "pretty_body",
    ]
    readonly_fields = fields

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_reprocess_permission(self, request) -> bool:
        return request.user.is_superuser

    @admin.display(description="outcome")
    def short_outcome(self, event: WebhookEvent) -> str:
        return ", ".join(f"{key} {value}" for key, value in sorted(event.outcome.items()))

    @admin.display(description="body")
    def pretty_body(self, event: WebhookEvent) -> str:
        return _pre(event.body_bytes)

    @admin.action(description="Reprocess selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset) -> None:
        done = refused = 0
        for event_id in queryset.order_by("pk").values_list("pk", flat=True):
            event = webhook_event_process(event_id=event_id, force=True)
            if event is None or not event.signature_valid:
                refused += 1
            else:
                done += 1
        self.message_user(request, f"Reprocessed {done} event(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"{refused} event(s) with a bad signature were not processed.",
                messages.WARNING,
            )


@admin.register(StatusUpdate)
class StatusUpdateAdmin(ReadOnlyAdmin):
    """What Meta reported about each message. Superusers see all; owners and admins see
    those of their workspaces' messages and numbers (agents read the messages instead)."""

    list_display = [
        "at",
        "status",
        "message_key",
        "recipient",
        "phone_number_id",
        "outcome",
        "note",
    ]
    list_filter = ["status", "outcome"]
    search_fields = ["message_key", "wa_id"]
    raw_id_fields = ["recipient", "event"]
    list_select_related = ["recipient"]
    show_full_result_count = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        managed = Workspace.objects.filter(
            memberships__user=request.user, memberships__role__in=MANAGER_ROLES
        )
        their_numbers = Number.objects.filter(workspace__in=managed).values("phone_number_id")
        return queryset.filter(
            Q(recipient__campaign__workspace__in=managed)
            | Q(recipient__isnull=True, phone_number_id__in=their_numbers)
        )

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # The raw event can hold other workspaces' data: superusers only.
        return fields if request.user.is_superuser else [f for f in fields if f != "event"]

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # The number page links here by its phone number id (the queryset stays scoped).
        return lookup == "phone_number_id" or super().lookup_allowed(lookup, value, request)

    def has_module_permission(self, request) -> bool:
        return can_configure(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    list_display = ["at", "number", "wa_id", "contact_name", "type", "text", "campaign"]
    list_filter = ["type", "number"]
    search_fields = ["wa_id", "contact_name", "text", "message_id"]
    date_hierarchy = "at"
    list_select_related = ["number", "campaign"]
    readonly_fields = [
        "workspace",
        "number",
        "event",
        "message_id",
        "wa_id",
        "contact_name",
        "type",
        "text",
        "payload",
        "media",
        "context_wamid",
        "raw",
        "at",
        "received_at",
        "recipient",
        "campaign",
    ]


def _pre(body: bytes) -> str:
    """``body`` for a person: indented when it is JSON, always encodable (a lone surrogate
    escaped in the JSON would make the page itself fail to encode)."""
    text = body.decode("utf-8", "replace")
    with contextlib.suppress(ValueError, RecursionError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", storable_text(text)[0])


class SuperuserOnlyAdmin(ReadOnlyAdmin):
    """What anyone on the internet sent us spans every workspace: superusers only."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(WebhookRefusalCount)
class WebhookRefusalCountAdmin(SuperuserOnlyAdmin):
    list_display = ["hour", "reason", "count", "last_at"]
    list_filter = ["reason"]
    date_hierarchy = "hour"


@admin.register(WebhookRefusalSample)
class WebhookRefusalSampleAdmin(SuperuserOnlyAdmin):
    list_display = ["number", "received_at", "reason", "remote_addr", "content_length"]
    list_filter = ["reason"]
    fields = [
        "number",
        "received_at",
        "reason",
        "remote_addr",
        "content_length",
        "headers",
        "body_start",
    ]
    readonly_fields = fields

    @admin.display(description="body (first bytes)")
    def body_start(self, sample: WebhookRefusalSample) -> str:
        return _pre(sample.body_bytes)
