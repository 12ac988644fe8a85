"""GET /api/sending/ and manage.py campaign."""

import io
import time

import pytest
from django.core.management import CommandError, call_command

from campaigns import rates
from campaigns.models import CampaignStatus
from config.redis import get_redis
from messaging import ratelimit
from messaging.controller import rate_adjustment_record
from messaging.lanes import lease_key

pytestmark = pytest.mark.django_db


def test_sending_state_shows_the_rate_the_callers_lanes_and_rate_changes(api, owner, engine):
    engine.campaign(count=3)
    get_redis().set(ratelimit.RATE_KEY, "72.5")
    get_redis().set(lease_key(engine.numbers[0].pk), "token", px=5000)
    rate_adjustment_record(old=80, new=72.5, reason="3 consecutive throttling errors")

    body = api(owner).get("/api/sending/").json()

    assert (body["rate"], body["rate_min"], body["rate_max"]) == (72.5, 10.0, 1000.0)
    assert body["numbers"] == [
        {"id": engine.numbers[0].pk, "max_mps": 1000, "lane_active": True, "due": 3},
        {"id": engine.numbers[1].pk, "max_mps": 1000, "lane_active": False, "due": 0},
    ]
    assert [(a["old"], a["new"], a["reason"]) for a in body["adjustments"]] == [
        (80.0, 72.5, "3 consecutive throttling errors")
    ]


def test_sending_state_lists_no_other_workspaces_numbers(api, outsider, engine):
    body = api(outsider).get("/api/sending/").json()
    assert body["numbers"] == []


def test_sending_state_needs_authentication(api):
    assert api().get("/api/sending/").status_code == 401


def test_the_campaign_command_pauses_resumes_and_reports(engine):
    campaign = engine.campaign(count=2)
    out = io.StringIO()
    call_command("campaign", "pause", str(campaign.pk), "--reason", "lunch", stdout=out)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, "lunch")
    assert out.getvalue() == f"campaign {campaign.pk} is paused\n"

    call_command("campaign", "resume", str(campaign.pk), stdout=io.StringIO())
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING

    status = io.StringIO()
    call_command("campaign", "status", str(campaign.pk), stdout=status)
    assert status.getvalue() == "0% running | 2 contacts | pending 2 | 0.0 msg/s\n"


def test_the_campaign_command_refuses_a_transition_and_changes_nothing(engine):
    campaign = engine.campaign(count=1, status=CampaignStatus.COMPLETED)
    with pytest.raises(CommandError, match="cannot pause a completed campaign"):
        call_command("campaign", "pause", str(campaign.pk))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    with pytest.raises(CommandError, match="campaign 999999 does not exist"):
        call_command("campaign", "status", "999999")


def test_a_running_campaign_shows_its_current_send_rate(api, owner, engine):
    campaign = engine.campaign(count=3)
    two_seconds_ago = time.time() - 2
    rates.campaign_sends_record({campaign.pk: 45}, now=two_seconds_ago)
    rates.campaign_sends_record({campaign.pk: 5}, now=two_seconds_ago - 30)  # too old
    body = api(owner).get(f"/api/campaigns/{campaign.pk}/").json()
    assert body["current_rate"] == 4.5


def test_a_stopped_campaign_has_no_current_rate(api, owner, engine):
    campaign = engine.campaign(count=3, status=CampaignStatus.PAUSED)
    rates.campaign_sends_record({campaign.pk: 45}, now=time.time() - 2)
    assert api(owner).get(f"/api/campaigns/{campaign.pk}/").json()["current_rate"] is None


def test_lanes_count_what_each_campaign_finished(engine, sim):
    from messaging.lanes import lane_run

    campaign = engine.campaign(count=7)
    lane_run(engine.numbers[0].pk)
    later = time.time() + 1.5  # the send's own second is complete by then
    assert rates.campaign_current_rate(campaign.pk, now=later) == 0.7
