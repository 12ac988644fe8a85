"""Per-workspace automatic-reply settings (opt-out keywords, the LLM agent) and keyword rules."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import WorkspaceOwned
from config.fields import EncryptedTextField

# Meta's and the carriers' usual opt-out words, and the Hindi ones our first users'
# customers send ("band", "rokein", "band karo"): issue 13.
DEFAULT_OPT_OUT_KEYWORDS = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "OPT-OUT",
    "REVOKE",
    "STOP PROMOTIONS",
    "बंद",
    "रोकें",
    "बंद करो",
]
DEFAULT_OPT_IN_KEYWORDS = ["START", "UNSTOP", "SUBSCRIBE"]
DEFAULT_OPT_OUT_CONFIRMATION = (
    "You have been unsubscribed and will get no more messages from us. "
    "Reply START to subscribe again."
)
DEFAULT_SYSTEM_PROMPT = (
    "You are the WhatsApp assistant of a business. Answer the customer's question "
    "briefly and politely, in the language they wrote in, using only the business "
    "information you are given. If you cannot answer from it, or the customer asks "
    "for a person, hand the conversation over to a human."
)
# A regular expression longer than this is refused: with the message text capped too
# (automation.matching.MATCH_TEXT_LIMIT), this bounds what one match can cost.
PATTERN_MAX_LENGTH = 200


def default_opt_out_keywords() -> list[str]:
    return list(DEFAULT_OPT_OUT_KEYWORDS)


def default_opt_in_keywords() -> list[str]:
    return list(DEFAULT_OPT_IN_KEYWORDS)


class Fallback(models.TextChoices):
    HANDOFF = "handoff", "Hand over to a person"
    TEXT = "text", "Send the fallback text"


class AutomationSettings(WorkspaceOwned):
    """The workspace's automatic replies: one row per workspace (api.md, "Automation")."""

    opt_out_keywords = models.JSONField(default=default_opt_out_keywords, blank=True)
    opt_in_keywords = models.JSONField(default=default_opt_in_keywords, blank=True)
    opt_out_confirmation = models.TextField(
        default=DEFAULT_OPT_OUT_CONFIRMATION,
        blank=True,
        help_text="Sent once, inside the 24 h window, to a contact who opted out (empty: none).",
    )
    llm_enabled = models.BooleanField("LLM agent enabled", default=False)
    llm_base_url = models.URLField(
        "LLM base URL",
        max_length=500,
        default="https://api.openai.com/v1",
        help_text="Any OpenAI-compatible endpoint: OpenAI, Azure OpenAI, Ollama, vLLM, LM Studio.",
    )
    llm_model = models.CharField("LLM model", max_length=200, default="gpt-4o-mini")
    llm_api_key = EncryptedTextField("LLM API key", blank=True)
    llm_system_prompt = models.TextField("system prompt", default=DEFAULT_SYSTEM_PROMPT)
    llm_knowledge = models.TextField(
        "knowledge", blank=True, help_text="What the agent may tell customers (FAQ, prices, hours)."
    )
    llm_temperature = models.FloatField(
        "temperature", default=0.3, validators=[MinValueValidator(0), MaxValueValidator(2)]
    )
    llm_max_tokens = models.PositiveIntegerField(
        "max tokens", default=300, validators=[MinValueValidator(1), MaxValueValidator(4096)]
    )
    llm_timeout_seconds = models.FloatField(
        "timeout (seconds)", default=10, validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    llm_max_replies_per_10_minutes = models.PositiveIntegerField(
        "max bot replies per conversation per 10 minutes",
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
    )
    llm_max_consecutive_replies = models.PositiveIntegerField(
        "max bot replies in a row without a new message",
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
    )
    llm_fallback = models.CharField(
        "on LLM error or timeout", max_length=8, choices=Fallback.choices, default=Fallback.HANDOFF
    )
    llm_fallback_text = models.TextField("fallback text", blank=True)
    human_quiet_minutes = models.PositiveIntegerField(
        "bot stays quiet after a person replied (minutes)",
        default=30,
        validators=[MaxValueValidator(24 * 60)],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "automation settings"
        verbose_name_plural = "automation settings"
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="unique_automation_settings")
        ]

    def __str__(self) -> str:
        return f"automation of {self.workspace}"


class MatchKind(models.TextChoices):
    EXACT = "exact", "Exact (whole message)"
    CONTAINS = "contains", "Contains"
    REGEX = "regex", "Regular expression"


class KeywordRule(WorkspaceOwned):
    """A canned reply to inbound messages that match, in priority order (lowest first)."""

    name = models.CharField(max_length=100)
    match = models.CharField(max_length=8, choices=MatchKind.choices, default=MatchKind.CONTAINS)
    pattern = models.CharField(max_length=PATTERN_MAX_LENGTH)
    reply_text = models.TextField(
        blank=True,
        help_text="Free-form reply; {{name}}, {{phone}} and the contact's CSV columns "
        "(e.g. {{first_name}}) are filled in.",
    )
    reply_template = models.ForeignKey(
        "templates_sync.Template",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="An APPROVED template instead of text (works outside the 24 h window too).",
    )
    # The template's parameters ({"body.1": "{{name}}"}), filled in like reply_text.
    reply_parameters = models.JSONField(default=dict, blank=True)
    numbers = models.ManyToManyField(
        "numbers.Number", blank=True, related_name="+", help_text="Only on these (empty: all)."
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only for contacts answering this campaign.",
    )
    priority = models.IntegerField(default=100, help_text="Lower runs first.")
    cooldown_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MaxValueValidator(7 * 24 * 60)],
        help_text="The rule answers one contact at most once in this time.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "pk"]
        indexes = [
            models.Index(fields=["workspace", "active", "priority"], name="keyword_rule_order")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The pattern must be usable and the reply one of text or an APPROVED template of
        the rule's workspace; raises ValidationError naming the field."""
        from django.core.exceptions import ValidationError

        from automation.matching import PatternInvalid, pattern_check

        errors: dict[str, list[str]] = {}
        try:
            pattern_check(self.match, self.pattern or "")
        except PatternInvalid as error:
            errors["pattern"] = [str(error)]
        has_text = bool((self.reply_text or "").strip())
        if has_text == (self.reply_template_id is not None):
            errors["reply_text"] = ["give either a reply text or a reply template, not both"]
        template = self.reply_template if self.reply_template_id else None
        if template is not None:
            if template.workspace_id != self.workspace_id:
                errors["reply_template"] = ["no such template in this workspace"]
            elif template.status != "APPROVED":
                errors["reply_template"] = [
                    f"template {template.name!r} is {template.status}, not APPROVED"
                ]
        if self.campaign_id and self.campaign.workspace_id != self.workspace_id:
            errors["campaign"] = ["no such campaign in this workspace"]
        if not isinstance(self.reply_parameters, dict) or not all(
            isinstance(v, str) for v in self.reply_parameters.values()
        ):
            errors["reply_parameters"] = ['an object of texts: {"body.1": "{{name}}"}']
        if errors:
            raise ValidationError(errors)
