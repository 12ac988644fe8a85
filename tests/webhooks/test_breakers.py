"""The numbers' breakers fed by status webhooks: identical failures in a row, and the
failed share over a window."""

from __future__ import annotations

import pytest

from campaigns.models import CampaignStatus, RecipientStatus
from tests.webhooks.conftest import status, statuses_payload

pytestmark = pytest.mark.django_db


def failures(rows, code, seconds=4):
    return statuses_payload(
        *[
            status(
                row.wamid,
                "failed",
                seconds,
                wa_id=row.phone.lstrip("+"),
                errors=[{"code": code, "title": "Something new", "message": "x"}],
            )
            for row in rows
        ]
    )


def test_n_identical_unknown_failures_in_a_row_pause_the_numbers_campaigns(
    deliver, world, settings
):
    settings.BREAKER_CONSECUTIVE_FAILURES = 3
    rows = [world.recipient(f"+91980000001{i}") for i in range(3)]
    deliver(failures(rows[:2], 987654))
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.RUNNING
    deliver(failures(rows[2:], 987654, seconds=5))
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    assert "3 messages in a row failed with Meta error 987654" in world.campaign.pause_reason
    assert {r.status for r in world.campaign.recipients.all()} == {RecipientStatus.FAILED}


def test_a_delivery_between_failures_resets_the_streak(deliver, world, settings):
    settings.BREAKER_CONSECUTIVE_FAILURES = 3
    rows = [world.recipient(f"+91980000002{i}") for i in range(4)]
    deliver(failures(rows[:2], 987654))
    deliver(statuses_payload(status(rows[2].wamid, "delivered", 5, wa_id=rows[2].phone[1:])))
    deliver(failures(rows[3:], 987654, seconds=6))
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.RUNNING


def test_a_high_failed_share_over_the_window_pauses_the_number(deliver, world, settings):
    settings.BREAKER_FAILURE_MIN_STATUSES = 10
    settings.BREAKER_FAILURE_RATE = 0.5
    rows = [world.recipient(f"+9198000003{i:02d}") for i in range(10)]
    delivered = statuses_payload(
        *[status(r.wamid, "delivered", 4, wa_id=r.phone[1:]) for r in rows[:4]]
    )
    deliver(delivered)
    # 131026 is a recipient error: no single one pauses anything, but 6 of 10 do.
    deliver(failures(rows[4:9], 131026))
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.RUNNING
    deliver(failures(rows[9:], 131026, seconds=5))
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    assert "6 of the last 10 messages on this number failed" in world.campaign.pause_reason
    assert "131026" in world.campaign.pause_reason
    # The other number's campaigns are not this number's.
    other = world.new_campaign("Other number")
    other.numbers.set([world.other_number])
    other.refresh_from_db()
    assert other.status == CampaignStatus.RUNNING
