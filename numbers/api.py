"""REST API for numbers: list, add (tested with Meta), change, delete, test connection."""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.tenancy import WorkspaceScopedMixin
from numbers.models import Number
from numbers.services import (
    NumberBlockCooldown,
    NumberError,
    NumberInUseError,
    number_add,
    number_block_clear,
    number_delete,
    number_test_connection,
    number_update,
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the current state does not allow this"
    default_code = "conflict"


def _validation_error(error: NumberError) -> exceptions.ValidationError:
    return exceptions.ValidationError({error.field or "non_field_errors": [error.message]})


class NumberSerializer(serializers.ModelSerializer):
    # Write only, and never echoed back in any form: the token is a bearer secret.
    access_token = serializers.CharField(
        write_only=True, trim_whitespace=True, style={"input_type": "password"}
    )

    class Meta:
        model = Number
        fields = [
            "id",
            "label",
            "phone_number_id",
            "waba_id",
            "access_token",
            "display_phone_number",
            "verified_name",
            "quality_rating",
            "messaging_limit_tier",
            "business_messaging_limit",
            "throughput_level",
            "name_status",
            "is_on_biz_app",
            "max_mps",
            "max_mps_override",
            "status",
            "is_usable",
            "block_code",
            "block_reason",
            "blocked_at",
            "last_checked_at",
            "last_error",
            "created_at",
        ]
        read_only_fields = [
            "display_phone_number",
            "verified_name",
            "quality_rating",
            "messaging_limit_tier",
            "business_messaging_limit",
            "is_on_biz_app",
            "block_code",
            "block_reason",
            "blocked_at",
            "throughput_level",
            "name_status",
            "max_mps",
            "status",
            "is_usable",
            "last_checked_at",
            "last_error",
            "created_at",
        ]

    def validate(self, attrs):
        if self.instance is not None:
            # A different id is a different number: add it instead.
            errors = {
                field: ["cannot be changed; add the other number instead"]
                for field in ("phone_number_id", "waba_id")
                if field in attrs and attrs[field].strip() != getattr(self.instance, field)
            }
            if errors:
                raise exceptions.ValidationError(errors)
        return attrs

    # Django's DEBUG error page shows every frame's variables, except those named so.
    @sensitive_variables("validated_data")
    def create(self, validated_data):
        try:
            return number_add(
                workspace=validated_data["workspace"],
                label=validated_data.get("label", ""),
                phone_number_id=validated_data["phone_number_id"],
                waba_id=validated_data["waba_id"],
                access_token=validated_data["access_token"],
                max_mps_override=validated_data.get("max_mps_override"),
            )
        except NumberError as error:
            raise _validation_error(error) from error

    @sensitive_variables("validated_data", "changes")
    def update(self, instance, validated_data):
        changes = {
            key: validated_data[key]
            for key in ("label", "access_token", "max_mps_override")
            if key in validated_data
        }
        try:
            return number_update(number=instance, **changes)
        except NumberError as error:
            raise _validation_error(error) from error


class NumberViewSet(WorkspaceScopedMixin, viewsets.ModelViewSet):
    """A workspace's WhatsApp numbers. Creating or changing the token tests it with Meta."""

    queryset = Number.objects.order_by("pk")
    serializer_class = NumberSerializer
    # No PUT: a full replace would need the token again; PATCH changes what may change.
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_destroy(self, instance: Number) -> None:
        try:
            number_delete(number=instance)
        except NumberInUseError as error:
            raise Conflict(error.message) from error

    @extend_schema(request=None, responses=NumberSerializer)
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request: Request, pk: str | None = None) -> Response:
        number = number_test_connection(number=self.get_object())
        return Response(self.get_serializer(number).data)

    @extend_schema(request=None, responses=NumberSerializer)
    @action(detail=True, methods=["post"], url_path="clear-block")
    def clear_block(self, request: Request, pk: str | None = None) -> Response:
        """A person lifts the hold the product set after Meta's error (368, 131048): the
        number may send again; its paused campaigns stay paused until resumed. A 131048
        hold inside its cooldown is a 409 saying when."""
        try:
            number = number_block_clear(number=self.get_object(), user=request.user)
        except NumberBlockCooldown as error:
            raise Conflict(error.message) from error
        return Response(self.get_serializer(number).data)
