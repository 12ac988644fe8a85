"""Message templates as synced from each WABA, their status history, and each WABA's sync state."""

from __future__ import annotations

from django.db import models

from accounts.models import WorkspaceOwned


class TemplateStatus(models.TextChoices):
    """Meta's template statuses (graph-api.md, "Templates")."""

    APPROVED = "APPROVED"
    PENDING = "PENDING"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"
    IN_APPEAL = "IN_APPEAL"
    PENDING_DELETION = "PENDING_DELETION"
    DELETED = "DELETED"
    FLAGGED = "FLAGGED"
    REINSTATED = "REINSTATED"
    ARCHIVED = "ARCHIVED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    LOCKED = "LOCKED"


# Not a Meta status: what the status history records when Meta stops returning a template.
REMOVED = "REMOVED"


class TemplateCategory(models.TextChoices):
    MARKETING = "MARKETING"
    UTILITY = "UTILITY"
    AUTHENTICATION = "AUTHENTICATION"


class ParameterFormat(models.TextChoices):
    POSITIONAL = "POSITIONAL"
    NAMED = "NAMED"


class HeaderFormat(models.TextChoices):
    NONE = "", "None"
    TEXT = "TEXT"
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    DOCUMENT = "DOCUMENT"
    LOCATION = "LOCATION"
    GIF = "GIF"
    PRODUCT = "PRODUCT"


class Template(WorkspaceOwned):
    # The number whose token last synced it; templates belong to the WABA, not the number,
    # so deleting a number keeps them (campaigns refer to templates).
    number = models.ForeignKey(
        "numbers.Number",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="templates",
    )
    waba_id = models.CharField("WABA ID", max_length=32)
    meta_id = models.CharField("Meta template ID", max_length=32, blank=True)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    # Meta's values are stored as sent; the choices name the known ones for filters.
    category = models.CharField(max_length=32, choices=TemplateCategory.choices, blank=True)
    status = models.CharField(max_length=32, choices=TemplateStatus.choices)
    parameter_format = models.CharField(
        max_length=16, choices=ParameterFormat.choices, default=ParameterFormat.POSITIONAL
    )
    components = models.JSONField(default=list, blank=True)
    parameters = models.JSONField(default=list, blank=True)
    header_format = models.CharField(
        max_length=16, choices=HeaderFormat.choices, blank=True, default=HeaderFormat.NONE
    )
    # Why the product cannot send this shape ("" when it can): set at sync from
    # templates_sync.rendering.unsendable_reason; pre-flight refuses such a template.
    unsendable_reason = models.CharField(max_length=300, blank=True)
    # Meta's quality score of the template (message_template_quality_update: GREEN,
    # YELLOW, RED, UNKNOWN) and when it last changed.
    quality_score = models.CharField(max_length=16, blank=True)
    quality_changed_at = models.DateTimeField(null=True, blank=True)
    # The category before Meta last changed it (template_category_update), and when.
    previous_category = models.CharField(max_length=32, blank=True)
    category_changed_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(help_text="When a sync last created or changed it.")
    last_seen_at = models.DateTimeField(help_text="When Meta last returned it.")
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when Meta stopped returning it."
    )
    status_changed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "language", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "waba_id", "name", "language"],
                name="unique_template_per_waba",
            )
        ]
        indexes = [models.Index(fields=["workspace", "status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def is_sendable(self) -> bool:
        return self.status == TemplateStatus.APPROVED and self.removed_at is None


class StatusSource(models.TextChoices):
    SYNC = "sync", "Sync"
    WEBHOOK = "webhook", "Webhook"
    MANUAL = "manual", "Manual"


class TemplateStatusChange(models.Model):
    """One change of a template's status; ``old`` is blank when the template first appeared."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="status_changes")
    old = models.CharField(max_length=32, blank=True)
    new = models.CharField(max_length=32)
    at = models.DateTimeField()
    reason = models.TextField(blank=True)
    source = models.CharField(
        max_length=16, choices=StatusSource.choices, default=StatusSource.SYNC
    )

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.template}: {self.old or '-'} -> {self.new}"


class SyncState(models.TextChoices):
    OK = "ok", "OK"
    THROTTLED = "throttled", "Throttled by Meta"
    AUTH_FAILED = "auth_failed", "Token or permission refused"
    FAILED = "failed", "Failed"


class WabaSync(WorkspaceOwned):
    """The outcome of the last template sync of one WABA of a workspace."""

    waba_id = models.CharField("WABA ID", max_length=32)
    number = models.ForeignKey(
        "numbers.Number", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=16, choices=SyncState.choices, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # When the list applied last was fetched: an older, slower sync must not overwrite it.
    data_as_of = models.DateTimeField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    error_code = models.IntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "WABA sync"
        ordering = ["waba_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "waba_id"], name="unique_waba_sync")
        ]

    def __str__(self) -> str:
        return f"WABA {self.waba_id}: {self.get_state_display() or 'never synced'}"
