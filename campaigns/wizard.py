"""The new-campaign wizard: five admin pages that build a campaign through the API's services.

1. setup: name, numbers (active only), templates (approved only, previewed) and weights
   (``campaign_create`` / ``campaign_update``);
2. contacts: a CSV is staged, its phone column and each template parameter are picked
   from its headers (that is the campaign's ``variable_mapping``), the first rows are
   previewed as the messages they become, then it is imported (``contacts_upload``);
3. imported: the import's counts and its downloadable errors;
4. preflight: ``campaign_preflight``'s problems and warnings;
5. launch: ``campaign_start`` now or ``campaign_schedule`` at a time in the workspace's zone.

The campaign is a draft from step 1 on, so a refused step loses nothing: the user fixes
the input or goes back. Views are CampaignAdmin's (``wizard_urls``), behind its
permissions: owners and admins of the campaign's workspace.

A staged file waits in the default file storage (``wizard/<campaign id>/...``) between
the upload and the import; its name and first rows are kept in the session. One never
imported is deleted after WIZARD_UPLOAD_TTL_HOURS (``wizard_uploads_prune``, hourly).
"""

from __future__ import annotations

import csv
import io
import secrets
import tempfile
import zoneinfo
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from accounts.models import MANAGER_ROLES, Workspace
from campaigns import services
from campaigns.csvio import (
    PHONE_COLUMNS,
    CsvFileError,
    CsvReader,
    csv_stream,
    detect_encoding,
    is_phone_column,
    normalize_header,
    phone_column_index,
)
from campaigns.importer import MAX_RECORD_CHARS, ImportBusy, ImportRefused, build_plan
from campaigns.models import Campaign, CampaignStatus, ImportJob, ImportStatus
from campaigns.phones import InvalidPhone, normalize_phone
from campaigns.preflight import campaign_preflight
from numbers.models import Number, NumberStatus
from templates_sync.models import Template, TemplateStatus
from templates_sync.preview import template_preview
from templates_sync.rendering import RenderError, example_values, render_components

if TYPE_CHECKING:
    from campaigns.admin import CampaignAdmin

STEPS = [
    ("setup", "Name, numbers, templates"),
    ("contacts", "Contacts"),
    ("imported", "Import result"),
    ("preflight", "Pre-flight"),
    ("launch", "Start"),
]
PREVIEW_ROWS = 3
SAMPLE_PHONES = ("+919800000001", "+919800000002")
MAX_WEIGHT = 1000
# Shown instead of a column the file does not have.
NOT_IN_FILE = ""


def workspace_zone(workspace: Workspace) -> zoneinfo.ZoneInfo:
    """The zone a workspace's times are shown and entered in (``Workspace.time_zone``)."""
    return workspace.zone


def _manager_workspaces(user):
    if user.is_superuser:
        return Workspace.objects.order_by("name", "pk")
    return Workspace.objects.filter(
        memberships__user=user, memberships__role__in=MANAGER_ROLES
    ).order_by("name", "pk")


# --- step 1: setup ----------------------------------------------------------------------


class SetupForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Only your team sees it.")
    numbers = forms.ModelMultipleChoiceField(
        queryset=Number.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Contacts are spread evenly over the numbers. Only active numbers are listed.",
        error_messages={"required": "Choose at least one number."},
    )

    def __init__(self, *args, workspace: Workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields["numbers"].queryset = Number.objects.filter(
            workspace=workspace, status=NumberStatus.ACTIVE
        ).order_by("label", "pk")
        self.fields["numbers"].label_from_instance = lambda number: (
            f"{number.label} ({number.display_phone_number})"
        )
        self.templates = list(
            Template.objects.filter(
                workspace=workspace, status=TemplateStatus.APPROVED, removed_at__isnull=True
            ).order_by("name", "language", "pk")
        )
        for template in self.templates:
            self.fields[f"use_{template.pk}"] = forms.BooleanField(
                required=False, label=f"{template.name} ({template.language})"
            )
            self.fields[f"weight_{template.pk}"] = forms.IntegerField(
                min_value=1,
                max_value=MAX_WEIGHT,
                initial=1,
                required=False,
                label="Weight",
                error_messages={
                    "min_value": "A weight is a whole number of 1 or more.",
                    "max_value": f"A weight is at most {MAX_WEIGHT}.",
                },
            )

    def template_rows(self) -> list[dict]:
        return [
            {
                "template": template,
                "use": self[f"use_{template.pk}"],
                "weight": self[f"weight_{template.pk}"],
                "preview": template_preview(template),
            }
            for template in self.templates
        ]

    def clean(self):
        data = super().clean()
        chosen = [
            (template, data.get(f"weight_{template.pk}") or 1)
            for template in self.templates
            if data.get(f"use_{template.pk}")
        ]
        if not chosen:
            raise forms.ValidationError("Choose at least one template.", code="templates")
        data["templates"] = chosen
        return data


def _invalid_to_form(form: forms.Form, error: services.CampaignInvalid) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message[:1].upper() + error.message[1:] + ".")


# --- step 2: contacts -------------------------------------------------------------------


@dataclass
class Staged:
    """An uploaded file waiting for its mapping: where it is and what its first rows hold."""

    path: str
    name: str
    size: int
    codec: str
    label: str
    delimiter: str
    header: list[str]
    rows: list[list[Any]]  # [line, fields, problem]

    @classmethod
    def from_session(cls, data: dict | None) -> Staged | None:
        if not data:
            return None
        try:
            staged = cls(**data)
        except TypeError:
            return None
        return staged if default_storage.exists(staged.path) else None


def _session_key(campaign: Campaign) -> str:
    return f"wac_wizard_file_{campaign.pk}"


def _stage(request, campaign: Campaign, upload) -> Staged:
    """Saves ``upload`` and reads its header and first rows; raises CsvFileError."""
    _unstage(request, campaign)
    name = default_storage.save(
        f"wizard/{campaign.pk}/{secrets.token_hex(8)}.csv", File(upload, name="upload.csv")
    )

    def opener():
        return default_storage.open(name, "rb")

    try:
        encoding = detect_encoding(opener)
        reader = CsvReader(opener, encoding, max_chars=MAX_RECORD_CHARS)
        records = reader.records()
        header = next(records, None)
        if header is None:
            raise CsvFileError("the file is empty")
        if header.problem:
            raise CsvFileError(f"line {header.line}: the header cannot be read: {header.problem}")
        if not any(cell.strip() for cell in header.fields):
            raise CsvFileError("the first line holds no column names")
        rows = []
        for record in records:
            rows.append([record.line, record.fields, record.problem])
            if len(rows) == PREVIEW_ROWS:
                break
    except CsvFileError:
        default_storage.delete(name)
        raise
    staged = Staged(
        path=name,
        name=upload.name[:255],
        size=upload.size,
        codec=encoding.codec,
        label=encoding.label,
        delimiter=reader.delimiter,
        header=header.fields,
        rows=rows,
    )
    request.session[_session_key(campaign)] = staged.__dict__
    return staged


def _unstage(request, campaign: Campaign) -> None:
    staged = Staged.from_session(request.session.pop(_session_key(campaign), None))
    if staged is not None:
        default_storage.delete(staged.path)


def wizard_uploads_prune(*, older_than_seconds: float, now=None) -> int:
    """Deletes staged files (``wizard/<campaign id>/...``) older than ``older_than_seconds``:
    a file uploaded in step 2 and never imported (the user left the wizard) would stay
    for ever otherwise. Returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(seconds=older_than_seconds)
    deleted = 0
    if not default_storage.exists("wizard"):
        return 0
    campaign_dirs, _ = default_storage.listdir("wizard")
    for campaign_dir in campaign_dirs:
        _, files = default_storage.listdir(f"wizard/{campaign_dir}")
        for file_name in files:
            name = f"wizard/{campaign_dir}/{file_name}"
            try:
                if default_storage.get_modified_time(name) < cutoff:
                    default_storage.delete(name)
                    deleted += 1
            except FileNotFoundError:
                continue  # imported (and deleted) meanwhile
    return deleted


def _column_choices(header: list[str]) -> list[tuple[str, str]]:
    return [
        (str(index), name or f"(column {index + 1}, no name)") for index, name in enumerate(header)
    ]


class MappingForm(forms.Form):
    """The phone column and, for every parameter of every template, the column that fills it."""

    phone = forms.ChoiceField(
        label="Phone column", help_text="Numbers with a country code (+91...)."
    )

    def __init__(self, *args, campaign: Campaign, staged: Staged, **kwargs):
        super().__init__(*args, **kwargs)
        self.staged = staged
        columns = _column_choices(staged.header)
        self.fields["phone"].choices = columns
        self.uses = list(campaign.campaign_templates.select_related("template").order_by("pk"))
        defaults = _default_columns(campaign, staged.header)
        self.fields["phone"].initial = defaults.get("phone", "0")
        self.parameter_fields: list[tuple[Template, list[tuple[str, str]]]] = []
        for use in self.uses:
            template = use.template
            names = []
            for parameter in template.parameters or []:
                field_name = f"p_{template.pk}_{parameter}"
                label = parameter_label(template, parameter)
                self.fields[field_name] = forms.ChoiceField(
                    label=label,
                    choices=[(NOT_IN_FILE, "— choose a column —"), *columns],
                    required=True,
                    initial=defaults.get(f"{template.pk}:{parameter}", NOT_IN_FILE),
                    error_messages={
                        "required": f"Choose the column that fills {label} of {template.name}."
                    },
                )
                names.append((parameter, field_name))
            self.parameter_fields.append((template, names))

    def template_groups(self) -> list[dict]:
        return [
            {
                "template": template,
                "text": _body_text(template),
                "fields": [self[name] for _, name in names],
            }
            for template, names in self.parameter_fields
        ]

    def chosen(self) -> tuple[int, dict[int, dict[str, int]]]:
        """(phone column index, {template id: {parameter: column index}}) from valid data."""
        data = self.cleaned_data
        columns = {
            template.pk: {parameter: int(data[name]) for parameter, name in names}
            for template, names in self.parameter_fields
        }
        return int(data["phone"]), columns


def _body_text(template: Template) -> str:
    body = next(
        (c for c in template.components or [] if str(c.get("type", "")).upper() == "BODY"), {}
    )
    return str(body.get("text") or "")


def parameter_label(template: Template, parameter: str) -> str:
    """What a marketer calls a parameter: "Body {{1}}", "Header image link", "Button Track
    link ending"."""
    section, _, name = parameter.partition(".")
    if section == "body":
        return f"Body {{{{{name}}}}}"
    if section == "header":
        header_format = (template.header_format or "").upper()
        if name in ("latitude", "longitude"):
            return f"Header location {name}"
        if header_format in ("IMAGE", "VIDEO", "DOCUMENT"):
            return f"Header {header_format.lower()} link"
        return f"Header {{{{{name}}}}}"
    if section == "button" and name.isdigit():
        buttons = next(
            (
                c.get("buttons") or []
                for c in template.components or []
                if str(c.get("type", "")).upper() == "BUTTONS"
            ),
            [],
        )
        text = buttons[int(name)].get("text", "") if int(name) < len(buttons) else ""
        return f"Button {text or int(name) + 1} link ending"
    return parameter


def _default_columns(campaign: Campaign, header: list[str]) -> dict[str, str]:
    """What the importer would pick by itself: the phone column and columns named like the
    parameters (or those of the campaign's current mapping)."""
    found: dict[str, str] = {}
    try:
        found["phone"] = str(phone_column_index(header))
        plan = build_plan(campaign=campaign, header=header)
    except (CsvFileError, ImportRefused):
        return found
    for slot in plan.slots:
        for parameter, index in slot.columns.items():
            if index is not None:
                found[f"{slot.template.pk}:{parameter}"] = str(index)
    return found


def _final_header(header: list[str], phone_index: int) -> list[str]:
    """The header the importer gets: the chosen column named ``phone`` and other phone-like
    names renamed, so the importer takes the column the user chose."""
    final = []
    for index, name in enumerate(header):
        if index == phone_index:
            final.append(PHONE_COLUMNS[0])
        elif is_phone_column(name) or normalize_header(name) == PHONE_COLUMNS[0]:
            final.append(f"{name} (not the phone)")
        else:
            final.append(name)
    return final


def _needs_rewrite(header: list[str], phone_index: int) -> bool:
    try:
        return phone_column_index(header) != phone_index
    except CsvFileError:
        return True


def _rewritten(staged: Staged, phone_index: int) -> str:
    """A copy of the staged file, as UTF-8, with only its header line replaced; every other
    line stays where it was, so row numbers in the import's errors match the original file.
    Raises CsvFileError when the header is not one line."""
    final = _final_header(staged.header, phone_index)
    name = f"{staged.path}.phone.csv"
    with default_storage.open(staged.path, "rb") as raw:
        source = io.TextIOWrapper(raw, encoding=staged.codec, newline="")
        before = []
        line = source.readline()
        while line and not line.strip():
            before.append(line)
            line = source.readline()
        if next(csv.reader([line], delimiter=staged.delimiter), []) != staged.header:
            raise CsvFileError(
                "the header row runs over several lines: name the phone column "
                "'phone' in the file instead"
            )
        ending = line[len(line.rstrip("\r\n")) :] or "\n"
        out = io.StringIO()
        csv.writer(out, delimiter=staged.delimiter, lineterminator=ending).writerow(final)
        # On disk, not in memory: the file may be as large as CAMPAIGN_UPLOAD_MAX_BYTES.
        with tempfile.TemporaryFile() as target:
            target.write("".join(before).encode() + out.getvalue().encode())
            while chunk := source.read(1 << 20):
                target.write(chunk.encode("utf-8"))
            target.seek(0)
            return default_storage.save(name, File(target, name="upload.csv"))


def _mapping(staged: Staged, phone_index: int, columns: dict[int, dict[str, int]]) -> dict:
    header = (
        _final_header(staged.header, phone_index)
        if _needs_rewrite(staged.header, phone_index)
        else staged.header
    )
    return {
        str(template_id): {parameter: header[index] for parameter, index in chosen.items()}
        for template_id, chosen in columns.items()
        if chosen
    }


def _row_previews(
    campaign: Campaign, form: MappingForm, phone_index: int, columns: dict[int, dict[str, int]]
) -> list[dict]:
    """The first rows of the file as the messages they become (or why each is rejected),
    each given its template the way the importer assigns them."""
    staged = form.staged
    try:
        plan = build_plan(campaign=campaign, header=_final_header(staged.header, phone_index))
    except (CsvFileError, ImportRefused):
        plan = None
    previews = []
    for line, fields, problem in staged.rows:
        entry: dict[str, Any] = {"line": line, "problems": []}
        previews.append(entry)
        if problem:
            entry["problems"].append(f"the row cannot be read: {problem}")
            continue
        raw_phone = fields[phone_index] if phone_index < len(fields) else ""
        entry["raw_phone"] = raw_phone
        try:
            entry["phone"] = normalize_phone(raw_phone)
        except InvalidPhone as error:
            entry["problems"].append(f"phone {raw_phone!r}: {error}")
        if plan is None:
            continue
        slot = plan.pick_template()
        slot.count += 1
        template = slot.template
        entry["template"] = template
        values = {
            parameter: fields[index] if index < len(fields) else ""
            for parameter, index in columns.get(template.pk, {}).items()
        }
        try:
            render_components(template, values)
        except RenderError as error:
            entry["problems"] += [f"{key}: {message}" for key, message in error.problems.items()]
        else:
            entry["preview"] = template_preview(template, values)
    return previews


def sample_csv_rows(campaign: Campaign) -> tuple[list[str], list[list[str]]]:
    """A header (phone, then one column per parameter: shared by templates that use the same
    key) and two rows filled with the templates' own examples."""
    header = [PHONE_COLUMNS[0]]
    examples: dict[str, str] = {}
    for use in campaign.campaign_templates.select_related("template").order_by("pk"):
        values = example_values(use.template)
        for parameter in use.template.parameters or []:
            column = parameter.replace(".", "_")
            if column not in header:
                header.append(column)
                examples[column] = values.get(parameter, "")
    rows = [[phone, *(examples[column] for column in header[1:])] for phone in SAMPLE_PHONES]
    return header, rows


# --- step 5: launch ---------------------------------------------------------------------


class LaunchForm(forms.Form):
    when = forms.ChoiceField(
        choices=[("now", "Start now"), ("later", "Schedule for later")],
        widget=forms.RadioSelect,
        initial="now",
        label="When",
    )
    scheduled_at = forms.DateTimeField(
        required=False,
        label="Start at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )

    def clean(self):
        data = super().clean()
        if data.get("when") == "later":
            at = data.get("scheduled_at")
            if at is None:
                if "scheduled_at" not in self.errors:
                    self.add_error("scheduled_at", "Give the date and time to start at.")
            elif at <= timezone.now():
                self.add_error("scheduled_at", "That time has passed: choose a time in the future.")
        return data


# --- views ------------------------------------------------------------------------------


class Wizard:
    """The wizard's views, bound to the CampaignAdmin whose permissions and site they use."""

    def __init__(self, model_admin: CampaignAdmin) -> None:
        self.admin = model_admin

    def urls(self) -> list:
        view = self.admin.admin_site.admin_view
        return [
            path("new/", view(self.setup_view), name="campaigns_campaign_wizard"),
            path("<path:object_id>/wizard/setup/", view(self.setup_view), name="campaigns_campaign_wizard_setup"),
            path("<path:object_id>/wizard/contacts/", view(self.contacts_view), name="campaigns_campaign_wizard_contacts"),
            path("<path:object_id>/wizard/sample.csv", view(self.sample_view), name="campaigns_campaign_wizard_sample"),
            path("<path:object_id>/wizard/imported/", view(self.imported_view), name="campaigns_campaign_wizard_imported"),
            path("<path:object_id>/wizard/preflight/", view(self.preflight_view), name="campaigns_campaign_wizard_preflight"),
            path("<path:object_id>/wizard/launch/", view(self.launch_view), name="campaigns_campaign_wizard_launch"),
        ]  # fmt: skip

    # -- helpers --

    def _campaign(self, request, object_id) -> Campaign:
        campaign = self.admin.get_queryset(request).filter(pk=unquote(object_id)).first()
        if campaign is None:
            raise Http404("No such campaign.")
        if not self.admin.has_change_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def _not_draft(self, request, campaign: Campaign):
        if campaign.status == CampaignStatus.DRAFT:
            return None
        messages.info(
            request,
            f"{campaign} is {campaign.get_status_display().lower()}: the wizard builds draft "
            "campaigns; its page below has what you can do now.",
        )
        return redirect("admin:campaigns_campaign_change", campaign.pk)

    def _render(self, request, step: str, context: dict, campaign: Campaign | None = None):
        index = [key for key, _ in STEPS].index(step)
        steps = []
        for position, (key, label) in enumerate(STEPS):
            url = None
            if campaign is not None:
                url = reverse(f"admin:campaigns_campaign_wizard_{key}", args=[campaign.pk])
            elif key == "setup":
                url = reverse("admin:campaigns_campaign_wizard")
            steps.append(
                {
                    "key": key,
                    "label": label,
                    "number": position + 1,
                    "url": url,
                    "current": key == step,
                }
            )
        return TemplateResponse(
            request,
            f"campaigns/wizard/{step}.html",
            {
                **self.admin.admin_site.each_context(request),
                "opts": Campaign._meta,
                "title": f"New campaign: step {index + 1} of {len(STEPS)}, {STEPS[index][1]}",
                "steps": steps,
                "step": step,
                "campaign": campaign,
                **context,
            },
        )

    # -- step 1 --

    def setup_view(self, request, object_id=None):
        campaign = None
        if object_id is not None:
            campaign = self._campaign(request, object_id)
            if (leave := self._not_draft(request, campaign)) is not None:
                return leave
            workspace = campaign.workspace
        else:
            if not self.admin.has_add_permission(request):
                raise PermissionDenied
            workspaces = list(_manager_workspaces(request.user))
            if not workspaces:
                raise PermissionDenied
            wanted = request.POST.get("workspace") or request.GET.get("workspace")
            workspace = next((w for w in workspaces if str(w.pk) == wanted), None)
            if workspace is None and len(workspaces) == 1:
                workspace = workspaces[0]
            if workspace is None:
                return self._render(request, "setup", {"workspaces": workspaces})
        initial = {}
        if campaign is not None:
            initial = {"name": campaign.name, "numbers": list(campaign.numbers.all())}
            for use in campaign.campaign_templates.all():
                initial[f"use_{use.template_id}"] = True
                initial[f"weight_{use.template_id}"] = use.weight
        form = SetupForm(request.POST or None, workspace=workspace, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if campaign is None:
                    campaign = services.campaign_create(
                        workspace=workspace,
                        user=request.user,
                        name=data["name"],
                        numbers=list(data["numbers"]),
                        templates=data["templates"],
                    )
                else:
                    services.campaign_update(
                        campaign=campaign,
                        user=request.user,
                        name=data["name"],
                        numbers=list(data["numbers"]),
                        templates=data["templates"],
                    )
            except services.CampaignInvalid as error:
                _invalid_to_form(form, error)
            except services.CampaignStateError as error:
                form.add_error(None, error.reason)
            else:
                return redirect("admin:campaigns_campaign_wizard_contacts", campaign.pk)
        return self._render(
            request, "setup", {"form": form, "workspace": workspace}, campaign=campaign
        )

    # -- step 2 --

    def contacts_view(self, request, object_id):
        campaign = self._campaign(request, object_id)
        if (leave := self._not_draft(request, campaign)) is not None:
            return leave
        staged = Staged.from_session(request.session.get(_session_key(campaign)))
        action = request.POST.get("action", "")
        upload_form = UploadForm()
        mapping_form = None
        if request.method == "POST" and action == "upload":
            upload_form = UploadForm(request.POST, request.FILES)
            if upload_form.is_valid():
                try:
                    _stage(request, campaign, upload_form.cleaned_data["file"])
                except CsvFileError as error:
                    upload_form.add_error("file", _sentence(str(error)))
                else:
                    return redirect("admin:campaigns_campaign_wizard_contacts", campaign.pk)
        elif request.method == "POST" and action == "discard":
            _unstage(request, campaign)
            return redirect("admin:campaigns_campaign_wizard_contacts", campaign.pk)
        elif request.method == "POST" and action in ("preview", "import") and staged is None:
            messages.error(request, "The uploaded file is gone: upload it again.")
            return redirect("admin:campaigns_campaign_wizard_contacts", campaign.pk)
        previews = None
        if staged is not None:
            bound = request.method == "POST" and action in ("preview", "import")
            mapping_form = MappingForm(
                request.POST if bound else None, campaign=campaign, staged=staged
            )
            if bound and mapping_form.is_valid():
                phone_index, columns = mapping_form.chosen()
                if action == "import":
                    done = self._import(request, campaign, staged, phone_index, columns)
                    if done is not None:
                        return done
                previews = _row_previews(campaign, mapping_form, phone_index, columns)
            elif not bound:
                initial = {name: mapping_form[name].initial for name in mapping_form.fields}
                phone_index = int(initial["phone"])
                columns = {
                    template.pk: {
                        parameter: int(initial[name])
                        for parameter, name in names
                        if initial[name] != NOT_IN_FILE
                    }
                    for template, names in mapping_form.parameter_fields
                }
                previews = _row_previews(campaign, mapping_form, phone_index, columns)
        return self._render(
            request,
            "contacts",
            {
                "upload_form": upload_form,
                "mapping_form": mapping_form,
                "staged": staged,
                "previews": previews,
                "contacts": campaign.recipients.count(),
                "upload_limit": settings.CAMPAIGN_UPLOAD_MAX_BYTES,
            },
            campaign=campaign,
        )

    def _import(self, request, campaign, staged: Staged, phone_index: int, columns):
        mapping = _mapping(staged, phone_index, columns)
        try:
            if mapping != (campaign.variable_mapping or {}):
                services.campaign_update(
                    campaign=campaign, user=request.user, variable_mapping=mapping
                )
            path_used = staged.path
            if _needs_rewrite(staged.header, phone_index):
                path_used = _rewritten(staged, phone_index)
            try:
                with default_storage.open(path_used, "rb") as handle:
                    upload = File(handle, name=staged.name)
                    upload.size = default_storage.size(path_used)
                    job = services.contacts_upload(
                        campaign=campaign, user=request.user, upload=upload
                    )
            finally:
                if path_used != staged.path:
                    default_storage.delete(path_used)
        except services.CampaignInvalid as error:
            messages.error(request, _sentence(error.message))
            return None
        except (CsvFileError, ImportRefused, ImportBusy, services.CampaignStateError) as error:
            messages.error(request, _sentence(str(error)))
            return None
        _unstage(request, campaign)
        return redirect(
            reverse("admin:campaigns_campaign_wizard_imported", args=[campaign.pk]) + f"?job={job.pk}"
        )  # fmt: skip

    def sample_view(self, request, object_id):
        campaign = self._campaign(request, object_id)
        header, rows = sample_csv_rows(campaign)
        response = HttpResponse(
            "".join(csv_stream(header, rows)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-sample.csv"'
        )
        return response

    # -- step 3 --

    def imported_view(self, request, object_id):
        campaign = self._campaign(request, object_id)
        jobs = ImportJob.objects.filter(campaign=campaign)
        wanted = request.GET.get("job", "")
        job = jobs.filter(pk=wanted).first() if wanted.isascii() and wanted.isdigit() else None
        job = job or jobs.order_by("-created_at", "-pk").first()
        if job is None:
            messages.info(request, "No contacts imported yet: upload a CSV first.")
            return redirect("admin:campaigns_campaign_wizard_contacts", campaign.pk)
        finished = job.status in (ImportStatus.DONE, ImportStatus.FAILED)
        return self._render(
            request,
            "imported",
            {
                "job": job,
                "finished": finished,
                "problems": job.rejected + job.duplicates + job.suppressed,
                "errors_url": reverse("campaign-import-errors-csv", args=[campaign.pk])
                + f"?import={job.pk}",
                "contacts": campaign.recipients.count(),
            },
            campaign=campaign,
        )

    # -- step 4 --

    def preflight_view(self, request, object_id):
        campaign = self._campaign(request, object_id)
        if (leave := self._not_draft(request, campaign)) is not None:
            return leave
        result = campaign_preflight(campaign=campaign) if request.method == "POST" else None
        return self._render(request, "preflight", {"preflight": result}, campaign=campaign)

    # -- step 5 --

    def launch_view(self, request, object_id):
        campaign = self._campaign(request, object_id)
        if (leave := self._not_draft(request, campaign)) is not None:
            return leave
        zone = workspace_zone(campaign.workspace)
        with timezone.override(zone):
            form = LaunchForm(request.POST or None)
            if request.method == "POST" and form.is_valid():
                data = form.cleaned_data
                try:
                    if data["when"] == "now":
                        services.campaign_start(
                            campaign=campaign, user=request.user, reason="from the wizard"
                        )
                        messages.success(request, f"{campaign} started.")
                    else:
                        services.campaign_schedule(
                            campaign=campaign, user=request.user, scheduled_at=data["scheduled_at"]
                        )
                        shown = timezone.localtime(data["scheduled_at"], zone)
                        messages.success(
                            request,
                            f"{campaign} scheduled for {shown:%Y-%m-%d %H:%M} ({zone.key}).",
                        )
                except services.CampaignInvalid as error:
                    form.add_error("scheduled_at", _sentence(error.message))
                except services.CampaignStateError as error:
                    form.add_error(None, _sentence(error.reason))
                else:
                    # A file staged and never imported is of no use once the campaign left draft.
                    _unstage(request, campaign)
                    return redirect("admin:campaigns_campaign_change", campaign.pk)
            response = self._render(
                request,
                "launch",
                {
                    "form": form,
                    "zone": zone.key,
                    "now": timezone.localtime(timezone.now(), zone),
                    "contacts": campaign.recipients.count(),
                },
                campaign=campaign,
            )
            # Rendered in the zone too: a time the form shows back is in the workspace's zone.
            return response.render()


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file", error_messages={"required": "Choose a CSV file."})


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
