"""Claim-time guards against the simulator: the portfolio's messaging-limit budget holds
rows (not failed) until the window rolls, and the workspace's frequency guard skips a
second marketing message to a contact."""

from __future__ import annotations

import time

import pytest

from accounts.models import Workspace
from campaigns.models import CampaignEvent, CampaignStatus, RecipientStatus
from campaigns.signals import campaign_paused
from config.redis import get_redis
from messaging.guards import budget_key
from tests.engine.test_lanes import run_until_idle, statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def tier_250(engine):
    for number in engine.numbers:
        number.business_messaging_limit = "TIER_250"
        number.save(update_fields=["business_messaging_limit"])
    return engine


def fill_budget(waba_id: str, people: int, at: float) -> None:
    get_redis().zadd(budget_key(waba_id), {f"+9190000{i:05d}": at for i in range(people)})
    get_redis().set(f"{budget_key(waba_id)}:seeded", "1")


def test_an_exhausted_budget_holds_rows_and_shows_why(tier_250, sim, api, owner):
    engine = tier_250
    number = engine.numbers[0]
    oldest = time.time() - 3600
    fill_budget(number.waba_id, 248, oldest)
    campaign = engine.campaign(count=5)
    announced = []

    def listen(sender, campaign, reason, by, **kwargs):
        announced.append((campaign.pk, by))

    campaign_paused.connect(listen, dispatch_uid="test.budget")
    try:
        run_until_idle(number.pk)
    finally:
        campaign_paused.disconnect(dispatch_uid="test.budget")

    # Two places were left: two sent, three wait (not failed, not attempted).
    assert statuses(campaign) == {"sent": 2, "retry_wait": 3}
    assert sim.counts()["total"] == 2
    held = campaign.recipients.filter(status=RecipientStatus.RETRY_WAIT)
    assert {r.attempts for r in held} == {0}
    assert {r.error_title for r in held} == {"Held: messaging limit reached"}
    # They wait until the oldest person leaves the 24 h window.
    assert {round(r.next_attempt_at.timestamp()) for r in held} == {round(oldest + 86400)}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert campaign.hold_reason.startswith("messaging limit reached: Meta lets this business")
    assert announced == [(campaign.pk, "product")]
    assert CampaignEvent.objects.filter(campaign=campaign, reason__startswith="held:").count() == 1
    body = api(owner).get(f"/api/campaigns/{campaign.pk}/").json()
    assert body["hold_reason"] == campaign.hold_reason
    assert body["held_until"] is not None

    # The window rolls: the held rows go, and the hold is cleared.
    get_redis().zremrangebyscore(budget_key(number.waba_id), "-inf", oldest + 1)
    held.update(next_attempt_at=None)
    run_until_idle(number.pk)
    assert statuses(campaign) == {"sent": 5}
    campaign.refresh_from_db()
    assert (campaign.hold_reason, campaign.held_until) == ("", None)


def test_people_already_in_the_window_are_free(tier_250, sim):
    engine = tier_250
    number = engine.numbers[0]
    fill_budget(number.waba_id, 250, time.time() - 60)
    campaign = engine.campaign(count=2, phones=["+919000000001", "+919000000002"])
    run_until_idle(number.pk)
    assert statuses(campaign) == {"sent": 2}


def test_without_a_known_limit_nothing_is_held(engine, sim):
    campaign = engine.campaign(count=3)
    run_until_idle(engine.numbers[0].pk)
    assert statuses(campaign) == {"sent": 3}


def test_the_frequency_guard_skips_a_second_marketing_message(engine, sim):
    phone = "+919800000055"
    first = engine.campaign(count=1, phones=[phone])
    run_until_idle(engine.numbers[0].pk)
    second = engine.campaign(count=2, phones=[phone, "+919800000056"])
    run_until_idle(engine.numbers[0].pk)
    assert statuses(first) == {"sent": 1}
    skipped = second.recipients.get(phone=phone)
    assert (skipped.status, skipped.attempts) == (RecipientStatus.CANCELLED, 0)
    assert skipped.error_title == "Skipped: frequency limit"
    assert "already got 1 marketing message(s)" in skipped.error_details
    assert second.recipients.get(phone="+919800000056").status == RecipientStatus.SENT
    assert [m["to"] for m in sim.messages()].count(phone.lstrip("+")) == 1


def test_the_frequency_guard_follows_the_workspace_setting(engine, sim):
    Workspace.objects.filter(pk=engine.workspace.pk).update(marketing_per_contact=2)
    # One user messaged several times in a row: Meta's pair rate is not what this is about.
    sim.set_faults(pair_rate_seconds=0)
    phone = "+919800000057"
    for _ in range(3):
        engine.campaign(count=1, phones=[phone])
        run_until_idle(engine.numbers[0].pk)
    sent = [m["to"] for m in sim.messages()].count(phone.lstrip("+"))
    assert sent == 2
    Workspace.objects.filter(pk=engine.workspace.pk).update(marketing_per_contact=0)
    engine.campaign(count=1, phones=[phone])
    run_until_idle(engine.numbers[0].pk)
    assert [m["to"] for m in sim.messages()].count(phone.lstrip("+")) == 3
