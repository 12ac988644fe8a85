"""Admin for campaigns: split and counts, audit trail, CSV upload, pre-flight, imports, recipients."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.tenancy import WorkspaceScopedAdmin, WorkspaceScopedTabularInline
from campaigns import selectors, services
from campaigns.csvio import CsvFileError
from campaigns.importer import ImportBusy, ImportRefused
from campaigns.models import (
    EDITABLE_STATES,
    Campaign,
    CampaignEvent,
    CampaignStatus,
    CampaignTemplate,
    ImportJob,
    ImportStatus,
    Recipient,
    Suppression,
)
from campaigns.preflight import campaign_preflight
from campaigns.services import CampaignStateError
from config.admin import ReadOnlyAdminMixin


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file")


class CampaignTemplateFormSet(forms.BaseInlineFormSet):
    """Checks the campaign's templates, numbers and mapping with the service's rules.

    The admin saves the campaign itself, so the rules campaign_create applies
    (same workspace and WABA, sendable templates, a mapping that names real
    parameters) are applied here, with the numbers the campaign form chose.
    """

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return
        templates = [
            (form.cleaned_data["template"], form.cleaned_data.get("weight") or 0)
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        campaign = self.instance
        numbers = getattr(campaign, "admin_numbers", None)
        if numbers is None:
            numbers = list(campaign.numbers.all()) if campaign.pk else []
        try:
            services.campaign_setup_check(
                workspace_id=campaign.workspace_id,
                numbers=numbers,
                templates=templates,
                variable_mapping=campaign.variable_mapping,
            )
        except services.CampaignInvalid as error:
            raise forms.ValidationError(f"{error.field}: {error.message}") from None


def _schedule_time_valid(value) -> None:
    if value is None:
        return
    try:
        services.campaign_schedule_time_check(value)
    except services.CampaignInvalid as error:
        raise forms.ValidationError(error.message) from None


def _has_contacts(campaign) -> bool:
    return campaign is not None and campaign.pk is not None and campaign.recipients.exists()


class CampaignTemplateInline(WorkspaceScopedTabularInline):
    model = CampaignTemplate
    formset = CampaignTemplateFormSet
    extra = 0
    min_num = 1
    autocomplete_fields: list[str] = []

    def has_change_permission(self, request, obj=None):
        # Fixed once contacts are imported: each contact was checked against its template.
        return obj is None or (obj.status in EDITABLE_STATES and not _has_contacts(obj))

    def has_view_permission(self, request, obj=None):
        # Whoever may open the campaign (CampaignAdmin checks) may see its templates.
        return True

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


class CampaignEventInline(WorkspaceScopedTabularInline):
    model = CampaignEvent
    extra = 0
    fields = ["at", "user", "from_status", "to_status", "reason"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "Audit trail"

    def has_add_permission(self, request, obj=None):
        return False


# An import's state and counts, as the campaign page and the imports list show them.
IMPORT_COUNTS = [
    "status",
    "progress_shown",
    "data_rows",
    "accepted",
    "rejected",
    "duplicates",
    "suppressed",
]


class ImportJobInline(WorkspaceScopedTabularInline):
    model = ImportJob
    extra = 0
    fields = ["created_at", "filename", *IMPORT_COUNTS, "error"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "Imports"

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress_shown(self, job):
        return f"{job.progress}%"


@admin.register(Campaign)
class CampaignAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "status", "contacts", "scheduled_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    filter_horizontal = ["numbers"]
    inlines = [CampaignTemplateInline, ImportJobInline, CampaignEventInline]
    actions = [
        "start_selected",
        "pause_selected",
        "resume_selected",
        "cancel_selected",
        "resend_unknown_selected",
    ]
    readonly_fields = [
        "status",
        "counts_shown",
        "split_shown",
        "pause_reason",
        "created_by",
        "created_at",
        "started_at",
        "paused_at",
        "completed_at",
    ]
    fields = [
        "workspace",
        "name",
        "numbers",
        "variable_mapping",
        "scheduled_at",
        *readonly_fields,
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status not in EDITABLE_STATES:
            return [*self.fields]
        if _has_contacts(obj):
            # Contacts were checked with this mapping and spread over these
            # numbers; the API's campaign update re-spreads them when numbers change.
            return [*self.readonly_fields, "numbers", "variable_mapping"]
        return self.readonly_fields

    def save_form(self, request, form, change):
        campaign = super().save_form(request, form, change)
        if "numbers" in form.cleaned_data:
            # For CampaignTemplateFormSet.clean: the numbers are saved after the inlines check.
            campaign.admin_numbers = list(form.cleaned_data["numbers"])
        return campaign

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(contacts_count=Count("recipients"))

    @admin.display(description="contacts", ordering="contacts_count")
    def contacts(self, campaign):
        return campaign.contacts_count

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "scheduled_at" in form.base_fields:
            form.base_fields["scheduled_at"].validators.append(_schedule_time_valid)
            form.base_fields["scheduled_at"].help_text = (
                "Set a time to schedule the campaign (it starts by itself after a passing "
                "pre-flight); clear it to return it to draft."
            )
        return form

    def save_model(self, request, obj, form, change):
        """Saves the settings; the schedule goes through the services, with its audit trail."""
        if not change:
            obj.created_by = request.user
        schedule = obj.scheduled_at
        obj.scheduled_at = (
            Campaign.objects.values_list("scheduled_at", flat=True).get(pk=obj.pk)
            if change
            else None
        )
        super().save_model(request, obj, form, change)
        if "scheduled_at" in form.changed_data:
            self._reschedule(request, obj, schedule)

    def _reschedule(self, request, campaign, scheduled_at):
        try:
            if scheduled_at is None:
                if campaign.status == CampaignStatus.SCHEDULED:
                    services.campaign_unschedule(
                        campaign=campaign, user=request.user, reason="from the admin"
                    )
            elif campaign.status == CampaignStatus.DRAFT:
                services.campaign_schedule(
                    campaign=campaign, user=request.user, scheduled_at=scheduled_at
                )
            else:
                services.campaign_update(
                    campaign=campaign, user=request.user, scheduled_at=scheduled_at
                )
        except (CampaignStateError, services.CampaignInvalid) as error:
            messages.error(request, f"{campaign}: not scheduled: {error}")

    @admin.display(description="contacts by status")
    def counts_shown(self, campaign):
        if campaign.pk is None:
            return "no contacts yet"
        counts = selectors.campaign_counts([campaign.pk])[campaign.pk]
        shown = [(key, value) for key, value in counts.items() if value]
        return format_html(
            "{}% done; {}",
            selectors.progress_of(counts),
            format_html_join(", ", "{}: {}", shown) if shown else "no contacts",
        )

    @admin.display(description="split")
    def split_shown(self, campaign):
        if campaign.pk is None:
            return "no contacts yet"
        split = selectors.campaign_split([campaign.pk])[campaign.pk]
        templates = format_html_join(
            ", ",
            "{} (weight {}): {}",
            ((t["name"], t["weight"], t["contacts"]) for t in split["templates"]),
        )
        numbers = format_html_join(
            ", ", "{}: {}", ((n["label"], n["contacts"]) for n in split["numbers"])
        )
        return format_html("templates: {}<br>numbers: {}", templates, numbers)

    # -- tools: upload and pre-flight -------------------------------------------------

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/upload/",
                self.admin_site.admin_view(self.upload_view),
                name="campaigns_campaign_upload",
            ),
            path(
                "<path:object_id>/preflight/",
                self.admin_site.admin_view(self.preflight_view),
                name="campaigns_campaign_preflight",
            ),
        ]
        return own + super().get_urls()

    def _campaign(self, request, object_id) -> Campaign:
        campaign = self.get_queryset(request).filter(pk=unquote(object_id)).first()
        if campaign is None:
            raise Http404
        return campaign

    def upload_view(self, request, object_id):
        campaign = self._campaign(request, object_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                job = services.contacts_upload(
                    campaign=campaign, user=request.user, upload=form.cleaned_data["file"]
                )
            except CsvFileError as error:
                form.add_error("file", str(error))
            except (ImportRefused, ImportBusy) as error:
                messages.error(request, str(error))
            else:
                if job.status == ImportStatus.QUEUED:
                    messages.info(request, f"Import {job.pk} queued: its progress shows below.")
                else:
                    messages.success(
                        request,
                        f"{job.accepted} accepted, {job.rejected} rejected, {job.duplicates} "
                        f"duplicates, {job.suppressed} suppressed of {job.data_rows} rows.",
                    )
                    if job.rejected + job.duplicates + job.suppressed:
                        link = reverse("campaign-import-errors-csv", args=[campaign.pk])
                        messages.info(
                            request,
                            format_html('Every row not imported: <a href="{}">download</a>', link),
                        )
                return redirect("admin:campaigns_campaign_change", campaign.pk)
        return TemplateResponse(
            request,
            "admin/campaigns/campaign/tool.html",
            {
                **self.admin_site.each_context(request),
                "campaign": campaign,
                "title": "Upload contacts",
                "form": form,
                "opts": self.model._meta,
            },
        )

    def preflight_view(self, request, object_id):
        """GET: the "Run pre-flight" button; POST runs it (it tests the numbers and re-syncs
        the templates with Meta, which writes what Meta answers). Owners and admins only,
        as in the API: agents get 403 either way."""
        campaign = self._campaign(request, object_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        preflight = campaign_preflight(campaign=campaign) if request.method == "POST" else None
        return TemplateResponse(
            request,
            "admin/campaigns/campaign/tool.html",
            {
                **self.admin_site.each_context(request),
                "campaign": campaign,
                "title": "Pre-flight check",
                "run_preflight": True,
                "preflight": preflight,
                "opts": self.model._meta,
            },
        )

    # -- state changes ----------------------------------------------------------------

    def _apply(self, request, queryset, service, done: str):
        for campaign in queryset:
            if not self.has_change_permission(request, campaign):
                messages.error(request, f"{campaign}: only a workspace owner or admin may do this")
                continue
            try:
                service(campaign=campaign, user=request.user, reason="from the admin")
            except CampaignStateError as error:
                messages.error(request, f"{campaign}: {error.reason}")
            else:
                messages.success(request, f"{campaign}: {done}")

    @admin.action(description="Resend messages whose outcome is unknown (may duplicate some)")
    def resend_unknown_selected(self, request, queryset):
        for campaign in queryset:
            if not self.has_change_permission(request, campaign):
                messages.error(request, f"{campaign}: only a workspace owner or admin may do this")
                continue
            try:
                count = services.recipients_resend_unknown(campaign=campaign, user=request.user)
            except services.ResendError as error:
                messages.error(request, f"{campaign}: {error}")
            else:
                messages.success(request, f"{campaign}: {count} unknown messages put back in line")

    @admin.action(description="Start selected campaigns")
    def start_selected(self, request, queryset):
        self._apply(request, queryset, services.campaign_start, "started")

    @admin.action(description="Pause selected campaigns")
    def pause_selected(self, request, queryset):
        self._apply(request, queryset, services.campaign_pause, "paused")

    @admin.action(description="Resume selected campaigns")
    def resume_selected(self, request, queryset):
        self._apply(request, queryset, services.campaign_resume, "resumed")

    @admin.action(description="Cancel selected campaigns")
    def cancel_selected(self, request, queryset):
        self._apply(request, queryset, services.campaign_cancel, "cancelled")


class ReadOnlyAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """Rows the import and the engine write: deleting one would make the counters lie."""


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdmin):
    workspace_lookup = "campaign__workspace"
    list_display = [
        "phone",
        "campaign",
        "template",
        "number",
        "status",
        "attempts",
        "error_code",
        "error_title",
        "sent_at",
    ]
    list_filter = ["status", "error_code", "campaign__status"]
    search_fields = ["=phone", "=wamid"]
    list_select_related = ["campaign", "template", "number"]
    # Counting a million rows on every page view is what makes admin lists slow.
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    workspace_lookup = "campaign__workspace"
    list_display = ["pk", "campaign", "filename", *IMPORT_COUNTS, "created_at"]
    list_filter = ["status"]
    exclude = ["recipient_id_floor"]

    @admin.display(description="progress")
    def progress_shown(self, job):
        return f"{job.progress}%"


class SuppressionForm(forms.ModelForm):
    phone = forms.CharField(max_length=64)

    class Meta:
        model = Suppression
        fields = ["workspace", "phone", "reason", "source"]

    def clean(self):
        data = super().clean()
        workspace = data.get("workspace")
        if workspace is not None and not self.instance.pk:
            try:
                data["phone"] = services.suppression_check(
                    workspace=workspace, phone=data.get("phone") or ""
                )
            except services.SuppressionError as error:
                self.add_error("phone", str(error))
        return data


@admin.register(Suppression)
class SuppressionAdmin(WorkspaceScopedAdmin):
    form = SuppressionForm
    list_display = ["phone", "workspace", "source", "reason", "created_at"]
    list_filter = ["source"]
    search_fields = ["phone"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # Through the service, so the contact's unsent messages are cancelled too.
        created = services.suppression_create(
            workspace=obj.workspace, phone=obj.phone, reason=obj.reason, source=obj.source
        )
        obj.pk = created.pk
