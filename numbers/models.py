"""A workspace's WhatsApp sending numbers, with what Meta last reported about each."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from accounts.models import WorkspaceOwned
from config.fields import EncryptedTextField

if TYPE_CHECKING:
    from messaging.graph import GraphClient

# Meta's throughput per number (graph-api.md, "Throughput and limits").
MPS_STANDARD = 80
MPS_HIGH = 1000
# Numbers shared with the WhatsApp Business app ("coexistence") are fixed at 20/s.
MPS_COEXISTENCE = 20

graph_id_validator = RegexValidator(
    r"^[0-9]{1,32}$", "Enter the numeric id Meta shows (digits only)."
)


class NumberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    TOKEN_EXPIRED = "token_expired", "Token expired"
    DISCONNECTED = "disconnected", "Disconnected"
    BLOCKED = "blocked", "Blocked"
    # Meta's own statuses FLAGGED and RATE_LIMITED, and the product's hold after a
    # spam-rate limit (131048): the number exists but must not send now.
    FLAGGED = "flagged", "Flagged by Meta"
    RATE_LIMITED = "rate_limited", "Rate limited by Meta"


# Errors after which the product holds the number until a person lifts the hold
# (numbers.services.number_block_clear, or a person resuming a campaign): Meta's
# status on the next refresh does not lift it.
PRODUCT_BLOCK_CODES = frozenset({368, 131031, 131048})


def derive_max_mps(*, throughput_level: str, is_on_biz_app: bool) -> int:
    """Meta's messages/s for a number from what Meta reports about it."""
    if is_on_biz_app:
        return MPS_COEXISTENCE
    if throughput_level.upper() == "HIGH":
        return MPS_HIGH
    return MPS_STANDARD


class Number(WorkspaceOwned):
    label = models.CharField(max_length=100, blank=True)
    phone_number_id = models.CharField(
        "phone number ID", max_length=32, validators=[graph_id_validator]
    )
    waba_id = models.CharField(
        "WhatsApp Business Account ID", max_length=32, validators=[graph_id_validator]
    )
    access_token = EncryptedTextField()

    # What Meta reports (GET /{phone-number-id}); refreshed by the connection test.
    display_phone_number = models.CharField(max_length=32, blank=True)
    verified_name = models.CharField(max_length=200, blank=True)
    quality_rating = models.CharField(max_length=16, blank=True)
    # The number's own tier field, deprecated by Meta since October 2025...
    messaging_limit_tier = models.CharField(max_length=32, blank=True)
    # ...for the business portfolio's limit (whatsapp_business_manager_messaging_limit),
    # shared by all its numbers: what the tier budget reads first.
    business_messaging_limit = models.CharField(max_length=32, blank=True)
    throughput_level = models.CharField(max_length=32, blank=True)
    name_status = models.CharField(max_length=64, blank=True)
    platform_type = models.CharField(max_length=32, blank=True)
    meta_status = models.CharField("status at Meta", max_length=32, blank=True)
    is_on_biz_app = models.BooleanField("shared with the WhatsApp Business app", default=False)

    max_mps = models.PositiveIntegerField("max messages/s", default=MPS_STANDARD)
    max_mps_override = models.PositiveIntegerField(
        "max messages/s override",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MPS_HIGH)],
        help_text="Leave empty to use Meta's throughput for this number.",
    )
    status = models.CharField(
        max_length=16, choices=NumberStatus.choices, default=NumberStatus.ACTIVE
    )
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_code = models.IntegerField(null=True, blank=True)
    # A hold the product set after Meta's error (PRODUCT_BLOCK_CODES); only a person
    # lifts it, however Meta's status reads meanwhile.
    block_code = models.IntegerField(null=True, blank=True)
    block_reason = models.TextField(blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "phone_number_id"], name="unique_number_per_workspace"
            )
        ]

    def __str__(self) -> str:
        shown = self.display_phone_number or self.phone_number_id
        return f"{self.label} ({shown})" if self.label else shown

    @property
    def is_usable(self) -> bool:
        return self.status == NumberStatus.ACTIVE

    def graph_client(self) -> GraphClient:
        """A Graph API client that acts with this number's access token."""
        from messaging.graph import GraphClient

        return GraphClient(self.access_token)

    def derived_max_mps(self) -> int:
        return derive_max_mps(
            throughput_level=self.throughput_level,
            is_on_biz_app=self.is_on_biz_app,
        )

    @property
    def messaging_limit(self) -> str:
        """The messaging-limit tier in force: the portfolio's, else the number's old field."""
        return self.business_messaging_limit or self.messaging_limit_tier

    def apply_max_mps(self) -> None:
        """Set ``max_mps`` from the override, or else from what Meta reported."""
        self.max_mps = self.max_mps_override or self.derived_max_mps()
