"""REST API: notification channels (with a test send and secret rotation) and notifications.

A webhook channel's secret is in the answer exactly twice in its life: when the
channel is created and when the secret is rotated. Nowhere else.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.tenancy import WorkspaceScopedMixin
from notifications.delivery import channel_test
from notifications.models import (
    SUBSCRIBABLE_EVENTS,
    Channel,
    ChannelKind,
    Delivery,
    Notification,
)
from notifications.selectors import notifications_with_read_at
from notifications.services import (
    ChannelInvalid,
    channel_create,
    channel_rotate_secret,
    channel_update,
    notifications_mark_read,
)


def mask_slack_url(url: str) -> str:
    head, _, last = url.rstrip("/").rpartition("/")
    return f"{head}/{'*' * 8}{last[-4:]}" if head and len(last) > 8 else "*" * 8


def _invalid(error: ChannelInvalid) -> exceptions.ValidationError:
    return exceptions.ValidationError({error.field: [error.message]})


class ChannelSerializer(serializers.ModelSerializer):
    # Free-form here; the service checks it per kind (addresses or a URL) and says what is wrong.
    target = serializers.JSONField()
    # Checked by the service, so an unknown type is one message that lists the known ones.
    events = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_empty=True,
        help_text="event types received (empty: all): " + ", ".join(sorted(SUBSCRIBABLE_EVENTS)),
    )

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "kind",
            "target",
            "events",
            "active",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]
        read_only_fields = ["disabled_at", "disabled_reason", "created_at"]

    def validate_target(self, value):
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        if isinstance(value, str):
            return value
        raise serializers.ValidationError(
            "a string (a URL, or comma-separated addresses) or a list of addresses"
        )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if instance.kind == ChannelKind.SLACK:
            # A Slack hook's URL is its credential: its last part is never shown again.
            data["target"] = mask_slack_url(instance.target)
        return data

    def validate(self, attrs):
        if self.instance is not None and "kind" in attrs and attrs["kind"] != self.instance.kind:
            raise exceptions.ValidationError(
                {"kind": ["cannot be changed; create a channel of the other kind instead"]}
            )
        return attrs

    def create(self, validated_data):
        try:
            channel, secret = channel_create(
                workspace=validated_data["workspace"],
                kind=validated_data["kind"],
                target=validated_data["target"],
                events=validated_data.get("events"),
                active=validated_data.get("active", True),
                name=validated_data.get("name", ""),
            )
        except ChannelInvalid as error:
            raise _invalid(error) from error
        # Only in this one answer (ChannelViewSet.create adds it).
        self.context["new_secret"] = secret
        return channel

    def update(self, instance, validated_data):
        changes = {
            key: validated_data[key]
            for key in ("target", "events", "active", "name")
            if key in validated_data
        }
        try:
            return channel_update(channel=instance, **changes)
        except ChannelInvalid as error:
            raise _invalid(error) from error


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id",
            "channel",
            "status",
            "attempts",
            "last_attempt_at",
            "next_attempt_at",
            "answer",
            "duration_ms",
        ]


class NotificationSerializer(serializers.ModelSerializer):
    objects = serializers.JSONField(source="objects_ref", read_only=True)
    read_at = serializers.DateTimeField(read_only=True, allow_null=True)
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "event",
            "severity",
            "title",
            "body",
            "objects",
            "data",
            "held_back",
            "created_at",
            "read_at",
            "deliveries",
        ]


class ChannelViewSet(WorkspaceScopedMixin, viewsets.ModelViewSet):
    """A workspace's notification channels; owners and admins change them."""

    queryset = Channel.objects.order_by("pk")
    serializer_class = ChannelSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(
        responses=inline_serializer(
            "ChannelCreated",
            {
                "id": serializers.IntegerField(),
                "secret": serializers.CharField(help_text="webhooks only; shown this once"),
            },
        )
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        response = super().create(request, *args, **kwargs)
        # The serializer's context is the one get_serializer built for this request.
        secret = getattr(self, "_new_secret", None)
        if secret:
            response.data["secret"] = secret
        return response

    def perform_create(self, serializer):
        super().perform_create(serializer)
        self._new_secret = serializer.context.get("new_secret")

    @extend_schema(request=None, responses=DeliverySerializer)
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a test notification to this channel now, once; answers with the attempt."""
        channel = self.get_object()
        delivery = channel_test(channel=channel, user=request.user)
        return Response(DeliverySerializer(delivery).data)

    @extend_schema(
        request=None,
        responses=inline_serializer("ChannelSecret", {"secret": serializers.CharField()}),
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new webhook secret (shown this once); the old one also signs for 24 hours."""
        channel = self.get_object()
        if channel.kind != ChannelKind.WEBHOOK:
            raise exceptions.ValidationError({"kind": ["only webhook channels have a secret"]})
        return Response({"secret": channel_rotate_secret(channel=channel)})


class NotificationViewSet(
    WorkspaceScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The notifications of the caller's workspaces, newest first; ``read_at`` is the caller's.

    Filters: ``unread=1``, ``event=<type>``.
    """

    serializer_class = NotificationSerializer
    queryset = Notification.objects.all()

    def get_queryset(self):
        queryset = notifications_with_read_at(self.request.user).prefetch_related("deliveries")
        params = self.request.query_params
        if params.get("unread") in ("1", "true"):
            queryset = queryset.filter(read_at__isnull=True)
        if params.get("event"):
            queryset = queryset.filter(event=params["event"])
        return queryset

    def get_permissions(self):
        # Reading and marking read are every member's (agents too): no manager check.
        return [permission() for permission in self.permission_classes]

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """Mark this notification read for the caller."""
        notification = self.get_object()
        notifications_mark_read(user=request.user, notification_ids=[notification.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=notification.pk)).data)

    @extend_schema(
        request=None,
        responses=inline_serializer("MarkedRead", {"marked": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark every notification of the caller's workspaces read for the caller."""
        return Response({"marked": notifications_mark_read(user=request.user)})
