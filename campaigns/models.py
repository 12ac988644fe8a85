"""Campaigns, their recipients (one message each), contact imports and the suppression list."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import WorkspaceOwned


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


# The only state changes a service may make (services.campaign_* enforce it).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    CampaignStatus.DRAFT: frozenset(
        {CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.CANCELLED}
    ),
    CampaignStatus.SCHEDULED: frozenset(
        {
            CampaignStatus.RUNNING,
            CampaignStatus.DRAFT,
            CampaignStatus.CANCELLED,
            CampaignStatus.FAILED,
        }
    ),
    CampaignStatus.RUNNING: frozenset(
        {
            CampaignStatus.PAUSED,
            CampaignStatus.COMPLETED,
            CampaignStatus.CANCELLED,
            CampaignStatus.FAILED,
        }
    ),
    CampaignStatus.PAUSED: frozenset(
        {CampaignStatus.RUNNING, CampaignStatus.CANCELLED, CampaignStatus.FAILED}
    ),
    CampaignStatus.COMPLETED: frozenset(),
    CampaignStatus.CANCELLED: frozenset(),
    CampaignStatus.FAILED: frozenset(),
}

# Settings (name, numbers, templates, mapping, schedule) change only in these states.
EDITABLE_STATES = frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED})
# Contacts may be added in these states; never while running (a lane may be
# claiming rows) nor after the campaign ended.
IMPORTABLE_STATES = frozenset(
    {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED}
)


class Campaign(WorkspaceOwned):
    name = models.CharField(max_length=200)
    numbers = models.ManyToManyField("numbers.Number", related_name="campaigns")
    variable_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"<template id>": {"body.1": "first_name"}}: CSV column per parameter.',
    )
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # When the campaign ended: completed, cancelled or failed.
    completed_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.TextField(blank=True)
    # Running but held back by a guard the engine enforces (the messaging-limit budget):
    # why, and when sending can go on. Cleared when the campaign sends again.
    hold_reason = models.TextField(blank=True)
    held_until = models.DateTimeField(null=True, blank=True)
    # No stored counters: counts are read from the recipient rows
    # (selectors.campaign_counts, one GROUP BY on an index), so they are exact
    # at every moment and no write path has to keep a copy in step.

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_status_due")]

    def __str__(self) -> str:
        return self.name


class CampaignTemplate(models.Model):
    """A template the campaign sends, with its share of the contacts (weight)."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="campaign_templates"
    )
    template = models.ForeignKey(
        "templates_sync.Template", on_delete=models.PROTECT, related_name="campaign_uses"
    )
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "template"], name="unique_campaign_template"
            ),
            models.CheckConstraint(
                condition=Q(weight__gte=1), name="campaign_template_weight_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} x{self.weight}"


class CampaignEvent(models.Model):
    """One state change: who, when, from, to, why."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_status = models.CharField(max_length=16, choices=CampaignStatus.choices)
    to_status = models.CharField(max_length=16, choices=CampaignStatus.choices)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


class RecipientStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRY_WAIT = "retry_wait", "Waiting to retry"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Unknown"
    CANCELLED = "cancelled", "Cancelled"


# Not yet attempted, or waiting for another attempt: what cancel stops.
UNSENT_STATES = (RecipientStatus.PENDING, RecipientStatus.RETRY_WAIT)
# Not finished: unsent, or claimed by a lane and being sent now.
NOT_DONE_STATES = (*UNSENT_STATES, RecipientStatus.SENDING)


class Recipient(models.Model):
    """One contact of a campaign and the state of the one message it gets.

    Rows are bulk-inserted by the importer with COPY, so every column the COPY
    leaves out has a database default.
    """

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", db_index=False
    )
    # E.164 with the leading '+'.
    phone = models.CharField(max_length=20)
    # Values of the assigned template's parameters, e.g. {"body.1": "Asha"}.
    variables = models.JSONField(default=dict, blank=True)
    # Neither FK gets its own index: the claim index leads with number and
    # nothing looks recipients up by template alone; each index costs on a
    # million-row COPY.
    template = models.ForeignKey(
        "templates_sync.Template", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    number = models.ForeignKey(
        "numbers.Number", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The line of the import file the contact came from (header = line 1).
    row_number = models.PositiveIntegerField(default=0, db_default=0)

    status = models.CharField(
        max_length=12,
        choices=RecipientStatus.choices,
        default=RecipientStatus.PENDING,
        db_default=RecipientStatus.PENDING,
    )
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=64, blank=True, default="", db_default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    # NULL (not "") until sent, so the partial wamid index holds sent messages only.
    wamid = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=255, blank=True, default="", db_default="")
    error_details = models.TextField(blank=True, default="", db_default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "phone"], name="unique_recipient_phone")
        ]
        indexes = [
            # The sending engine's claim: a number's due messages, oldest first.
            models.Index(
                fields=["number", "status", "next_attempt_at", "id"],
                name="recipient_claim",
                condition=Q(status__in=UNSENT_STATES),
            ),
            models.Index(fields=["campaign", "status"], name="recipient_campaign_status"),
            # Webhooks match receipts by wamid; unsent rows have none.
            models.Index(
                fields=["wamid"], name="recipient_wamid", condition=Q(wamid__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return self.phone


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One CSV upload into a campaign: its counts, progress and outcome."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=8, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=16, blank=True)
    # Remarks a person should read (encoding guessed, columns not used, ...).
    notes = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    data_rows = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(default=0)
    # Progress, committed with each batch: the last file line fully processed
    # (a retried job resumes after it) and the bytes read so far.
    processed_line = models.PositiveIntegerField(default=0)
    processed_bytes = models.BigIntegerField(default=0)
    # Recipients of this campaign with a greater id were added by this job
    # (imports into one campaign are serialised), which tells a duplicate
    # within the file from one already in the campaign.
    recipient_id_floor = models.BigIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"import {self.pk} into {self.campaign_id} ({self.status})"

    @property
    def progress(self) -> int:
        """Percent of the file read (0-100)."""
        if self.status == ImportStatus.DONE:
            return 100
        if not self.size_bytes:
            return 0
        return min(99, int(self.processed_bytes * 100 / self.size_bytes))


class ImportChunk(models.Model):
    """A piece of an uploaded file waiting for a background import.

    Kept in PostgreSQL rather than on a disk so any worker host can read it;
    pieces are read one at a time and deleted when the job ends.
    """

    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="chunks", db_index=False
    )
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="unique_import_chunk")]

    def __str__(self) -> str:
        return f"import {self.job_id} chunk {self.seq}"


class RowProblem(models.TextChoices):
    REJECTED = "rejected", "Rejected"
    DUPLICATE = "duplicate", "Duplicate"
    SUPPRESSED = "suppressed", "Suppressed"


class ImportRowError(models.Model):
    """A data row an import did not accept, and why (the downloadable error list)."""

    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="row_errors", db_index=False
    )
    row = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=RowProblem.choices)
    # As written in the file (or normalised, for duplicates and suppressions).
    phone = models.CharField(max_length=64, blank=True)
    reason = models.TextField()

    class Meta:
        ordering = ["job", "row", "pk"]
        indexes = [models.Index(fields=["job", "row"], name="import_row_error_job_row")]

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


class SuppressionSource(models.TextChoices):
    """Where an opt-out (or an opt-in that lifted one) came from (api.md, "Suppressions")."""

    KEYWORD = "keyword", "Opt-out keyword"
    BUTTON = "button", "Opt-out button"
    # Meta's user_preferences webhook: the user stopped (or resumed) marketing messages.
    USER_PREFERENCES = "user_preferences", "Marketing preference (Meta)"
    # Meta refused a send with 131050: the user stopped marketing messages.
    META_131050 = "131050", "Meta error 131050"
    MANUAL = "manual", "Manual"
    IMPORT = "import", "Import"


class Suppression(WorkspaceOwned):
    """A phone the workspace must never message again, from any of its numbers."""

    phone = models.CharField(max_length=20)
    reason = models.CharField(max_length=255, blank=True)
    source = models.CharField(
        max_length=16, choices=SuppressionSource.choices, default=SuppressionSource.MANUAL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "phone"], name="unique_suppression")
        ]

    def __str__(self) -> str:
        return self.phone


class SuppressionLift(WorkspaceOwned):
    """An opt-in that lifted a suppression: who came back, how, and what they had said."""

    phone = models.CharField(max_length=20)
    # How the contact came back (keyword START, Meta's "resume", a person, ...).
    source = models.CharField(max_length=16, choices=SuppressionSource.choices)
    reason = models.CharField(max_length=255, blank=True)
    # The suppression lifted, as it was.
    suppressed_source = models.CharField(max_length=16, choices=SuppressionSource.choices)
    suppressed_reason = models.CharField(max_length=255, blank=True)
    suppressed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workspace", "phone"], name="suppression_lift_phone")]

    def __str__(self) -> str:
        return f"{self.phone} opted in ({self.source})"
