"""The engine with real Celery workers: order per number, parallel numbers, crash safety."""

import itertools
import time

import pytest

from campaigns.models import CampaignStatus, RecipientStatus
from campaigns.services import campaign_start
from config.redis import get_redis
from messaging import ratelimit
from messaging.services import campaign_counters_check, sweep

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(predicate, *, timeout: float, step: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)
    return value


def finished(campaign) -> bool:
    campaign.refresh_from_db()
    return campaign.status == CampaignStatus.COMPLETED


def run_to_completion(campaign, *, timeout: float = 60) -> None:
    """Beat's part, played by the test: the sweeper completes the campaign when it is done."""

    def done() -> bool:
        sweep()
        return finished(campaign)

    wait_until(done, timeout=timeout, step=0.3, what=f"campaign {campaign.pk} to complete")


@pytest.fixture(autouse=True)
def fast_shared_rate():
    get_redis().set(ratelimit.RATE_KEY, "1000")


def test_one_number_sends_in_claim_order_one_at_a_time(engine, sim, start_worker):
    start_worker()
    sim.set_faults(latency_ms=[20, 20])
    campaign = engine.campaign(count=30, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    run_to_completion(campaign)

    sent = sim.messages()
    phones = list(campaign.recipients.order_by("pk").values_list("phone", flat=True))
    assert [m["to"] for m in sent] == [p.lstrip("+") for p in phones]
    gaps = [b["accepted_at"] - a["accepted_at"] for a, b in itertools.pairwise(sent)]
    # With the 20 ms answer delay, a second request in flight would arrive < 20 ms later.
    assert min(gaps) >= 0.019
    assert sim.counts(duplicates_only=True)["by_recipient"] == {}
    assert campaign_counters_check(campaign) == {}
    campaign.refresh_from_db()
    assert (campaign.total, campaign.sent, campaign.failed) == (30, 30, 0)


def test_numbers_send_in_parallel(engine, sim, start_worker):
    start_worker()
    sim.set_faults(latency_ms=[50, 50])
    campaign = engine.campaign(count=60, numbers=engine.numbers, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    run_to_completion(campaign)

    sent = sim.messages()
    assert len(sent) == 60
    span = sent[-1]["accepted_at"] - sent[0]["accepted_at"]
    # 30 sends of 50 ms per number: about 1.5 s side by side, 3 s one after the other.
    assert span < 2.4
    per_number = {n.phone_number_id: 0 for n in engine.numbers}
    for message in sent:
        per_number[message["phone_number_id"]] += 1
    assert list(per_number.values()) == [30, 30]


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_strands_nothing(
    engine, sim, start_worker, settings
):
    settings.SWEEP_GRACE_SECONDS = 1
    first = start_worker("doomed", concurrency=1)
    sim.set_faults(latency_ms=[8, 8])
    campaign = engine.campaign(count=400, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    wait_until(lambda: sim.counts()["total"] >= 120, timeout=30, step=0.01, what="sends")
    first.kill()  # SIGKILL, mid-batch
    at_kill = sim.counts()["total"]
    assert at_kill < 400
    assert campaign.recipients.filter(status=RecipientStatus.SENDING).exists()

    start_worker("rescuer", concurrency=1)
    run_to_completion(campaign, timeout=90)

    assert sim.counts(duplicates_only=True)["by_recipient"] == {}
    accepted = {m["to"] for m in sim.messages()}
    statuses = dict(campaign.recipients.values_list("phone", "status"))
    assert set(statuses.values()) <= {RecipientStatus.SENT, RecipientStatus.UNKNOWN}
    unknown = {p.lstrip("+") for p, s in statuses.items() if s == RecipientStatus.UNKNOWN}
    # Unknowns are the dead link's attempts whose answers were never recorded: at
    # most one batch; all reached the simulator but the one in flight at the kill.
    assert 0 < len(unknown) <= settings.LANE_BATCH_SIZE
    assert len(unknown - accepted) <= settings.LANE_WINDOW
    # Everything never attempted was sent after the restart, exactly once.
    everyone = {p.lstrip("+") for p in statuses}
    assert everyone - unknown <= accepted
    assert len(accepted | unknown) == 400
    assert campaign_counters_check(campaign) == {}
