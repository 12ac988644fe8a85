"""REST API for templates: the synced list (read only) and the sync trigger."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import MANAGER_ROLES
from accounts.tenancy import IsWorkspaceManagerOrReadOnly, WorkspaceScopedMixin, role_in, scope
from config.inputs import is_ascii_digits
from numbers.models import Number
from templates_sync.models import Template, WabaSync
from templates_sync.services import templates_sync


class TemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Template
        fields = [
            "id",
            "number",
            "waba_id",
            "meta_id",
            "name",
            "language",
            "category",
            "status",
            "is_sendable",
            "parameter_format",
            "parameters",
            "header_format",
            "components",
            "synced_at",
            "last_seen_at",
            "removed_at",
            "status_changed_at",
        ]
        read_only_fields = fields


_TRUE = ("1", "true", "yes")


class TemplateViewSet(WorkspaceScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Templates synced from Meta. Removed ones are listed only with ``include_removed=1``."""

    queryset = Template.objects.order_by("name", "language", "pk")
    serializer_class = TemplateSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("number", OpenApiTypes.INT),
            OpenApiParameter("status", OpenApiTypes.STR, description="e.g. APPROVED"),
            OpenApiParameter("category", OpenApiTypes.STR),
            OpenApiParameter("name", OpenApiTypes.STR),
            OpenApiParameter("include_removed", OpenApiTypes.BOOL),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        params = self.request.query_params
        number = params.get("number")
        if number:
            if not is_ascii_digits(number):
                raise exceptions.ValidationError({"number": ["must be a number's id"]})
            # Templates belong to the WABA: a number's templates are its WABA's.
            numbers = scope(Number.objects.filter(pk=int(number)), self.request.user)
            queryset = queryset.filter(
                waba_id__in=numbers.values("waba_id"),
                workspace_id__in=numbers.values("workspace_id"),
            )
        if params.get("status"):
            queryset = queryset.filter(status=params["status"].strip().upper())
        if params.get("category"):
            queryset = queryset.filter(category=params["category"].strip().upper())
        if params.get("name"):
            queryset = queryset.filter(name=params["name"].strip())
        if params.get("include_removed", "").lower() not in _TRUE:
            queryset = queryset.filter(removed_at__isnull=True)
        return queryset


class TemplateSyncRequestSerializer(serializers.Serializer):
    number = serializers.PrimaryKeyRelatedField(
        queryset=Number.objects.all(), required=False, allow_null=True
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        scope = self.context.get("workspace_scope")
        # Another workspace's number id must read as "does not exist", never be used.
        field = self.fields["number"]
        field.queryset = scope(Number.objects.all()) if scope else Number.objects.none()


class WabaSyncSerializer(serializers.ModelSerializer):
    class Meta:
        model = WabaSync
        fields = [
            "waba_id",
            "number",
            "state",
            "started_at",
            "finished_at",
            "last_success_at",
            "created",
            "updated",
            "removed",
            "error",
            "error_code",
        ]
        read_only_fields = fields


class TemplateSync(WorkspaceScopedMixin, generics.GenericAPIView):
    """POST syncs now (one number's WABA, or all of the workspace); GET shows each WABA's state."""

    queryset = WabaSync.objects.order_by("workspace_id", "waba_id")
    serializer_class = TemplateSyncRequestSerializer
    # One row per WABA of the caller's workspaces: a short list, answered whole.
    pagination_class = None

    @extend_schema(responses=WabaSyncSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(WabaSyncSerializer(self.get_queryset(), many=True).data)

    @extend_schema(
        responses=inline_serializer(
            "TemplateSyncResult",
            {
                "created": serializers.IntegerField(),
                "updated": serializers.IntegerField(),
                "removed": serializers.IntegerField(),
                "errors": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        number = serializer.validated_data.get("number")
        workspace = number.workspace if number is not None else self.request_workspace()
        if role_in(request.user, workspace) not in MANAGER_ROLES:
            raise exceptions.PermissionDenied(IsWorkspaceManagerOrReadOnly.message)
        result = templates_sync(workspace=workspace, number=number)
        return Response(
            {
                "created": result.created,
                "updated": result.updated,
                "removed": result.removed,
                "errors": result.errors,
            }
        )
