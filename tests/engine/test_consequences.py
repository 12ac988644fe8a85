"""Each error's consequence when Meta says it in the send answer, against the simulator: the
same as by status webhook (tests/webhooks/test_consequences.py)."""

from __future__ import annotations

import time

import pytest

from campaigns.models import CampaignStatus, RecipientStatus
from messaging.consequences import recipient_backoff_set, recipients_backed_off
from messaging.lanes import lane_run
from numbers.models import NumberStatus
from numbers.services import number_test_connection
from tests.engine.test_lanes import run_until_idle, statuses

pytestmark = pytest.mark.django_db


def answer_with(sim, code: int, count: int = 1, **rule) -> None:
    sim.set_faults(errors=[{"code": code, "count": count, "mode": "response", **rule}])


def test_131048_holds_the_number_and_the_hourly_refresh_does_not_lift_it(engine, sim):
    campaign = engine.campaign(count=3)
    number = engine.numbers[0]
    answer_with(sim, 131048)
    assert lane_run(number.pk).state == "stopped"
    number.refresh_from_db()
    assert (number.status, number.block_code) == (NumberStatus.RATE_LIMITED, 131048)
    # Meta shows the number CONNECTED again: the product's hold stays.
    number_test_connection(number=number)
    number.refresh_from_db()
    assert (number.status, number.block_code) == (NumberStatus.RATE_LIMITED, 131048)
    assert statuses(campaign) == {"pending": 3}
    assert lane_run(number.pk).state == "stopped"
    assert sim.counts()["total"] == 0


def test_131049_fails_the_row_and_holds_that_phones_marketing_in_other_campaigns(engine, sim):
    phone = "+919800000077"
    first = engine.campaign(count=1, phones=[phone])
    answer_with(sim, 131049)
    run_until_idle(engine.numbers[0].pk)
    assert first.recipients.get().status == RecipientStatus.FAILED
    assert phone in recipients_backed_off(engine.workspace.pk, [phone])

    sim.set_faults(errors=[])
    second = engine.campaign(count=2, phones=[phone, "+919800000078"])
    run_until_idle(engine.numbers[0].pk)
    held = second.recipients.get(phone=phone)
    # Waits, not failed, not attempted: the back-off's end is its next attempt.
    assert (held.status, held.attempts) == (RecipientStatus.RETRY_WAIT, 0)
    assert held.next_attempt_at.timestamp() > time.time() + 23 * 3600
    assert held.error_title.startswith("Held")
    assert second.recipients.get(phone="+919800000078").status == RecipientStatus.SENT
    assert [m["to"] for m in sim.messages()] == ["919800000078"]


def test_a_backed_off_phone_still_gets_utility_templates(engine, sim):
    phone = "+919800000079"
    recipient_backoff_set(workspace_id=engine.workspace.pk, phone=phone)
    engine.hello.__class__.objects.filter(pk=engine.hello.pk).update(category="UTILITY")
    campaign = engine.campaign(count=1, phones=[phone])
    campaign.recipients.update(template=engine.hello, variables={})
    run_until_idle(engine.numbers[0].pk)
    assert statuses(campaign) == {"sent": 1}


def test_131042_pauses_every_campaign_of_the_account_and_keeps_the_row(engine, sim):
    first = engine.campaign(count=2, numbers=engine.numbers[:1])
    second = engine.campaign(count=2, numbers=engine.numbers[1:])
    answer_with(sim, 131042)
    assert lane_run(engine.numbers[0].pk).state == "stopped"
    for campaign in (first, second):
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.PAUSED
        assert "131042" in campaign.pause_reason
    assert statuses(first) == {"pending": 2}


def test_133010_stops_the_number(engine, sim):
    campaign = engine.campaign(count=2)
    answer_with(sim, 133010)
    assert lane_run(engine.numbers[0].pk).state == "stopped"
    number = engine.numbers[0]
    number.refresh_from_db()
    assert number.status == NumberStatus.DISCONNECTED
    assert statuses(campaign) == {"pending": 2}


def test_132000_pauses_the_campaign_without_failing_anyone(engine, sim):
    campaign = engine.campaign(count=3)
    answer_with(sim, 132000)
    lane_run(engine.numbers[0].pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert "changed at Meta" in campaign.pause_reason
    assert statuses(campaign) == {"pending": 3}


def test_the_breaker_pauses_after_n_identical_unknown_failures(engine, sim, settings):
    settings.BREAKER_CONSECUTIVE_FAILURES = 3
    campaign = engine.campaign(count=10)
    answer_with(sim, 987654, count=10)
    run_until_idle(engine.numbers[0].pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert "3 messages in a row failed with Meta error 987654" in campaign.pause_reason
    # Only the streak burnt; the rest of the audience waits.
    assert statuses(campaign) == {"failed": 3, "pending": 7}


def test_a_success_resets_the_breaker(engine, sim, settings):
    settings.BREAKER_CONSECUTIVE_FAILURES = 3
    campaign = engine.campaign(count=6)
    rows = list(campaign.recipients.order_by("pk"))
    # Failures on rows 1, 2, 4, 5: never three in a row.
    sim.set_faults(
        errors=[
            {"code": 987654, "count": 1, "mode": "response", "to": rows[i].phone.lstrip("+")}
            for i in (0, 1, 3, 4)
        ]
    )
    run_until_idle(engine.numbers[0].pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert statuses(campaign) == {"failed": 4, "sent": 2}


def test_368_blocks_the_number_until_a_person_lifts_it(engine, sim):
    campaign = engine.campaign(count=2)
    answer_with(sim, 368)
    assert lane_run(engine.numbers[0].pk).state == "stopped"
    number = engine.numbers[0]
    number.refresh_from_db()
    assert (number.status, number.block_code) == (NumberStatus.BLOCKED, 368)
    number_test_connection(number=number)
    number.refresh_from_db()
    assert number.status == NumberStatus.BLOCKED
    assert statuses(campaign) == {"pending": 2}


def test_a_transient_error_in_the_answer_is_retried(engine, sim):
    campaign = engine.campaign(count=1)
    answer_with(sim, 131000, http_status=500)
    lane_run(engine.numbers[0].pk)
    assert statuses(campaign) == {"retry_wait": 1}
