"""End to end: the simulator turns 131048 on mid-run and says so only by `failed` status
webhooks (as Meta does); the campaign stops within one batch of the first webhook."""

from __future__ import annotations

import pytest

from campaigns.models import CampaignStatus, RecipientStatus
from messaging.lanes import lane_run
from numbers.models import NumberStatus
from tests.webhooks.conftest import APP_SECRET, URL, process_received


@pytest.mark.django_db(transaction=True)
def test_131048_by_webhook_mid_run_stops_the_campaign_within_one_batch(
    engine, sim, live_server, settings
):
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.LANE_BATCH_SIZE = 5
    number = engine.numbers[0]
    sim.set_faults(mps=0, callback_url=f"{live_server.url}{URL}", app_secret=APP_SECRET)
    campaign = engine.campaign(count=40)

    assert lane_run(number.pk).state == "more"
    # Meta starts refusing the number's sends: 200s now, failed webhooks later.
    sim.set_faults(
        mps=0,
        callback_url=f"{live_server.url}{URL}",
        app_secret=APP_SECRET,
        errors=[{"code": 131048, "phone_number_id": number.phone_number_id}],
    )
    assert lane_run(number.pk).state == "more"
    sent_before_webhooks = sim.counts()["total"]
    stats = sim.webhooks(wait=20)
    assert stats["posts_failed"] == 0
    process_received()

    number.refresh_from_db()
    assert (number.status, number.block_code) == (NumberStatus.RATE_LIMITED, 131048)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert "131048" in campaign.pause_reason
    # Nothing more goes out, and the refused batch waits instead of failing.
    assert lane_run(number.pk).state == "stopped"
    assert sim.counts()["total"] == sent_before_webhooks == 10
    counts = {}
    for status in campaign.recipients.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    assert counts.get(RecipientStatus.FAILED, 0) == 0
    assert counts[RecipientStatus.PENDING] == 35
