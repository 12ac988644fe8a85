"""Writes for campaigns, one module per concern; the public names are re-exported here.

- ``lifecycle``: settings, the state machine, scheduled starts, finishing and
  the pauses the product decides on;
- ``imports``: contact imports;
- ``suppressions``: the suppression list;
- ``outcomes``: what a send's outcome does beyond its row, and resending unknowns.

Every state change goes through ``lifecycle._transition``: it locks the
campaign row, checks the change against ALLOWED_TRANSITIONS and the service's
own rules, and records a CampaignEvent in the same transaction. A refused
change raises CampaignStateError and changes nothing.
"""

from campaigns.services.imports import (
    DEFAULT_SYNC_IMPORT_MAX_BYTES,
    contacts_import,
    contacts_upload,
)
from campaigns.services.lifecycle import (
    CampaignInvalid,
    CampaignStateError,
    campaign_cancel,
    campaign_complete,
    campaign_create,
    campaign_delete,
    campaign_fail,
    campaign_finish_if_done,
    campaign_lanes_kick_after_commit,
    campaign_pause,
    campaign_pause_if_running,
    campaign_resume,
    campaign_schedule,
    campaign_schedule_time_check,
    campaign_setup_check,
    campaign_start,
    campaign_unschedule,
    campaign_update,
    campaigns_pause_for_number,
    campaigns_pause_for_template,
    campaigns_start_due,
)
from campaigns.services.outcomes import (
    ResendError,
    campaign_pause_for_template_error,
    number_pause_for_error,
    number_stop_for_error,
    recipient_suppress_for_error,
    recipients_resend_unknown,
)
from campaigns.services.suppressions import (
    SuppressionError,
    suppression_check,
    suppression_create,
    suppression_delete,
    suppression_ensure,
    suppression_lift,
)

__all__ = [
    "DEFAULT_SYNC_IMPORT_MAX_BYTES",
    "CampaignInvalid",
    "CampaignStateError",
    "ResendError",
    "SuppressionError",
    "campaign_cancel",
    "campaign_complete",
    "campaign_create",
    "campaign_delete",
    "campaign_fail",
    "campaign_finish_if_done",
    "campaign_lanes_kick_after_commit",
    "campaign_pause",
    "campaign_pause_for_template_error",
    "campaign_pause_if_running",
    "campaign_resume",
    "campaign_schedule",
    "campaign_schedule_time_check",
    "campaign_setup_check",
    "campaign_start",
    "campaign_unschedule",
    "campaign_update",
    "campaigns_pause_for_number",
    "campaigns_pause_for_template",
    "campaigns_start_due",
    "contacts_import",
    "contacts_upload",
    "number_pause_for_error",
    "number_stop_for_error",
    "recipient_suppress_for_error",
    "recipients_resend_unknown",
    "suppression_check",
    "suppression_create",
    "suppression_delete",
    "suppression_ensure",
    "suppression_lift",
]
