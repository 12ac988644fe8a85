"""Admin: the notifications list (read per user), channels with their deliveries and
attempts, "send a test" and "rotate secret"; everything scoped to the user's workspaces.

A webhook secret is shown on the one page that answers its creation or rotation,
never stored in a message, a cookie or a form.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.tenancy import WorkspaceScopedAdmin, WorkspaceScopedTabularInline
from config.admin import ReadOnlyAdminMixin
from notifications.delivery import channel_test
from notifications.models import (
    SUBSCRIBABLE_EVENTS,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Event,
    Notification,
    NotificationRead,
    Severity,
)
from notifications.services import (
    ChannelInvalid,
    channel_create,
    channel_rotate_secret,
    channel_update,
    notifications_mark_read,
)

_SEVERITY_TONES = {Severity.INFO: "muted", Severity.WARNING: "warn", Severity.CRITICAL: "bad"}
_DELIVERY_TONES = {
    DeliveryStatus.DELIVERED: "ok",
    DeliveryStatus.PENDING: "warn",
    DeliveryStatus.FAILED: "bad",
    DeliveryStatus.CANCELLED: "muted",
}


def _badge(text: str, tone: str):
    return format_html('<span class="wac-badge wac-{}">{}</span>', tone, text)


class ReadFilter(admin.SimpleListFilter):
    title = "read by me"
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("no", "Unread"), ("yes", "Read")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(is_read=False)
        if self.value() == "yes":
            return queryset.filter(is_read=True)
        return queryset


class NotificationDeliveryInline(ReadOnlyAdminMixin, WorkspaceScopedTabularInline):
    model = Delivery
    extra = 0
    fields = [
        "channel",
        "status_badge",
        "attempts",
        "last_attempt_at",
        "next_attempt_at",
        "answer",
        "attempt_link",
    ]
    readonly_fields = fields
    verbose_name_plural = "deliveries"

    @admin.display(description="status")
    def status_badge(self, delivery):
        return _badge(delivery.get_status_display(), _DELIVERY_TONES.get(delivery.status, "muted"))

    @admin.display(description="attempts")
    def attempt_link(self, delivery):
        url = reverse("admin:notifications_delivery_change", args=[delivery.pk])
        return format_html('<a href="{}">every attempt</a>', url)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    list_display = ["read_mark", "created_at", "severity_badge", "title", "event", "workspace"]
    list_display_links = ["title"]
    list_filter = [ReadFilter, "severity", "event"]
    search_fields = ["title", "body"]
    actions = ["mark_read"]
    fields = [
        "workspace",
        "created_at",
        "event",
        "severity_badge",
        "title",
        "body",
        "links",
        "held_back",
        "data",
    ]
    readonly_fields = fields
    inlines = [NotificationDeliveryInline]
    change_list_template = "admin/notifications/notification/change_list.html"

    def get_queryset(self, request):
        reads = NotificationRead.objects.filter(notification=OuterRef("pk"), user=request.user)
        return super().get_queryset(request).annotate(is_read=Exists(reads))

    @admin.display(description="", boolean=False)
    def read_mark(self, notification):
        if notification.is_read:
            return ""
        return _badge("new", "bad")

    @admin.display(description="severity", ordering="severity")
    def severity_badge(self, notification):
        return _badge(
            notification.get_severity_display(), _SEVERITY_TONES.get(notification.severity, "muted")
        )

    @admin.display(description="about")
    def links(self, notification):
        items = [item for item in notification.objects_ref if isinstance(item, dict)]
        if not items:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{} {}</a>',
            (
                (item.get("admin_url") or "#", item.get("type", ""), item.get("name", ""))
                for item in items
            ),
        )

    @admin.action(description="Mark selected notifications read")
    def mark_read(self, request, queryset):
        marked = notifications_mark_read(
            user=request.user, notification_ids=queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{marked} notification(s) marked read.")

    def get_urls(self):
        return [
            path(
                "mark-all-read/",
                self.admin_site.admin_view(self.mark_all_read_view),
                name="notifications_notification_mark_all_read",
            ),
            *super().get_urls(),
        ]

    def mark_all_read_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        marked = notifications_mark_read(user=request.user)
        self.message_user(request, f"{marked} notification(s) marked read.")
        return HttpResponseRedirect(reverse("admin:notifications_notification_changelist"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and getattr(response, "status_code", 0) == 200:
            # Opening a notification is reading it.
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                notifications_mark_read(user=request.user, notification_ids=[obj.pk])
        return response


class ChannelForm(forms.ModelForm):
    target = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=(
            "E-mail: comma-separated addresses and/or role:owner, role:admin, role:agent "
            "(those members' addresses). Webhook: the endpoint's https URL (Standard Webhooks). "
            "Slack: the incoming webhook URL."
        ),
    )
    events = forms.MultipleChoiceField(
        choices=[
            (event.value, event.label) for event in Event if event.value in SUBSCRIBABLE_EVENTS
        ],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Leave all unticked to receive every event.",
    )

    class Meta:
        model = Channel
        fields = ["workspace", "name", "kind", "target", "events", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["kind"].disabled = True
            if self.instance.kind == ChannelKind.SLACK:
                # The hook's URL is its credential: not sent back to the browser.
                self.fields["target"].required = False
                self.fields["target"].initial = ""
                self.initial["target"] = ""
                self.fields["target"].help_text = "Leave empty to keep the current hook URL."

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind") or self.instance.kind
        target = cleaned.get("target")
        if not target and self.instance.pk and self.instance.kind == ChannelKind.SLACK:
            cleaned["target"] = self.instance.target
            return cleaned
        if kind and target:
            from notifications.services import _clean_target

            try:
                cleaned["target"] = _clean_target(kind, target)
            except ChannelInvalid as error:
                self.add_error(error.field, error.message)
        return cleaned


class ChannelDeliveryInline(ReadOnlyAdminMixin, WorkspaceScopedTabularInline):
    model = Delivery
    extra = 0
    fields = [
        "notification",
        "status_badge",
        "attempts",
        "last_attempt_at",
        "next_attempt_at",
        "answer",
        "duration_ms",
        "attempt_link",
    ]
    readonly_fields = fields
    verbose_name_plural = "latest deliveries"
    ordering = ["-pk"]
    max_num = 0

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("notification")
        # The latest 50: a long-lived channel has thousands.
        ids = list(queryset.order_by("-pk").values_list("pk", flat=True)[:50])
        return queryset.filter(pk__in=ids)

    status_badge = NotificationDeliveryInline.status_badge
    attempt_link = NotificationDeliveryInline.attempt_link


@admin.register(Channel)
class ChannelAdmin(WorkspaceScopedAdmin):
    form = ChannelForm
    list_display = ["__str__", "kind", "target_shown", "subscriptions", "active_badge", "workspace"]
    list_filter = ["kind", "active"]
    readonly_fields = ["secret_state", "disabled_at", "disabled_reason", "created_at"]
    inlines = [ChannelDeliveryInline]
    change_form_template = "admin/notifications/channel/change_form.html"

    def get_fields(self, request, obj=None):
        fields = ["workspace", "name", "kind", "target", "events", "active"]
        if obj is not None:
            fields += ["secret_state", "disabled_at", "disabled_reason", "created_at"]
        return fields

    @admin.display(description="target")
    def target_shown(self, channel):
        if channel.kind == ChannelKind.SLACK:
            from notifications.api import mask_slack_url

            return mask_slack_url(channel.target)
        return channel.target

    @admin.display(description="events")
    def subscriptions(self, channel):
        return ", ".join(channel.events) if channel.events else "all"

    @admin.display(description="active", ordering="active")
    def active_badge(self, channel):
        if channel.active:
            return _badge("active", "ok")
        return _badge(
            "disabled" if channel.disabled_at else "off", "bad" if channel.disabled_at else "muted"
        )

    @admin.display(description="secret")
    def secret_state(self, channel):
        if channel.kind != ChannelKind.WEBHOOK:
            return "-"
        if channel.previous_secret and channel.previous_secret_until:
            return f"set; the previous secret also signs until {channel.previous_secret_until:%Y-%m-%d %H:%M} UTC"
        return "set (shown once when created or rotated)"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            channel_update(
                channel=obj,
                target=data["target"],
                events=list(data.get("events") or []),
                active=data.get("active", True),
                name=data.get("name", ""),
            )
            return
        channel, secret = channel_create(
            workspace=data["workspace"],
            kind=data["kind"],
            target=data["target"],
            events=list(data.get("events") or []),
            active=data.get("active", True),
            name=data.get("name", ""),
        )
        obj.pk = channel.pk
        obj.refresh_from_db()
        request._notification_secret = secret

    def save_related(self, request, form, formsets, change):
        # The only inline is read-only; nothing related to save.
        return None

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_notification_secret", None)
        if secret:
            return self._secret_page(request, obj, secret, created=True)
        return super().response_add(request, obj, post_url_continue)

    def _secret_page(self, request, channel, secret, *, created: bool):
        context = {
            **self.admin_site.each_context(request),
            "title": "Webhook secret",
            "channel": channel,
            "secret": secret,
            "created": created,
            "opts": self.model._meta,
            "change_url": reverse("admin:notifications_channel_change", args=[channel.pk]),
        }
        response = TemplateResponse(request, "admin/notifications/channel/secret.html", context)
        # Never kept by a browser or a proxy.
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self):
        return [
            path(
                "<path:object_id>/test/",
                self.admin_site.admin_view(self.test_view),
                name="notifications_channel_test",
            ),
            path(
                "<path:object_id>/rotate-secret/",
                self.admin_site.admin_view(self.rotate_view),
                name="notifications_channel_rotate",
            ),
            *super().get_urls(),
        ]

    def _changeable(self, request, object_id) -> Channel:
        if request.method != "POST":
            raise Http404("POST only")
        channel = self.get_object(request, unquote(object_id))
        if channel is None:
            raise Http404("no such channel")
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        return channel

    def test_view(self, request, object_id):
        channel = self._changeable(request, object_id)
        delivery = channel_test(channel=channel, user=request.user)
        level = messages.SUCCESS if delivery.status == DeliveryStatus.DELIVERED else messages.ERROR
        self.message_user(
            request, f"Test {delivery.get_status_display().lower()}: {delivery.answer}", level
        )
        return HttpResponseRedirect(
            reverse("admin:notifications_channel_change", args=[channel.pk])
        )

    def rotate_view(self, request, object_id):
        channel = self._changeable(request, object_id)
        try:
            secret = channel_rotate_secret(channel=channel)
        except ChannelInvalid as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:notifications_channel_change", args=[channel.pk])
            )
        return self._secret_page(request, channel, secret, created=False)


class DeliveryAttemptInline(ReadOnlyAdminMixin, WorkspaceScopedTabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ["at", "ok", "status_code", "answer", "duration_ms"]
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_lookup = "channel__workspace"
    list_display = [
        "pk",
        "notification",
        "channel",
        "status",
        "attempts",
        "last_attempt_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "channel__kind"]
    fields = [
        "notification",
        "channel",
        "status",
        "attempts",
        "last_attempt_at",
        "next_attempt_at",
        "answer",
        "duration_ms",
        "created_at",
    ]
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]

    def has_module_permission(self, request) -> bool:
        # Reached from a channel or a notification, not from the index.
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return WorkspaceScopedAdmin.has_module_permission(self, request)
