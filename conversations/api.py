"""REST API for contacts and conversations (api.md, "Contacts and conversations").

Every member of a conversation's workspace, agents included, may read it, reply,
assign, resolve, reopen and add notes: answering is the agent's job. Another
workspace's conversation is simply not found (404).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.tenancy import scope
from config.inputs import is_ascii_digits
from conversations import selectors, services
from conversations.models import Contact, Conversation, Message, Note

# --- serializers ----------------------------------------------------------------------------


class ContactSerializer(serializers.ModelSerializer):
    opted_out = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "phone",
            "wa_id",
            "name",
            "attributes",
            "opted_out",
            "first_seen_at",
            "last_inbound_at",
        ]
        read_only_fields = fields

    def get_opted_out(self, contact: Contact) -> bool:
        known = self.context.get("opted_out")
        if known is not None:
            return (contact.workspace_id, contact.phone) in known
        return selectors.contact_opted_out(contact) is not None


class ContactBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "phone", "name"]
        read_only_fields = fields


class ConversationSerializer(serializers.ModelSerializer):
    contact = ContactBriefSerializer(read_only=True)
    window_open = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "number",
            "contact",
            "status",
            "assigned_to",
            "unread",
            "window_expires_at",
            "window_open",
            "last_message_at",
            "last_message_preview",
            "campaign",
        ]
        read_only_fields = fields

    def get_window_open(self, conversation: Conversation) -> bool:
        return conversation.window_open()


class MessageSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    error_code = serializers.SerializerMethodField()
    error_title = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "kind",
            "text",
            "media",
            "payload",
            "wamid",
            "status",
            "error_code",
            "error_title",
            "sent_by",
            "user",
            "created_at",
            "automation",
        ]
        read_only_fields = fields

    def get_status(self, message: Message) -> str:
        return selectors.message_status(message)

    def get_error_code(self, message: Message) -> int | None:
        return selectors.message_error(message)[0]

    def get_error_title(self, message: Message) -> str:
        return selectors.message_error(message)[1]

    def to_representation(self, message: Message) -> dict:
        data = super().to_representation(message)
        if message.recipient_id is not None and message.recipient is not None:
            data["wamid"] = message.recipient.wamid or ""
        return data


class NoteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Note
        fields = ["id", "text", "user", "by", "created_at"]
        read_only_fields = ["id", "user", "by", "created_at"]


class ReplySerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=False, trim_whitespace=True)
    template = serializers.IntegerField(required=False, min_value=1)
    parameters = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False
    )
    file = serializers.FileField(required=False)
    caption = serializers.CharField(required=False, allow_blank=True, max_length=1024)

    def validate(self, attrs):
        given = [k for k in ("text", "template", "file") if attrs.get(k) not in (None, "")]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"non_field_errors": ["send exactly one of: text, template, file"]}
            )
        return attrs


class AssignSerializer(serializers.Serializer):
    user = serializers.IntegerField(allow_null=True, min_value=1)


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


# --- views ------------------------------------------------------------------------------------


class ContactViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ContactSerializer

    def get_queryset(self):
        rows = scope(Contact.objects.all(), self.request.user).order_by("-pk")
        if self.action == "list":
            rows = selectors.contact_search(rows, self.request.query_params.get("q", ""))
        return rows

    @extend_schema(parameters=[OpenApiParameter("q", str, description="phone or name")])
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        context = {
            **self.get_serializer_context(),
            "opted_out": selectors.opted_out_phones(
                [c.workspace_id for c in page], [c.phone for c in page]
            ),
        }
        return self.get_paginated_response(ContactSerializer(page, many=True, context=context).data)


_LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=["open", "pending", "resolved"]),
    OpenApiParameter("assigned", str, description="me, none or a user id"),
    OpenApiParameter("window", str, enum=["open"]),
    OpenApiParameter("campaign", int),
    OpenApiParameter("q", str, description="phone (with or without +) or name"),
]


class ConversationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ConversationSerializer

    def get_queryset(self):
        return scope(
            Conversation.objects.select_related("contact").order_by("-last_message_at", "-pk"),
            self.request.user,
        )

    def _filters(self) -> selectors.ConversationFilters:
        params = self.request.query_params
        campaign = params.get("campaign") or ""
        if campaign and not is_ascii_digits(campaign):
            raise exceptions.ValidationError({"campaign": ["a campaign id"]})
        window = params.get("window") or ""
        if window not in ("", "open"):
            raise exceptions.ValidationError({"window": ["only 'open' is a filter"]})
        return selectors.ConversationFilters(
            status=params.get("status") or "",
            assigned=params.get("assigned") or "",
            window_open=window == "open",
            campaign_id=int(campaign) if campaign else None,
            q=params.get("q") or "",
        )

    @extend_schema(parameters=_LIST_PARAMETERS)
    def list(self, request, *args, **kwargs):
        try:
            rows = selectors.conversations_filter(
                self.get_queryset(), self._filters(), request.user
            )
        except selectors.FilterError as error:
            raise exceptions.ValidationError({error.field: [error.message]}) from None
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ConversationSerializer(page, many=True).data)

    def _read(self, conversation: Conversation, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=conversation.pk)
        return Response(ConversationSerializer(fresh).data, code)

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="only messages after this id")],
        responses=MessageSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def messages(self, request, pk=None):
        conversation = self.get_object()
        after = request.query_params.get("after") or ""
        if after and not is_ascii_digits(after):
            raise exceptions.ValidationError({"after": ["a message id"]})
        if not after:
            services.conversation_campaign_sync(conversation)
        rows = selectors.conversation_messages(conversation, after=int(after) if after else None)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(MessageSerializer(page, many=True).data)

    @extend_schema(request=ReplySerializer, responses={201: MessageSerializer})
    @action(detail=True, methods=["post"])
    def reply(self, request, pk=None):
        conversation = self.get_object()
        serializer = ReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = None
        if data.get("file") is not None:
            handle = data["file"]
            upload = services.Upload(
                name=handle.name, content=handle.read(), content_type=handle.content_type or ""
            )
        try:
            message = services.reply_send(
                conversation=conversation,
                user=request.user,
                text=data.get("text"),
                template=data.get("template"),
                parameters=data.get("parameters"),
                upload=upload,
                caption=data.get("caption", ""),
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        except services.WindowClosed as error:
            return Response(
                {"detail": error.detail, "window_expired_at": error.expired_at},
                status=status.HTTP_409_CONFLICT,
            )
        except services.OptedOut as error:
            raise ConflictError(error.detail) from None
        except services.ReplyError as error:
            raise exceptions.ValidationError({"detail": [error.detail]}) from None
        message = Message.objects.select_related("recipient").get(pk=message.pk)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AssignSerializer, responses=ConversationSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        conversation = self.get_object()
        serializer = AssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_id = serializer.validated_data["user"]
        if user_id is not None and not get_user_model().objects.filter(pk=user_id).exists():
            raise exceptions.ValidationError({"user": [f"no user {user_id}"]})
        try:
            services.conversation_assign(
                conversation=conversation, user_id=user_id, by=request.user
            )
        except services.ReplyError as error:
            raise exceptions.ValidationError({"user": [error.detail]}) from None
        return self._read(conversation)

    @extend_schema(request=None, responses=ConversationSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        conversation = self.get_object()
        services.conversation_resolve(conversation=conversation)
        return self._read(conversation)

    @extend_schema(request=None, responses=ConversationSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        conversation = self.get_object()
        services.conversation_reopen(conversation=conversation)
        return self._read(conversation)

    @extend_schema(request=NoteSerializer, responses={201: NoteSerializer})
    @action(detail=True, methods=["post"])
    def notes(self, request, pk=None):
        conversation = self.get_object()
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            note = services.note_add(
                conversation=conversation,
                text=serializer.validated_data["text"],
                user=request.user,
            )
        except services.ReplyError as error:
            raise exceptions.ValidationError({"text": [error.detail]}) from None
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)
