"""Each error's consequence when Meta reports it in a `failed` status webhook (the usual
way): the same as in a send answer (tests/engine/test_consequences.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import CampaignStatus, RecipientStatus, Suppression
from messaging.consequences import recipients_backed_off
from numbers.models import NumberStatus
from tests.webhooks.conftest import status, statuses_payload

pytestmark = pytest.mark.django_db


def failed(recipient, code: int, seconds: int = 4, title: str = "Meta said no") -> dict:
    return statuses_payload(
        status(
            recipient.wamid,
            "failed",
            seconds,
            wa_id=recipient.phone.lstrip("+"),
            errors=[{"code": code, "title": title, "message": title}],
        )
    )


def test_131048_by_webhook_holds_the_number_pauses_its_campaigns_and_keeps_the_row(
    deliver, world, api, owner
):
    row = world.recipient("+919800000001")
    other = world.new_campaign("Second")
    other_row = world.recipient("+919800000002", status=RecipientStatus.PENDING, campaign=other)

    event = deliver(failed(row, 131048, title="Spam rate limit hit"))

    row.refresh_from_db()
    # Not refused for its own sake: it waits for a resume, with Meta's code shown.
    assert (row.status, row.error_code, row.claim_token) == (RecipientStatus.PENDING, 131048, "")
    world.number.refresh_from_db()
    assert (world.number.status, world.number.block_code) == (NumberStatus.RATE_LIMITED, 131048)
    for campaign in (world.campaign, other):
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.PAUSED
        assert "131048" in campaign.pause_reason
    assert other_row.__class__.objects.get(pk=other_row.pk).status == RecipientStatus.PENDING
    assert event.outcome["consequence:pause_number"] == 1

    # A person cannot resume before the cooldown; the 409 says when, and nothing changes.
    answer = api(owner).post(f"/api/campaigns/{world.campaign.pk}/resume/", {}, format="json")
    assert answer.status_code == 409
    assert "131048" in answer.json()["detail"]
    assert "can be resumed from" in answer.json()["detail"]
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    world.number.refresh_from_db()
    assert world.number.block_code == 131048

    # After the cooldown the person's resume lifts the hold.
    world.number.__class__.objects.filter(pk=world.number.pk).update(
        blocked_at=timezone.now() - timedelta(hours=2)
    )
    answer = api(owner).post(f"/api/campaigns/{world.campaign.pk}/resume/", {}, format="json")
    assert answer.status_code == 200, answer.content
    world.number.refresh_from_db()
    assert (world.number.status, world.number.block_code) == (NumberStatus.ACTIVE, None)


def test_131049_by_webhook_fails_the_row_and_backs_the_phone_off_in_the_workspace(deliver, world):
    row = world.recipient("+919800000001")
    deliver(failed(row, 131049))
    row.refresh_from_db()
    assert (row.status, row.error_code) == (RecipientStatus.FAILED, 131049)
    backed_off = recipients_backed_off(world.workspace.pk, ["+919800000001", "+919800000002"])
    assert list(backed_off) == ["+919800000001"]
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.RUNNING


def test_131042_by_webhook_pauses_every_campaign_of_the_account(deliver, world):
    row = world.recipient("+919800000001")
    # A campaign on the account's other number only.
    elsewhere = world.new_campaign("Elsewhere")
    elsewhere.numbers.set([world.other_number])
    deliver(failed(row, 131042, title="Business eligibility payment issue"))
    row.refresh_from_db()
    assert row.status == RecipientStatus.PENDING
    for campaign in (world.campaign, elsewhere):
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.PAUSED
        assert "131042" in campaign.pause_reason


def test_133010_by_webhook_stops_the_number(deliver, world):
    row = world.recipient("+919800000001")
    deliver(failed(row, 133010, title="Account not registered"))
    world.number.refresh_from_db()
    assert world.number.status == NumberStatus.DISCONNECTED
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    row.refresh_from_db()
    assert row.status == RecipientStatus.PENDING


def test_368_by_webhook_blocks_the_number_until_a_person_lifts_it(deliver, world):
    row = world.recipient("+919800000001")
    deliver(failed(row, 368, title="Temporarily blocked for policy violations"))
    world.number.refresh_from_db()
    assert (world.number.status, world.number.block_code) == (NumberStatus.BLOCKED, 368)


def test_132000_by_webhook_pauses_the_campaign_and_keeps_the_row(deliver, world):
    row = world.recipient("+919800000001")
    deliver(failed(row, 132000, title="Number of parameters does not match"))
    row.refresh_from_db()
    assert row.status == RecipientStatus.PENDING
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    assert "changed at Meta" in world.campaign.pause_reason


def test_132001_by_webhook_fails_the_row_and_pauses_the_campaign(deliver, world):
    row = world.recipient("+919800000001")
    deliver(failed(row, 132001, title="Template does not exist"))
    row.refresh_from_db()
    assert row.status == RecipientStatus.FAILED
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED


def test_a_transient_failure_by_webhook_is_retried(deliver, world):
    row = world.recipient("+919800000001", attempts=1)
    deliver(failed(row, 131000, title="Something went wrong"))
    row.refresh_from_db()
    assert row.status == RecipientStatus.RETRY_WAIT
    assert row.next_attempt_at is not None
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.RUNNING


def test_a_row_of_a_finished_campaign_stays_failed_but_the_number_is_held(deliver, world):
    world.campaign.__class__.objects.filter(pk=world.campaign.pk).update(
        status=CampaignStatus.COMPLETED
    )
    row = world.recipient("+919800000001")
    deliver(failed(row, 131048))
    row.refresh_from_db()
    assert row.status == RecipientStatus.FAILED
    world.number.refresh_from_db()
    assert world.number.block_code == 131048


def test_131050_by_webhook_suppresses(deliver, world):
    row = world.recipient("+919800000001")
    deliver(failed(row, 131050))
    assert Suppression.objects.filter(phone="+919800000001").exists()


def test_a_recipient_error_changes_nothing_beyond_the_row(deliver, world):
    row = world.recipient("+919800000001")
    event = deliver(failed(row, 131026))
    row.refresh_from_db()
    assert row.status == RecipientStatus.FAILED
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.RUNNING
    world.number.refresh_from_db()
    assert world.number.status == NumberStatus.ACTIVE
    assert not [key for key in event.outcome if key.startswith("consequence:")]


def test_a_pair_rate_failure_by_webhook_waits_at_least_the_pair_time(deliver, world, settings):
    settings.SEND_RETRY_DELAYS = [1, 2, 3]
    row = world.recipient("+919800000001", attempts=1)
    before = timezone.now()
    deliver(failed(row, 131056, title="Pair rate limit hit"))
    row.refresh_from_db()
    assert row.status == RecipientStatus.RETRY_WAIT
    assert row.next_attempt_at >= before + timedelta(seconds=settings.PAIR_RATE_RETRY_SECONDS)


def test_retries_by_webhook_end_after_the_allowed_attempts(deliver, world):
    row = world.recipient("+919800000001", attempts=4)
    deliver(failed(row, 131000))
    row.refresh_from_db()
    assert row.status == RecipientStatus.FAILED
