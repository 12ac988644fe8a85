"""A reply never waits behind a campaign's backlog on the same number."""

from __future__ import annotations

import pytest

from campaigns.models import CampaignStatus
from campaigns.services import campaign_cancel, campaign_start
from config.redis import get_redis
from conversations.models import Message
from messaging import ratelimit
from tests.conversations.conftest import conversation_of, wait_for

PHONE = "+919811111111"


@pytest.mark.django_db(transaction=True)
def test_a_reply_goes_out_ahead_of_the_campaign_saturating_its_number(
    sim, start_worker, engine, inbound, api, agent
):
    get_redis().set(ratelimit.RATE_KEY, "1000")
    number = engine.numbers[0]
    number.max_mps = 20
    number.save(update_fields=["max_mps"])
    start_worker()
    inbound(PHONE.lstrip("+"), text="Where is my order?")
    conversation = conversation_of(PHONE)
    campaign = engine.campaign(count=400, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    # The campaign is sending at the number's cap: 400 at 20/s is 20 s of backlog.
    wait_for(lambda: len(sim.messages(phone_number_id=number.phone_number_id)) >= 20, what="sends")

    response = api(agent).post(
        f"/api/conversations/{conversation.pk}/reply/", {"text": "On its way"}, format="json"
    )
    assert response.status_code == 201
    wait_for(
        lambda: Message.objects.get(pk=response.json()["id"]).status != "queued", what="the reply"
    )
    [reply] = wait_for(lambda: sim.messages(to=PHONE.lstrip("+")), what="reply at Meta")

    def campaign_sends_after_reply():
        sent = sim.messages(phone_number_id=number.phone_number_id)
        return [m for m in sent if m["type"] == "template" and m["seq"] > reply["seq"]]

    # The campaign goes on after the reply: the reply did not wait for the backlog to end.
    wait_for(campaign_sends_after_reply, what="campaign sends after the reply")
    campaign_cancel(campaign=campaign, user=None)
    sent = sim.messages(phone_number_id=number.phone_number_id)
    campaign_sends = [m for m in sent if m["type"] == "template"]
    before_reply = [m for m in campaign_sends if m["seq"] < reply["seq"]]
    # Most of the 400-message backlog was still unsent when the reply went out: it jumped the queue.
    assert len(before_reply) < 120
    assert Message.objects.get(pk=response.json()["id"]).status in ("accepted", "sent")
