"""Admin for the automatic replies: the workspace's settings and its keyword rules."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from accounts.tenancy import WorkspaceScopedAdmin
from automation.api import KEYWORD_MAX_LENGTH, KEYWORDS_MAX, LLM_FIELDS
from automation.matching import normalize
from automation.models import AutomationSettings, KeywordRule


class KeywordsField(forms.CharField):
    """A keyword list edited one per line."""

    widget = forms.Textarea(attrs={"rows": 6})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        words = [w.strip() for w in (value or "").splitlines() if w.strip()]
        if len(words) > KEYWORDS_MAX:
            raise ValidationError(f"At most {KEYWORDS_MAX} keywords.")
        for word in words:
            if len(word) > KEYWORD_MAX_LENGTH:
                raise ValidationError(
                    f"{word[:20]!r}… is longer than {KEYWORD_MAX_LENGTH} characters."
                )
            if not normalize(word):
                raise ValidationError(f"{word!r} has no letters or digits.")
        return list(dict.fromkeys(words))


class AutomationSettingsForm(forms.ModelForm):
    opt_out_keywords = KeywordsField(required=False, help_text="One per line; whole message only.")
    opt_in_keywords = KeywordsField(required=False, help_text="One per line.")
    llm_base_url = forms.URLField(
        label="LLM base URL",
        max_length=500,
        assume_scheme="https",
        help_text=AutomationSettings._meta.get_field("llm_base_url").help_text,
    )

    class Meta:
        model = AutomationSettings
        fields = [
            "workspace",
            "opt_out_keywords",
            "opt_in_keywords",
            "opt_out_confirmation",
            *LLM_FIELDS,
            "human_quiet_minutes",
        ]


@admin.register(AutomationSettings)
class AutomationSettingsAdmin(WorkspaceScopedAdmin):
    form = AutomationSettingsForm
    list_display = ["workspace", "llm_enabled", "llm_model", "llm_fallback", "updated_at"]
    fieldsets = [
        (None, {"fields": ["workspace"]}),
        (
            "Opt-out and opt-in",
            {"fields": ["opt_out_keywords", "opt_in_keywords", "opt_out_confirmation"]},
        ),
        (
            "LLM agent",
            {"fields": LLM_FIELDS},
        ),
        ("People", {"fields": ["human_quiet_minutes"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # One row per workspace: it never moves to another.
        return ["workspace"] if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        key = form.base_fields.get("llm_api_key")
        if key is not None:
            key.required = False
            key.help_text = (
                "Stored encrypted, never shown. Leave empty to keep the current key."
                if obj is not None and obj.llm_api_key
                else "Stored encrypted, never shown."
            )
        return form

    def save_model(self, request, obj, form, change):
        if change and not form.cleaned_data.get("llm_api_key"):
            # An empty password box means "unchanged", not "remove the key".
            obj.llm_api_key = AutomationSettings.objects.get(pk=obj.pk).llm_api_key
        super().save_model(request, obj, form, change)


@admin.register(KeywordRule)
class KeywordRuleAdmin(WorkspaceScopedAdmin):
    list_display = [
        "name",
        "workspace",
        "match",
        "pattern",
        "priority",
        "cooldown_minutes",
        "active",
    ]
    list_filter = ["active", "match"]
    list_editable = ["active"]
    search_fields = ["name", "pattern"]
    filter_horizontal = ["numbers"]
    ordering = ["workspace", "priority", "pk"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        rule = form.instance
        foreign = rule.numbers.exclude(workspace_id=rule.workspace_id)
        if foreign.exists():
            # The form offers only the user's numbers; one of another of their workspaces
            # would never match here.
            rule.numbers.remove(*foreign)
