"""REST API for campaigns, their contacts, imports, reports and the suppression list (api.md)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.models import Role
from accounts.tenancy import IsWorkspaceManagerOrReadOnly, WorkspaceScopedMixin, role_in
from campaigns import selectors, services
from campaigns.csvio import CsvFileError, csv_stream
from campaigns.importer import ImportBusy, ImportRefused
from campaigns.models import (
    Campaign,
    CampaignStatus,
    ImportJob,
    ImportStatus,
    Recipient,
    RecipientStatus,
    Suppression,
)
from campaigns.preflight import campaign_preflight
from campaigns.rates import campaign_current_rate
from campaigns.services import CampaignInvalid, CampaignStateError, SuppressionError
from campaigns.uploads import ContactsUploadParser
from config.inputs import is_ascii_digits
from messaging.graph import error_explanation
from numbers.models import Number
from templates_sync.models import Template


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the campaign's state does not allow this"
    default_code = "conflict"


# The CSV exports (routed in urls.py, without a trailing slash as api.md names them).
CSV_RENDERERS = [*api_settings.DEFAULT_RENDERER_CLASSES]


class CsvRenderer(renderers.BaseRenderer):
    """Lets ``Accept: text/csv`` reach the CSV exports (which stream their own response)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return renderers.JSONRenderer().render(data)


CSV_RENDERERS.append(CsvRenderer)


# --- serializers ----------------------------------------------------------------------


class TemplateWeightSerializer(serializers.Serializer):
    template = serializers.PrimaryKeyRelatedField(queryset=Template.objects.none())
    weight = serializers.IntegerField(min_value=1, max_value=1000, default=1)


class CampaignWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    numbers = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Number.objects.none(), allow_empty=False
    )
    templates = TemplateWeightSerializer(many=True, allow_empty=False)
    scheduled_at = serializers.DateTimeField(
        allow_null=True,
        required=False,
        help_text="ISO 8601. Without an offset it is a time in the workspace's time zone.",
    )
    variable_mapping = serializers.JSONField(required=False)

    def __init__(self, *args, workspace_id: int | None = None, zone=None, **kwargs):
        super().__init__(*args, **kwargs)
        if zone is not None:
            # A time without an offset is read in the workspace's zone (the one its people
            # schedule in); one with an offset is taken as given.
            self.fields["scheduled_at"].timezone = zone
        if workspace_id is None:  # the OpenAPI schema generator's instance
            return
        # Another workspace's id reads as "does not exist", never as "not yours".
        self.fields["numbers"].child_relation.queryset = Number.objects.filter(
            workspace_id=workspace_id
        )
        self.fields["templates"].child.fields["template"].queryset = Template.objects.filter(
            workspace_id=workspace_id
        )

    def service_arguments(self) -> dict:
        data = dict(self.validated_data)
        if "templates" in data:
            data["templates"] = [
                (item["template"], item.get("weight", 1)) for item in data["templates"]
            ]
        return data


class CampaignSerializer(serializers.ModelSerializer):
    numbers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    templates = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    current_rate = serializers.SerializerMethodField()
    split = serializers.SerializerMethodField()
    last_import = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "numbers",
            "templates",
            "variable_mapping",
            "scheduled_at",
            "counts",
            "progress",
            "current_rate",
            "split",
            "last_import",
            "pause_reason",
            "hold_reason",
            "held_until",
            "created_at",
            "started_at",
            "paused_at",
            "completed_at",
        ]
        read_only_fields = fields

    def _counts(self, campaign) -> dict[str, int]:
        cached = self.context.get("counts")
        if cached is None or campaign.pk not in cached:
            cached = selectors.campaign_counts([campaign.pk])
        return cached[campaign.pk]

    def get_templates(self, campaign) -> list[dict]:
        return [
            {"template": use.template_id, "weight": use.weight}
            for use in campaign.campaign_templates.all()
        ]

    def get_counts(self, campaign) -> dict[str, int]:
        return self._counts(campaign)

    def get_progress(self, campaign) -> int:
        return selectors.progress_of(self._counts(campaign))

    def get_current_rate(self, campaign) -> float | None:
        """Messages finished per second over the last 10 s; null unless running."""
        if campaign.status != CampaignStatus.RUNNING:
            return None
        return round(campaign_current_rate(campaign.pk), 1)

    def get_split(self, campaign) -> dict:
        cached = self.context.get("split")
        if cached is None or campaign.pk not in cached:
            cached = selectors.campaign_split([campaign.pk])
        return cached[campaign.pk]

    def get_last_import(self, campaign) -> dict | None:
        job = campaign.imports.order_by("-created_at", "-pk").first()
        return selectors.import_answer(job, errors=0) if job else None


class RecipientSerializer(serializers.ModelSerializer):
    # The error in plain words, from the same table the admin explains errors with.
    error_explanation = serializers.SerializerMethodField()

    class Meta:
        model = Recipient
        fields = ["id", *selectors.RECIPIENT_FIELDS, "error_explanation", "row_number"]
        read_only_fields = fields

    def get_error_explanation(self, recipient) -> str:
        if recipient.error_code is None and not recipient.error_title:
            return ""
        return error_explanation(recipient.error_code, recipient.error_title)


class ActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class SuppressionSerializer(serializers.ModelSerializer):
    # As typed (spaces, dashes, no '+'); stored normalised to E.164.
    phone = serializers.CharField(max_length=64)

    class Meta:
        model = Suppression
        fields = ["id", "phone", "reason", "source", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"source": {"required": False}}


# --- views ----------------------------------------------------------------------------


def _conflict(error: Exception) -> Conflict:
    return Conflict(getattr(error, "reason", None) or str(error))


def _invalid(error: CampaignInvalid) -> exceptions.ValidationError:
    return exceptions.ValidationError({error.field: [error.message]})


def _csv_response(name: str, header: list[str], rows) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        csv_stream(header, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class CampaignViewSet(WorkspaceScopedMixin, viewsets.ModelViewSet):
    queryset = Campaign.objects.prefetch_related("numbers", "campaign_templates").order_by(
        "-created_at", "-pk"
    )
    serializer_class = CampaignSerializer

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        ids = [campaign.pk for campaign in page]
        context = {
            **self.get_serializer_context(),
            "counts": selectors.campaign_counts(ids),
            "split": selectors.campaign_split(ids),
        }
        return self.get_paginated_response(
            CampaignSerializer(page, many=True, context=context).data
        )

    def _read(self, campaign: Campaign, code: int = status.HTTP_200_OK) -> Response:
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(
            CampaignSerializer(campaign, context=self.get_serializer_context()).data, code
        )

    @extend_schema(request=CampaignWriteSerializer, responses=CampaignSerializer)
    def create(self, request, *args, **kwargs):
        workspace = self.request_workspace()
        if role_in(request.user, workspace) not in self.create_roles:
            raise exceptions.PermissionDenied(IsWorkspaceManagerOrReadOnly.message)
        serializer = CampaignWriteSerializer(
            data=request.data, workspace_id=workspace.pk, zone=workspace.zone
        )
        serializer.is_valid(raise_exception=True)
        try:
            campaign = services.campaign_create(
                workspace=workspace, user=request.user, **serializer.service_arguments()
            )
        except CampaignInvalid as error:
            raise _invalid(error) from None
        return self._read(campaign, status.HTTP_201_CREATED)

    @extend_schema(request=CampaignWriteSerializer, responses=CampaignSerializer)
    def update(self, request, *args, **kwargs):
        campaign = self.get_object()
        serializer = CampaignWriteSerializer(
            data=request.data,
            partial=kwargs.get("partial", False),
            workspace_id=campaign.workspace_id,
            zone=campaign.workspace.zone,
        )
        serializer.is_valid(raise_exception=True)
        try:
            services.campaign_update(
                campaign=campaign, user=request.user, **serializer.service_arguments()
            )
        except CampaignStateError as error:
            raise _conflict(error) from None
        except CampaignInvalid as error:
            raise _invalid(error) from None
        return self._read(campaign)

    def destroy(self, request, *args, **kwargs):
        try:
            services.campaign_delete(campaign=self.get_object())
        except CampaignStateError as error:
            raise _conflict(error) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _act(self, request, service) -> Response:
        campaign = self.get_object()
        serializer = ActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            service(
                campaign=campaign,
                user=request.user,
                reason=serializer.validated_data.get("reason") or None,
            )
        except CampaignStateError as error:
            raise _conflict(error) from None
        return self._read(campaign)

    @extend_schema(request=ActionSerializer, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._act(request, services.campaign_start)

    @extend_schema(request=ActionSerializer, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._act(request, services.campaign_pause)

    @extend_schema(request=ActionSerializer, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._act(request, services.campaign_resume)

    @extend_schema(request=ActionSerializer, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._act(request, services.campaign_cancel)

    @extend_schema(request=None, responses=dict)
    @action(detail=True, methods=["post"])
    def preflight(self, request, pk=None):
        return Response(campaign_preflight(campaign=self.get_object()).as_dict())

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses=dict)
    @action(detail=True, methods=["post"], parser_classes=[ContactsUploadParser, FormParser])
    def contacts(self, request, pk=None):
        campaign = self.get_object()
        serializer = UploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = services.contacts_upload(
                campaign=campaign, user=request.user, upload=serializer.validated_data["file"]
            )
        except CsvFileError as error:
            raise exceptions.ValidationError({"file": [str(error)]}) from None
        except (ImportRefused, ImportBusy) as error:
            raise _conflict(error) from None
        queued = job.status == ImportStatus.QUEUED
        return Response(
            selectors.import_answer(job),
            status.HTTP_202_ACCEPTED if queued else status.HTTP_200_OK,
        )

    @extend_schema(responses=dict)
    @action(detail=True, methods=["get"])
    def imports(self, request, pk=None):
        campaign = self.get_object()
        page = self.paginate_queryset(campaign.imports.order_by("-created_at", "-pk"))
        return self.get_paginated_response([selectors.import_answer(job, errors=0) for job in page])

    @extend_schema(responses=dict, operation_id="campaigns_import_detail")
    @action(detail=True, methods=["get"], url_path=r"imports/(?P<job_id>\d+)")
    def import_detail(self, request, pk=None, job_id=None):
        campaign = self.get_object()
        job = ImportJob.objects.filter(campaign=campaign, pk=job_id).first()
        if job is None:
            raise exceptions.NotFound()
        return Response(selectors.import_answer(job))

    @extend_schema(responses=RecipientSerializer(many=True))
    @action(detail=True, methods=["get"])
    def messages(self, request, pk=None):
        campaign = self.get_object()
        rows = Recipient.objects.filter(campaign=campaign).order_by("pk")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in RecipientStatus.values:
                raise exceptions.ValidationError(
                    {"status": [f"one of {', '.join(RecipientStatus.values)}"]}
                )
            rows = rows.filter(status=wanted)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(RecipientSerializer(page, many=True).data)

    @extend_schema(responses={(200, "text/csv"): str})
    def report(self, request, pk=None):
        campaign = self.get_object()
        wanted = request.query_params.get("status")
        if wanted and wanted not in RecipientStatus.values:
            raise exceptions.ValidationError(
                {"status": [f"one of {', '.join(RecipientStatus.values)}"]}
            )
        return _csv_response(
            f"campaign-{campaign.pk}-report.csv",
            selectors.REPORT_HEADER,
            selectors.report_rows(campaign, wanted),
        )

    @extend_schema(responses={(200, "text/csv"): str})
    def import_errors(self, request, pk=None):
        campaign = self.get_object()
        job_id = request.query_params.get("import")
        if job_id is not None and not is_ascii_digits(job_id):
            raise exceptions.ValidationError({"import": ["an import id"]})
        return _csv_response(
            f"campaign-{campaign.pk}-import-errors.csv",
            selectors.IMPORT_ERRORS_HEADER,
            selectors.import_error_rows(campaign, int(job_id) if job_id else None),
        )


class SuppressionViewSet(
    WorkspaceScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Suppression.objects.order_by("-created_at", "-pk")
    serializer_class = SuppressionSerializer
    # Any member may record an opt-out (agents hear "stop" first); removing one needs a manager.
    create_roles = frozenset(Role.values)

    def get_queryset(self):
        queryset = super().get_queryset()
        phone = self.request.query_params.get("phone")
        if phone:
            queryset = queryset.filter(phone__contains=phone.strip().lstrip("+"))
        return queryset

    def perform_create(self, serializer):
        workspace = self.request_workspace()
        if role_in(self.request.user, workspace) not in self.create_roles:
            raise exceptions.PermissionDenied(IsWorkspaceManagerOrReadOnly.message)
        data = serializer.validated_data
        try:
            serializer.instance = services.suppression_create(
                workspace=workspace,
                phone=data["phone"],
                reason=data.get("reason", ""),
                source=data.get("source") or "manual",
            )
        except SuppressionError as error:
            raise exceptions.ValidationError({"phone": [str(error)]}) from None

    def perform_destroy(self, instance):
        services.suppression_delete(suppression=instance)
