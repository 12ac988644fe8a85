"""Admin for numbers: add with a test connection, quality and tier at a glance, test action."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import MANAGER_ROLES, Workspace
from accounts.tenancy import WorkspaceScopedAdmin
from config.admin import QUALITY_WORDS, ListTitleMixin, ManagersOnlyMixin, badge, status_tone
from numbers.models import Number
from numbers.selectors import number_in_use_reason
from numbers.services import (
    NumberBlockCooldown,
    NumberError,
    NumberProbe,
    number_add,
    number_block_clear,
    number_delete,
    number_probe,
    number_test_connection,
    number_update,
)

# Where Meta shows each id (the add form's help): people paste the wrong one most often.
HELP = {
    "label": 'Your own name for this number, e.g. "Sales India". Shown in campaigns and reports.',
    "phone_number_id": (
        "Meta's id for the number, not the phone number itself: in the Meta App Dashboard, "
        'WhatsApp > API Setup, "Phone number ID" (15-16 digits); also in WhatsApp Manager > '
        "Account tools > Phone numbers, after clicking the number."
    ),
    "waba_id": (
        "The WhatsApp Business Account ID: in the App Dashboard, WhatsApp > API Setup, "
        '"WhatsApp Business Account ID" under the phone number ID; also in Business '
        "Settings > Accounts > WhatsApp accounts."
    ),
    "access_token": (
        "A permanent token of a system user: Business Settings > Users > System users > "
        "Generate new token, with the whatsapp_business_messaging and "
        "whatsapp_business_management permissions. Tested with Meta before saving, stored "
        "encrypted, never shown again."
    ),
    "max_mps_override": (
        "Leave empty: Meta's throughput for the number is used (80 messages/s, or 1000 at "
        "high throughput). Set it only to send slower on purpose."
    ),
}


def _token_field(*, required: bool, help_text: str) -> forms.CharField:
    # Never rendered with a value: a stored token is not sent back to any browser.
    return forms.CharField(
        label="Access token",
        required=required,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=help_text,
    )


class NumberAddForm(forms.ModelForm):
    """Validation checks the inputs, then runs the connection test, so an id or token that
    cannot be sent, or Meta's refusal, is a form error and nothing is saved."""

    access_token = _token_field(required=True, help_text=HELP["access_token"])
    probe: NumberProbe | None = None

    class Meta:
        model = Number
        fields = ["workspace", "label", "phone_number_id", "waba_id", "max_mps_override"]
        help_texts = {name: HELP[name] for name in fields if name in HELP}

    def clean(self):
        cleaned = super().clean()
        needed = ("workspace", "phone_number_id", "waba_id", "access_token")
        if any(not cleaned.get(name) for name in needed):
            return cleaned
        pnid = cleaned["phone_number_id"].strip()
        if Number.objects.filter(workspace=cleaned["workspace"], phone_number_id=pnid).exists():
            self.add_error("phone_number_id", "This workspace already has this number.")
            return cleaned
        try:
            self.probe = number_probe(
                phone_number_id=pnid,
                waba_id=cleaned["waba_id"],
                access_token=cleaned["access_token"],
            )
        except NumberError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


class NumberChangeForm(forms.ModelForm):
    access_token = _token_field(
        required=False,
        help_text="Leave blank to keep the current token. A new token is tested with Meta first.",
    )
    probe: NumberProbe | None = None

    class Meta:
        model = Number
        fields = ["label", "max_mps_override"]

    def clean(self):
        cleaned = super().clean()
        token = cleaned.get("access_token") or ""
        # The instance still holds the stored token here (the form copies values later).
        if token and token != self.instance.access_token:
            try:
                self.probe = number_probe(
                    phone_number_id=self.instance.phone_number_id,
                    waba_id=self.instance.waba_id,
                    access_token=token,
                )
            except NumberError as error:
                self.add_error("access_token", error.message)
        return cleaned


_REPORTED = (
    "display_phone_number",
    "verified_name",
    "quality_badge",
    "messaging_limit_tier",
    "throughput_level",
    "name_status",
    "platform_type",
    "meta_status",
    "is_on_biz_app",
    "max_mps",
    "status_badge",
    "last_checked_at",
    "last_error",
    "webhook_links",
    "created_at",
)


@admin.register(Number)
class NumberAdmin(ListTitleMixin, ManagersOnlyMixin, WorkspaceScopedAdmin):
    list_title = "Numbers"
    list_display = [
        "label",
        "display_phone_number",
        "verified_name",
        "quality_badge",
        "messaging_limit_tier",
        "max_mps",
        "status_badge",
        "last_checked_at",
        "workspace",
    ]
    list_filter = ["status", "quality_rating", "messaging_limit_tier"]
    search_fields = ["label", "display_phone_number", "verified_name", "phone_number_id"]
    actions = ["test_connection", "clear_block"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = NumberChangeForm if obj is not None else NumberAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            fields = ["workspace", "label", "phone_number_id", "waba_id", "access_token"]
            return [(None, {"fields": [*fields, "max_mps_override"]})]
        editable = ["label", "phone_number_id", "waba_id", "access_token", "max_mps_override"]
        return [
            (None, {"fields": ["workspace", *editable]}),
            ("Reported by Meta", {"fields": list(_REPORTED)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["workspace", "phone_number_id", "waba_id", *_REPORTED]

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Bulk delete would bypass the "used by campaigns" refusal of number_delete.
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        if not change:
            number = number_add(
                workspace=form.cleaned_data["workspace"],
                label=form.cleaned_data.get("label") or "",
                phone_number_id=form.cleaned_data["phone_number_id"],
                waba_id=form.cleaned_data["waba_id"],
                access_token=form.cleaned_data["access_token"],
                max_mps_override=form.cleaned_data.get("max_mps_override"),
                probe=form.probe,
            )
            obj.pk = number.pk
            obj.refresh_from_db()
            obj._state.adding = False
            return
        number_update(
            number=Number.objects.get(pk=obj.pk),
            label=form.cleaned_data.get("label") or "",
            access_token=form.cleaned_data.get("access_token") or "",
            max_mps_override=form.cleaned_data.get("max_mps_override"),
            probe=form.probe,
        )

    def delete_view(self, request, object_id, extra_context=None):
        number = self.get_object(request, unquote(object_id))
        if number is not None:
            reason = number_in_use_reason(number=number)
            if reason:
                self.message_user(request, f"{number} cannot be deleted: {reason}", messages.ERROR)
                return redirect(reverse("admin:numbers_number_change", args=[number.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        number_delete(number=obj)

    @admin.action(
        description="Clear the block (368 / 131048) so it may send", permissions=["change"]
    )
    def clear_block(self, request, queryset):
        # A person's decision the product's hold waits for; paused campaigns stay paused.
        for number in queryset.order_by("pk"):
            if not self.has_change_permission(request, number):
                self.message_user(
                    request,
                    f"{number}: only a workspace owner or admin may clear it",
                    messages.ERROR,
                )
                continue
            if number.block_code is None:
                self.message_user(request, f"{number}: not blocked", messages.INFO)
                continue
            try:
                number = number_block_clear(number=number, user=request.user)
            except NumberBlockCooldown as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            self.message_user(
                request,
                f"{number}: block lifted, now {number.get_status_display()}; resume its "
                "campaigns when ready",
                messages.SUCCESS,
            )

    @admin.action(description="Test connection (refresh from Meta)", permissions=["change"])
    def test_connection(self, request, queryset):
        # It calls Meta and writes what Meta answers: owners and admins of each number's
        # workspace only, as in the API (someone may manage one workspace and only read another).
        for number in queryset.order_by("pk"):
            if not self.has_change_permission(request, number):
                self.message_user(
                    request,
                    f"{number}: only a workspace owner or admin may test it",
                    messages.ERROR,
                )
                continue
            number = number_test_connection(number=number)
            if number.last_error:
                self.message_user(
                    request,
                    f"{number}: {number.get_status_display()}: {number.last_error}",
                    messages.WARNING,
                )
            else:
                self.message_user(
                    request,
                    f"{number}: {number.get_status_display()}, quality "
                    f"{number.quality_rating or '-'}, tier {number.messaging_limit_tier or '-'}",
                    messages.SUCCESS,
                )

    @admin.display(description="Quality", ordering="quality_rating")
    def quality_badge(self, obj: Number):
        return badge(
            QUALITY_WORDS.get(obj.quality_rating, "unknown"), status_tone(obj.quality_rating)
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Number):
        return badge(obj.get_status_display(), status_tone(obj.status))

    @admin.display(description="What Meta sent about it")
    def webhook_links(self, obj: Number):
        statuses = reverse("admin:webhooks_statusupdate_changelist")
        inbound = reverse("admin:webhooks_inboundmessage_changelist")
        return format_html(
            '<a href="{}?phone_number_id={}">Status updates</a> · '
            '<a href="{}?number__id__exact={}">Inbound messages</a>',
            statuses,
            obj.phone_number_id,
            inbound,
            obj.pk,
        )

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        # One workspace to manage: it is the only answer, so it is chosen already.
        managed = list(
            Workspace.objects.filter(
                memberships__user=request.user, memberships__role__in=MANAGER_ROLES
            ).values_list("pk", flat=True)[:2]
        )
        if len(managed) == 1:
            initial.setdefault("workspace", managed[0])
        return initial
