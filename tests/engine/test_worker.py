"""The engine with real Celery workers: order per number, parallel numbers, crash safety."""

import itertools
import time

import pytest
from django.db.models import Count

from campaigns.models import CampaignStatus, RecipientStatus
from campaigns.selectors import campaign_counts
from campaigns.services import campaign_cancel, campaign_pause, campaign_resume, campaign_start
from config.redis import get_redis
from messaging import ratelimit
from messaging.sweeper import sweep
from messaging.tasks import send_lane
from webhooks.models import PendingStatus, WebhookEvent, WebhookEventStatus
from webhooks.statuses import pending_statuses_apply

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
    assert campaign_counts([campaign.pk])[campaign.pk]["sent"] == 30


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
    engine, sim, start_worker, settings, live_server
):
    settings.SWEEP_GRACE_SECONDS = 1
    settings.WHATSAPP_APP_SECRET = "kill-test-secret"
    first = start_worker("doomed", concurrency=1)
    sim.set_faults(
        latency_ms=[8, 8],
        callback_url=f"{live_server.url}/webhooks/whatsapp/",
        app_secret="kill-test-secret",
        read_rate=0.0,
    )
    campaign = engine.campaign(count=400, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    wait_until(lambda: sim.counts()["total"] >= 120, timeout=30, step=0.01, what="sends")
    first.kill()  # SIGKILL, mid-batch
    assert sim.counts()["total"] < 400
    assert campaign.recipients.filter(status=RecipientStatus.SENDING).exists()

    # Beat's sweeper, once the dead link's lease has lapsed: its attempted rows
    # become unknown (maybe sent), the others go back in line.
    swept = wait_until(lambda: sweep().unknown, timeout=30, step=0.5, what="the dead claim")
    unknown = {
        p.lstrip("+")
        for p in campaign.recipients.filter(status=RecipientStatus.UNKNOWN).values_list(
            "phone", flat=True
        )
    }
    assert 0 < len(unknown) == swept <= settings.LANE_BATCH_SIZE
    assert not campaign.recipients.filter(status=RecipientStatus.SENDING).exists()

    start_worker("rescuer", concurrency=2)
    run_to_completion(campaign, timeout=90)

    # The simulator's status webhooks carry our id: they resolve the unknowns it accepted.
    assert sim.webhooks(wait=60)["idle"] is True

    def receipts_applied() -> bool:
        # Beat's part: statuses that raced the send's answer wait until it is recorded.
        pending_statuses_apply()
        return not (
            WebhookEvent.objects.filter(status=WebhookEventStatus.RECEIVED).exists()
            or PendingStatus.objects.exists()
        )

    wait_until(receipts_applied, timeout=90, step=0.5, what="webhooks processed")

    assert sim.counts(duplicates_only=True)["by_recipient"] == {}
    accepted = {m["to"] for m in sim.messages()}
    statuses = {p.lstrip("+"): s for p, s in campaign.recipients.values_list("phone", "status")}
    # Only the call in flight at the kill may never have reached the simulator:
    # it stays unknown (an operator may resend it); every other contact was
    # accepted exactly once, the never-attempted ones by the rescuing worker.
    still_unknown = {p for p, s in statuses.items() if s == RecipientStatus.UNKNOWN}
    assert still_unknown == unknown - accepted
    assert len(still_unknown) <= settings.LANE_WINDOW
    assert accepted == set(statuses) - still_unknown
    assert {statuses[p] for p in accepted} == {RecipientStatus.DELIVERED}


def test_redis_restarted_mid_run_loses_no_contact_and_sends_nothing_twice(
    engine, sim, start_worker, settings, private_redis
):
    settings.SWEEP_GRACE_SECONDS = 1
    # Supervised as production's are (docs/production.md): config.procs restarts it.
    start_worker("survivor", concurrency=2, restart=True, TEST_REDIS_URL=private_redis.url)
    sim.set_faults(latency_ms=[8, 8])
    get_redis().set(ratelimit.RATE_KEY, "1000")
    campaign = engine.campaign(count=300, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    wait_until(lambda: sim.counts()["total"] >= 100, timeout=30, step=0.01, what="sends")

    private_redis.restart()  # queues, leases, marks and the rate are gone
    get_redis().connection_pool.disconnect()
    assert sim.counts()["total"] < 300  # mid-run

    # The worker exits "Unrecoverable error" (kombu fails restoring the task it
    # had in hand) and its supervisor starts it again, while the test plays
    # beat's sweeper.
    def done() -> bool:
        sweep()
        return finished(campaign)

    wait_until(done, timeout=120, step=0.3, what=f"campaign {campaign.pk} to complete")

    # Rows before the simulator's counts: a row recorded sent was accepted already.
    statuses = {p.lstrip("+"): s for p, s in campaign.recipients.values_list("phone", "status")}
    sends = sim.counts()["by_recipient"]  # accepted sends per recipient
    assert set(sends) <= set(statuses)
    assert {p: n for p, n in sends.items() if n > 1} == {}
    sent = {p for p, s in statuses.items() if s == RecipientStatus.SENT}
    unknown = {p for p, s in statuses.items() if s == RecipientStatus.UNKNOWN}
    assert sent | unknown == set(statuses)  # all terminal: no webhooks here to move them on
    # Recorded sent: accepted exactly once; unknown: accepted once or never.
    assert {p: sends.get(p, 0) for p in sent} == dict.fromkeys(sent, 1)
    # Redis lost the marks of the claim in flight, so its rows may all be
    # unknown (at most once beats a duplicate); no other claim lost any.
    assert len(unknown) <= settings.LANE_BATCH_SIZE


def no_claims_left(campaign) -> bool:
    return not campaign.recipients.filter(status=RecipientStatus.SENDING).exists()


def test_pause_and_resume_mid_run_end_with_everyone_sent_once(engine, sim, start_worker):
    start_worker()
    sim.set_faults(latency_ms=[5, 5])
    campaign = engine.campaign(count=300, numbers=engine.numbers, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    wait_until(lambda: sim.counts()["total"] >= 50, timeout=30, step=0.01, what="sends")
    campaign_pause(campaign=campaign, user=None, reason="checking the copy")
    wait_until(lambda: no_claims_left(campaign), timeout=30, what="lanes to stop")
    time.sleep(0.5)
    paused_at = sim.counts()["total"]
    counts = dict(campaign.recipients.values_list("status").annotate(n=Count("pk")))
    assert counts == {"sent": paused_at, "pending": 300 - paused_at}
    assert paused_at < 300

    campaign_resume(campaign=campaign, user=None)
    run_to_completion(campaign)
    assert sim.counts()["total"] == 300
    assert sim.counts(duplicates_only=True)["by_recipient"] == {}
    assert list(campaign.events.values_list("to_status", flat=True)) == [
        "running",
        "paused",
        "running",
        "completed",
    ]


def test_cancel_mid_run_leaves_every_unsent_contact_cancelled(engine, sim, start_worker):
    start_worker()
    sim.set_faults(latency_ms=[5, 5])
    campaign = engine.campaign(count=300, numbers=engine.numbers, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    wait_until(lambda: sim.counts()["total"] >= 50, timeout=30, step=0.01, what="sends")
    campaign_cancel(campaign=campaign, user=None, reason="wrong list")
    wait_until(lambda: no_claims_left(campaign), timeout=30, what="lanes to stop")
    time.sleep(0.5)
    sent = sim.counts()["total"]
    counts = dict(campaign.recipients.values_list("status").annotate(n=Count("pk")))
    assert counts == {"sent": sent, "cancelled": 300 - sent}
    assert sim.counts(duplicates_only=True)["by_recipient"] == {}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED


def test_two_workers_racing_for_one_lane_never_double_send(engine, sim, start_worker):
    start_worker("racer-a", concurrency=3)
    start_worker("racer-b", concurrency=3)
    sim.set_faults(latency_ms=[2, 2])
    campaign = engine.campaign(count=400, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    # Extra links for the same lane, past the "one queued link" guard: six
    # processes in two workers compete for it the whole run.
    for _ in range(12):
        send_lane.delay(engine.numbers[0].pk)
    run_to_completion(campaign)

    sent = sim.messages()
    assert len(sent) == 400
    assert sim.counts(duplicates_only=True)["by_recipient"] == {}
    # Still one at a time and in claim order: the lease serialises the links.
    phones = list(campaign.recipients.order_by("pk").values_list("phone", flat=True))
    assert [m["to"] for m in sent] == [p.lstrip("+") for p in phones]


def test_receipts_that_race_the_send_answer_are_applied_without_waiting_for_beat(
    engine, sim, start_worker, settings, live_server
):
    settings.WHATSAPP_APP_SECRET = "race-secret"
    # The link records its results only when it ends, a second or so after the
    # simulator has posted (and we have processed) each message's statuses.
    start_worker(LANE_FLUSH_SECONDS="30", LANE_FLUSH_EVERY="1000")
    sim.set_faults(
        latency_ms=[20, 20],
        callback_url=f"{live_server.url}/webhooks/whatsapp/",
        app_secret="race-secret",
        read_rate=0.0,
        webhook_delay_ms=0,
    )
    campaign = engine.campaign(count=60, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    parked = wait_until(
        lambda: PendingStatus.objects.count(), timeout=20, step=0.05, what="a parked status"
    )
    assert parked > 0  # the race did happen
    run_to_completion(campaign)
    assert sim.webhooks(wait=30)["idle"] is True

    def all_delivered() -> bool:
        return set(campaign.recipients.values_list("status", flat=True)) == {"delivered"}

    # No periodic retry runs here: only the lane's own hand-off can apply them.
    wait_until(all_delivered, timeout=20, step=0.2, what="every receipt applied")
    assert not PendingStatus.objects.exists()
