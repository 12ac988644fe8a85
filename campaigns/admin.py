"""Admin for campaigns: split and counts, audit trail, CSV upload, pre-flight, imports, recipients."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts.models import MANAGER_ROLES, Workspace
from accounts.selectors import user_zone
from accounts.tenancy import (
    WorkspaceScopedAdmin,
    WorkspaceScopedTabularInline,
    role_in,
    view_in_zone,
)
from campaigns import dashboard, services
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
from campaigns.phones import InvalidPhone, normalize_phone
from campaigns.preflight import campaign_preflight
from campaigns.rates import campaign_current_rate
from campaigns.services import CampaignStateError
from campaigns.wizard import Wizard, parameter_label
from config.admin import ListTitleMixin, ReadOnlyAdminMixin, badge, can_configure, status_tone
from messaging.graph import error_explanation
from templates_sync.models import Template, TemplateStatus
from templates_sync.preview import template_preview

# Campaigns whose page keeps polling: their numbers can still change.
LIVE_STATES = frozenset(
    {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED}
)
# What each button does, and the states it is offered in (the service has the last word).
ACTIONS = {
    "start": (services.campaign_start, "started", {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED}),
    "pause": (services.campaign_pause, "paused", {CampaignStatus.RUNNING}),
    "resume": (services.campaign_resume, "resumed", {CampaignStatus.PAUSED}),
    "cancel": (services.campaign_cancel, "cancelled", LIVE_STATES),
}


# A finished campaign's settings, read-only below the live panel (which shows the status).
FINISHED_FIELDS = [
    "workspace",
    "name",
    "numbers",
    "mapping_shown",
    "scheduled_at",
    "created_by",
    "created_at",
    "started_at",
    "completed_at",
]


def mapping_lines(campaign: Campaign) -> list[dict]:
    """Where each template parameter of ``campaign`` is read from in the CSV."""
    mapping = campaign.variable_mapping or {}
    lines = []
    for use in campaign.campaign_templates.select_related("template").order_by("pk"):
        template = use.template
        explicit = mapping.get(str(template.pk)) or {}
        for parameter in template.parameters or []:
            column = explicit.get(parameter)
            lines.append(
                {
                    "template": f"{template.name} ({template.language})",
                    "parameter": parameter_label(template, parameter),
                    "source": f"column {column}"
                    if column
                    else "the column named like the parameter",
                }
            )
    return lines


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


class CampaignTemplateForm(forms.ModelForm):
    """Offers approved templates only (plus the one already chosen, marked with its state):
    a campaign with any other cannot start."""

    class Meta:
        model = CampaignTemplate
        fields = ["template", "weight"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("template")
        if field is None:
            return
        chosen = self.instance.template_id if self.instance.pk else None
        field.queryset = field.queryset.filter(
            Q(status=TemplateStatus.APPROVED, removed_at__isnull=True) | Q(pk=chosen)
        ).order_by("name", "language")
        field.label_from_instance = _template_choice_label
        field.help_text = "Approved templates only: Meta refuses to send any other."


def _template_choice_label(template: Template) -> str:
    if template.is_sendable:
        return f"{template.name} ({template.language}, {template.category.lower()})"
    state = "removed at Meta" if template.removed_at else template.status
    return f"{template.name} ({template.language}): {state}, cannot be sent"


class CampaignTemplateInline(WorkspaceScopedTabularInline):
    model = CampaignTemplate
    form = CampaignTemplateForm
    formset = CampaignTemplateFormSet
    extra = 0
    min_num = 1
    autocomplete_fields: list[str] = []

    def has_change_permission(self, request, obj=None):
        # Fixed once contacts are imported: each contact was checked against its template.
        # Owners and admins only: an agent's page shows the templates read-only.
        if obj is None:
            return True
        if not (
            request.user.is_superuser or role_in(request.user, obj.workspace_id) in MANAGER_ROLES
        ):
            return False
        return obj.status in EDITABLE_STATES and not _has_contacts(obj)

    def has_view_permission(self, request, obj=None):
        # Whoever may open the campaign (CampaignAdmin checks) may see its templates.
        return True

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission

    def get_fields(self, request, obj=None):
        # A template's name links to its page, which only owners and admins may open:
        # agents get the name as text instead of a link to a 403.
        if can_configure(request.user):
            return ["template", "weight"]
        return ["template_name", "weight"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "template_name"]

    @admin.display(description="template")
    def template_name(self, use):
        return str(use.template)


class CampaignEventInline(WorkspaceScopedTabularInline):
    model = CampaignEvent
    extra = 0
    fields = ["at", "user", "from_status", "to_status", "reason"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "Audit trail"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Everyone who may open the campaign (CampaignAdmin checks the workspace) sees
        # its history; Django's model permissions would hide it from owners.
        return True


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

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True

    @admin.display(description="progress")
    def progress_shown(self, job):
        return f"{job.progress}%"


@admin.register(Campaign)
class CampaignAdmin(ListTitleMixin, WorkspaceScopedAdmin):
    list_title = "Campaigns"
    list_display = ["name", "workspace", "status_badge", "contacts", "scheduled_at", "created_at"]
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
    # Counts, split and progress are in the live panel above the form (live_context).
    readonly_fields = [
        "status",
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

    @admin.display(description="status", ordering="status")
    def status_badge(self, campaign):
        return badge(campaign.get_status_display(), status_tone(campaign.status))

    def has_delete_permission(self, request, obj=None):
        # campaign_delete refuses a campaign that has started: offer no Delete there.
        if obj is not None and obj.status not in EDITABLE_STATES:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        services.campaign_delete(campaign=obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Bulk delete would skip campaign_delete's state check.
        actions.pop("delete_selected", None)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The page of one workspace's campaign: its times in that workspace's zone.
        campaign = (
            self.get_queryset(request)
            .select_related("workspace")
            .filter(pk=unquote(object_id))
            .first()
        )
        zone = campaign.workspace.zone if campaign is not None else None
        return view_in_zone(
            request, zone, self._change_view, request, campaign, object_id, form_url, extra_context
        )

    def add_view(self, request, form_url="", extra_context=None):
        # Before a workspace is chosen, the zone is known only when all the user's
        # workspaces share one; the chosen workspace's zone reads the posted time.
        zone = user_zone(request.user)
        wanted = request.POST.get("workspace", "")
        if request.method == "POST" and wanted.isascii() and wanted.isdigit():
            visible = Workspace.objects.all()
            if not request.user.is_superuser:
                visible = visible.filter(memberships__user=request.user)
            chosen = visible.filter(pk=wanted).first()
            if chosen is not None:
                zone = chosen.zone
        return view_in_zone(request, zone, super().add_view, request, form_url, extra_context)

    def _change_view(self, request, campaign, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if campaign is not None:
            extra.update(self.live_context(request, campaign))
            # "Change campaign" over a finished campaign (or an agent's read-only page) is
            # wrong, and the name under it repeated what the title should say.
            extra.update(title=f"Campaign: {campaign.name}", subtitle="")
            if campaign.status not in EDITABLE_STATES:
                # Nothing on the page can be changed any more: no Save buttons either.
                extra.update(
                    show_save=False, show_save_and_continue=False, show_save_and_add_another=False
                )
            else:
                extra["show_save_and_add_another"] = False
        return super().change_view(request, object_id, form_url, extra)

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.fields
        if obj.status not in EDITABLE_STATES:
            # The live panel above shows the status and why it paused; repeating them
            # here (and the settings as form fields) only adds a second, stale copy.
            return [*FINISHED_FIELDS]
        if _has_contacts(obj):
            return [f if f != "variable_mapping" else "mapping_shown" for f in self.fields]
        # Editable: the readable lines above the JSON a person may still change.
        at = self.fields.index("variable_mapping")
        return [*self.fields[:at], "mapping_shown", *self.fields[at:]]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status not in EDITABLE_STATES:
            return [*FINISHED_FIELDS]
        if _has_contacts(obj):
            # Contacts were checked with this mapping and spread over these
            # numbers; the API's campaign update re-spreads them when numbers change.
            return [*self.readonly_fields, "numbers", "mapping_shown"]
        return [*self.readonly_fields, "mapping_shown"]

    @admin.display(description="CSV columns for the templates")
    def mapping_shown(self, campaign):
        """The variable mapping as a marketer reads it: one line per template parameter,
        "seasonal_promo (en_US): Body {{1}} <- column first_name"."""
        lines = mapping_lines(campaign)
        if not lines:
            return "No template parameters to fill."
        return format_html_join(
            "",
            "<div>{}: {} &larr; {}</div>",
            ((line["template"], line["parameter"], line["source"]) for line in lines),
        )

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
            zone_name = getattr(request, "wac_time_zone", None)
            where = (
                f"In {zone_name} time (the workspace's time zone)."
                if zone_name
                else "In the chosen workspace's time zone."
            )
            form.base_fields["scheduled_at"].help_text = (
                f"{where} Set a future time to schedule "
                "the campaign (it starts by itself after a passing pre-flight); clear it to "
                "return it to draft."
            )
        if "variable_mapping" in form.base_fields:
            field = form.base_fields["variable_mapping"]
            field.label = "Column mapping (advanced)"
            ids = ", ".join(
                f"{use.template.name} = {use.template_id}"
                for use in (obj.campaign_templates.select_related("template") if obj else [])
            )
            field.help_text = (
                "Optional. The Contacts step of the new-campaign wizard sets this by dropdown. "
                "By hand: JSON keyed by template number"
                + (f" (this campaign's: {ids})" if ids else "")
                + ', e.g. {"1": {"body.1": "first_name"}}. Without it, columns named like the '
                "parameters (1, first_name, header, button.0) are used."
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

    # -- tools: upload and pre-flight -------------------------------------------------

    # -- the live panel: progress, funnel, A/B, buttons --------------------------------

    def live_context(self, request, campaign) -> dict:
        """What the campaign page's live panel shows (rendered again at every poll)."""
        funnel = dashboard.campaign_funnel(campaign.pk)
        rate = (
            campaign_current_rate(campaign.pk) if campaign.status == CampaignStatus.RUNNING else 0.0
        )
        can_act = self.has_change_permission(request, campaign)
        failures = [
            {**failure, "explanation": error_explanation(failure["code"], failure["title"])}
            for failure in funnel["failures"]
        ]
        return {
            "campaign": campaign,
            "funnel": funnel,
            "failures": failures,
            "breakdown": dashboard.campaign_breakdown(campaign),
            "rate": round(rate, 1),
            "eta_seconds": dashboard.eta_seconds(funnel["remaining"], rate)
            if campaign.status == CampaignStatus.RUNNING
            else None,
            "live": campaign.status in LIVE_STATES,
            "status_tone": status_tone(campaign.status),
            "actions": [
                verb for verb, (_, _, states) in ACTIONS.items() if campaign.status in states
            ]
            if can_act
            else [],
            "can_act": can_act,
            "messages_url": reverse("admin:campaigns_recipient_changelist")
            + f"?campaign__id__exact={campaign.pk}",
            "has_import_errors": campaign.imports.filter(
                Q(rejected__gt=0) | Q(duplicates__gt=0) | Q(suppressed__gt=0)
            ).exists(),
            "time_zone": timezone.get_current_timezone_name(),
        }

    def live_view(self, request, object_id):
        """The polled fragment (every 3 s while the campaign can change). 286 tells htmx to
        stop polling once the campaign is finished."""
        campaign = self._campaign(request, object_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        response = view_in_zone(
            request,
            campaign.workspace.zone,
            lambda: TemplateResponse(
                request,
                "admin/campaigns/campaign/_live.html",
                self.live_context(request, campaign),
            ),
        )
        if campaign.status not in LIVE_STATES:
            response.status_code = 286
        return response

    def action_view(self, request, object_id, verb):
        """Start / Pause / Resume / Cancel: a POST through the same services as the API; a
        refusal is shown with its reason and changes nothing."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if verb not in ACTIONS:
            raise Http404
        campaign = self._campaign(request, object_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied("only a workspace owner or admin may do this")
        service, done, _ = ACTIONS[verb]
        try:
            service(campaign=campaign, user=request.user, reason="from the admin")
        except CampaignStateError as error:
            messages.error(request, f"Not {done}: {error.reason}")
        else:
            messages.success(request, f"{campaign}: {done}.")
        return redirect("admin:campaigns_campaign_change", campaign.pk)

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/live/",
                self.admin_site.admin_view(self.live_view),
                name="campaigns_campaign_live",
            ),
            path(
                "<path:object_id>/act/<str:verb>/",
                self.admin_site.admin_view(self.action_view),
                name="campaigns_campaign_act",
            ),
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
        # The new-campaign wizard (campaigns/wizard.py), before the admin's own patterns.
        return Wizard(self).urls() + own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        # "Add campaign" opens the wizard (change_list.html); the plain add form stays reachable.
        wizard_url = reverse("admin:campaigns_campaign_wizard")
        extra_context = {**(extra_context or {}), "wizard_url": wizard_url}
        return super().changelist_view(request, extra_context)

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


class ErrorCodeFilter(admin.SimpleListFilter):
    """The error codes of the user's own messages, each with its plain-words meaning."""

    title = "error"
    parameter_name = "error_code"

    def lookups(self, request, model_admin):
        codes = (
            model_admin.get_queryset(request)
            .filter(error_code__isnull=False)
            .order_by("error_code")
            .values_list("error_code", flat=True)
            .distinct()
        )
        return [(str(code), f"{code}: {_short(error_explanation(code))}") for code in codes]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isascii() or not value.lstrip("-").isdigit():
            return queryset.none()
        return queryset.filter(error_code=int(value))


def titled_filter(title: str):
    """A choices filter with its own title: the messages list filters on two fields both
    named "status" (the message's and its campaign's), which Django titles alike."""

    class TitledFilter(admin.ChoicesFieldListFilter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    return TitledFilter


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def phone_candidates(term: str, region: str) -> list[str]:
    """E.164 forms ``term`` may mean: as typed in ``region`` (a national number, or with
    '+'), or digits that start with a country code but lack the '+'."""
    found = []
    digits = "".join(ch for ch in term if ch.isdigit())
    for raw in (term, f"+{digits}" if digits else ""):
        if not raw:
            continue
        try:
            found.append(normalize_phone(raw, region))
        except InvalidPhone:
            continue
    return list(dict.fromkeys(found))


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdmin):
    """The messages: one row per contact of a campaign and the one message it gets."""

    workspace_lookup = "campaign__workspace"
    list_display = [
        "phone",
        "campaign",
        "template",
        "number",
        "status_badge",
        "error_shown",
        "sent_at",
    ]
    list_filter = [
        "campaign",
        ("status", titled_filter("message status")),
        "template",
        "number",
        ErrorCodeFilter,
        ("campaign__status", titled_filter("campaign status")),
    ]
    search_fields = ["=phone", "=wamid"]
    search_help_text = (
        "A phone number, with or without + and country code (e.g. 98765 43210 or "
        "+91 98765 43210), or a message id (wamid)."
    )
    list_select_related = ["campaign", "template", "number"]
    # Counting a million rows on every page view is what makes admin lists slow.
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["campaign", "phone", "status_badge", "template", "number"]}),
        ("What was sent", {"fields": ["text_sent", "variables"]}),
        (
            "Outcome",
            {
                "fields": [
                    "error_shown",
                    "error_details",
                    "attempts",
                    "wamid",
                    "sent_at",
                    "delivered_at",
                    "read_at",
                    "failed_at",
                    "replied_at",
                ]
            },
        ),
        (
            "Engine internals",
            {
                "classes": ["collapse"],
                "fields": ["row_number", "next_attempt_at", "claim_token", "claimed_at"],
            },
        ),
    ]
    readonly_fields = [
        "campaign",
        "phone",
        "status_badge",
        "template",
        "number",
        "text_sent",
        "variables",
        "error_shown",
        "error_details",
        "attempts",
        "wamid",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "replied_at",
        "row_number",
        "next_attempt_at",
        "claim_token",
        "claimed_at",
    ]

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # A "recipient" is the product's word for what a marketer calls a message.
        return super().changelist_view(request, {"title": "Messages", **(extra_context or {})})

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term and not term.startswith("wamid") and any(ch.isdigit() for ch in term):
            phones = phone_candidates(term, settings.DEFAULT_PHONE_REGION)
            if phones:
                return queryset.filter(phone__in=phones), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="status", ordering="status")
    def status_badge(self, recipient):
        return badge(recipient.get_status_display(), status_tone(recipient.status))

    @admin.display(description="error", ordering="error_code")
    def error_shown(self, recipient):
        if recipient.error_code is None and not recipient.error_title:
            return "-"
        explanation = error_explanation(recipient.error_code, recipient.error_title)
        if recipient.error_code is None:
            return explanation
        return format_html(
            '{} <span class="wac-help">(code {})</span>', explanation, recipient.error_code
        )

    @admin.display(description="text")
    def text_sent(self, recipient):
        """The message as the contact reads it: the template filled with this row's values."""
        preview = template_preview(recipient.template, recipient.variables)
        return render_to_string("templates_sync/_preview.html", {"preview": preview})


@admin.register(ImportJob)
class ImportJobAdmin(ListTitleMixin, ReadOnlyAdmin):
    list_title = "Contact imports"
    workspace_lookup = "campaign__workspace"
    list_display = [
        "import_shown",
        "campaign",
        "filename",
        "status_badge",
        *IMPORT_COUNTS[1:],
        "created_at",
    ]
    list_filter = ["status"]
    exclude = ["recipient_id_floor"]

    @admin.display(description="import", ordering="pk")
    def import_shown(self, job):
        return f"Import {job.pk}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, job):
        return badge(job.get_status_display(), status_tone(job.status))

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
class SuppressionAdmin(ListTitleMixin, WorkspaceScopedAdmin):
    list_title = "Opted-out phones (never sent to)"
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

    # Removing one is an opt-in: through the service, so it is recorded.
    def delete_model(self, request, obj):
        services.suppression_delete(suppression=obj, reason=f"removed by {request.user}")

    def delete_queryset(self, request, queryset):
        for suppression in queryset:
            services.suppression_delete(
                suppression=suppression, reason=f"removed by {request.user}"
            )
