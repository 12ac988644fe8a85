"""REST API for the automatic replies (api.md, "Automation"): the settings and keyword rules."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions, generics, serializers, viewsets

from accounts.models import MANAGER_ROLES
from accounts.tenancy import (
    WORKSPACE_HEADER,
    IsWorkspaceManagerOrReadOnly,
    WorkspaceScopedMixin,
    resolve_workspace,
    role_in,
)
from automation.matching import normalize
from automation.models import AutomationSettings, KeywordRule
from automation.services import settings_for
from campaigns.models import Campaign
from numbers.models import Number
from templates_sync.models import Template

KEYWORDS_MAX = 100
KEYWORD_MAX_LENGTH = 64
# The LLM settings, in the order both the API and the admin form show them.
LLM_FIELDS = [
    "llm_enabled",
    "llm_base_url",
    "llm_model",
    "llm_api_key",
    "llm_system_prompt",
    "llm_knowledge",
    "llm_temperature",
    "llm_max_tokens",
    "llm_timeout_seconds",
    "llm_max_replies_per_10_minutes",
    "llm_max_consecutive_replies",
    "llm_fallback",
    "llm_fallback_text",
]


def _keywords(value) -> list[str]:
    if not isinstance(value, list):
        raise serializers.ValidationError("a list of words")
    if len(value) > KEYWORDS_MAX:
        raise serializers.ValidationError(f"at most {KEYWORDS_MAX} keywords")
    cleaned: list[str] = []
    for index, word in enumerate(value):
        if not isinstance(word, str) or not word.strip():
            raise serializers.ValidationError(f"item {index}: a non-empty text")
        if len(word) > KEYWORD_MAX_LENGTH:
            raise serializers.ValidationError(
                f"item {index}: longer than {KEYWORD_MAX_LENGTH} characters"
            )
        if not normalize(word):
            raise serializers.ValidationError(f"item {index}: {word!r} has no letters or digits")
        if word.strip() not in cleaned:
            cleaned.append(word.strip())
    return cleaned


class AutomationSettingsSerializer(serializers.ModelSerializer):
    # Write only and never echoed: a bearer secret for the LLM provider.
    llm_api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=True,
        style={"input_type": "password"},
    )
    llm_api_key_set = serializers.SerializerMethodField()

    class Meta:
        model = AutomationSettings
        fields = [
            "opt_out_keywords",
            "opt_in_keywords",
            "opt_out_confirmation",
            *LLM_FIELDS,
            "llm_api_key_set",
            "human_quiet_minutes",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]

    def get_llm_api_key_set(self, obj) -> bool:
        return bool(obj.llm_api_key)

    def validate_opt_out_keywords(self, value):
        return _keywords(value)

    def validate_opt_in_keywords(self, value):
        return _keywords(value)

    def validate(self, attrs):
        merged = {
            name: attrs.get(name, getattr(self.instance, name, None))
            for name in ("opt_out_keywords", "opt_in_keywords", "llm_fallback", "llm_fallback_text")
        }
        both = {normalize(w) for w in merged["opt_out_keywords"] or []} & {
            normalize(w) for w in merged["opt_in_keywords"] or []
        }
        if both:
            raise serializers.ValidationError(
                {"opt_in_keywords": [f"also an opt-out keyword: {', '.join(sorted(both))}"]}
            )
        if merged["llm_fallback"] == "text" and not (merged["llm_fallback_text"] or "").strip():
            raise serializers.ValidationError(
                {"llm_fallback_text": ["needed when the fallback is a text"]}
            )
        return attrs

    @sensitive_variables("validated_data")
    def update(self, instance, validated_data):
        return super().update(instance, validated_data)


class AutomationSettingsView(generics.RetrieveUpdateAPIView):
    """The caller's workspace's automation settings (created with the defaults on first
    read). Owners and admins change them; agents read them."""

    serializer_class = AutomationSettingsSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        requested = self.request.headers.get(WORKSPACE_HEADER) or self.request.query_params.get(
            "workspace"
        )
        workspace = resolve_workspace(self.request.user, requested)
        if self.request.method not in ("GET", "HEAD", "OPTIONS") and (
            role_in(self.request.user, workspace) not in MANAGER_ROLES
        ):
            raise exceptions.PermissionDenied(IsWorkspaceManagerOrReadOnly.message)
        return settings_for(workspace.pk)


class KeywordRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = KeywordRule
        fields = [
            "id",
            "name",
            "match",
            "pattern",
            "reply_text",
            "reply_template",
            "reply_parameters",
            "numbers",
            "campaign",
            "priority",
            "cooldown_minutes",
            "active",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        scope = self.context.get("workspace_scope")
        if scope is not None:
            # Another workspace's template, number or campaign is "does not exist".
            self.fields["reply_template"].queryset = scope(Template.objects.all())
            self.fields["numbers"].child_relation.queryset = scope(Number.objects.all())
            self.fields["campaign"].queryset = scope(Campaign.objects.all())

    def validate(self, attrs):
        workspace = attrs.get("workspace") or getattr(self.instance, "workspace", None)
        if workspace is None:
            workspace = self.context["view"].request_workspace()
        rule = KeywordRule(workspace=workspace)
        if self.instance is not None:
            for field in KeywordRule._meta.concrete_fields:
                setattr(rule, field.attname, getattr(self.instance, field.attname))
        for key, value in attrs.items():
            if key != "numbers":
                setattr(rule, key, value)
        try:
            rule.clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None
        numbers = attrs.get("numbers") or []
        if any(n.workspace_id != workspace.pk for n in numbers):
            raise serializers.ValidationError({"numbers": ["not a number of this workspace"]})
        return attrs


class KeywordRuleViewSet(WorkspaceScopedMixin, viewsets.ModelViewSet):
    """Canned replies to matching inbound messages, lowest priority first."""

    queryset = KeywordRule.objects.prefetch_related("numbers").order_by("priority", "pk")
    serializer_class = KeywordRuleSerializer
