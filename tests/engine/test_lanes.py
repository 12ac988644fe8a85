"""One lane link, in process, against the simulator: order, payloads, outcomes per error class."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import CampaignStatus, Recipient, RecipientStatus, Suppression
from campaigns.selectors import campaign_counts
from campaigns.services import campaign_cancel, campaign_pause
from config.redis import get_redis
from messaging import ratelimit
from messaging.callbacks import callback_data_for
from messaging.lanes import claim_batch, lane_run
from messaging.models import RateAdjustment
from numbers.models import NumberStatus

pytestmark = pytest.mark.django_db


def statuses(campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in campaign.recipients.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def run_until_idle(number_id: int, limit: int = 50) -> list[str]:
    states = []
    for _ in range(limit):
        states.append(lane_run(number_id).state)
        if states[-1] != "more":
            return states
    raise AssertionError(f"lane never went idle: {states}")


def test_a_link_sends_its_batch_in_claim_order_with_the_exact_payload(engine, sim):
    campaign = engine.campaign(count=5)
    number = engine.numbers[0]

    assert lane_run(number.pk).state == "more"

    sent = sim.messages()
    recipients = list(campaign.recipients.order_by("pk"))
    assert [m["to"] for m in sent] == [r.phone.lstrip("+") for r in recipients]
    assert [m["callback_data"] for m in sent] == [callback_data_for(r.pk) for r in recipients]
    first = sim.messages(limit=1)[0]
    assert first["phone_number_id"] == number.phone_number_id
    assert first["template"] == {"name": "seasonal_promo", "language": "en_US"}
    assert first["components"] == [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Name0"}, {"type": "text", "text": "CODE0"}],
        }
    ]
    for recipient, message in zip(recipients, sent, strict=True):
        assert recipient.status == RecipientStatus.SENT
        assert recipient.wamid == message["wamid"]
        assert recipient.attempts == 1
        assert recipient.sent_at is not None
        assert recipient.claim_token == ""
    assert campaign_counts([campaign.pk])[campaign.pk]["sent"] == 5


def test_an_empty_lane_is_idle_and_completes_nothing_by_itself(engine, sim):
    campaign = engine.campaign(count=3)
    assert run_until_idle(engine.numbers[0].pk) == ["more", "idle"]
    assert sim.counts()["total"] == 3
    assert statuses(campaign) == {"sent": 3}


def test_only_running_campaigns_are_claimed(engine, sim):
    paused = engine.campaign(count=2, status=CampaignStatus.PAUSED)
    running = engine.campaign(count=2)
    run_until_idle(engine.numbers[0].pk)
    assert statuses(paused) == {"pending": 2}
    assert statuses(running) == {"sent": 2}


def test_two_claims_racing_never_share_a_row(engine):
    engine.campaign(count=30)
    number = engine.numbers[0].pk
    first = claim_batch(number_id=number, token="a" * 24, size=20)
    second = claim_batch(number_id=number, token="b" * 24, size=20)
    assert len(first) == 20
    assert len(second) == 10
    assert not {c.id for c in first} & {c.id for c in second}
    assert Recipient.objects.filter(status=RecipientStatus.SENDING).count() == 30


def test_a_held_lease_makes_a_second_link_exit_without_sending(engine, sim):
    engine.campaign(count=3)
    number = engine.numbers[0].pk
    get_redis().set(f"lane:{number}", "someone-else", px=10_000)
    assert lane_run(number).state == "busy"
    assert sim.counts()["total"] == 0
    assert Recipient.objects.filter(status=RecipientStatus.PENDING).count() == 3


def test_transient_errors_are_retried_after_5_20_45_seconds_then_failed(engine, sim):
    campaign = engine.campaign(count=1)
    sim.set_faults(errors=[{"code": 131000, "http_status": 500, "count": 10}])
    recipient = campaign.recipients.get()
    waits = []
    for attempt in range(1, 5):
        before = timezone.now()
        lane_run(engine.numbers[0].pk)
        recipient.refresh_from_db()
        assert recipient.attempts == attempt
        assert recipient.error_code == 131000
        if attempt <= 3:
            assert recipient.status == RecipientStatus.RETRY_WAIT
            waits.append((recipient.next_attempt_at - before).total_seconds())
            # Time passes: the retry comes due.
            Recipient.objects.filter(pk=recipient.pk).update(
                next_attempt_at=timezone.now() - timedelta(seconds=1)
            )
    assert [round(w) for w in waits] == [5, 20, 45]
    assert all(0 <= w - round(w) < 0.9 for w in waits)
    assert recipient.status == RecipientStatus.FAILED
    assert recipient.failed_at is not None
    assert sim.counts()["total"] == 0  # never accepted, four attempts made
    assert campaign_counts([campaign.pk])[campaign.pk]["failed"] == 1


def test_a_retry_is_not_sent_before_it_is_due(engine, sim):
    campaign = engine.campaign(count=1)
    sim.set_faults(errors=[{"code": 131000, "http_status": 503, "count": 1}])
    assert lane_run(engine.numbers[0].pk).state == "more"
    assert lane_run(engine.numbers[0].pk).state == "idle"
    assert statuses(campaign) == {"retry_wait": 1}
    Recipient.objects.update(next_attempt_at=timezone.now())
    assert lane_run(engine.numbers[0].pk).state == "more", campaign.recipients.values()
    assert statuses(campaign) == {"sent": 1}
    assert campaign.recipients.get().attempts == 2


def test_pair_rate_delays_that_recipient_only(engine, sim):
    campaign = engine.campaign(count=3)
    slow = campaign.recipients.order_by("pk")[1]
    sim.set_faults(errors=[{"code": 131056, "to": slow.phone.lstrip("+"), "count": 1}])
    before = timezone.now()
    lane_run(engine.numbers[0].pk)
    slow.refresh_from_db()
    assert slow.status == RecipientStatus.RETRY_WAIT
    assert (slow.next_attempt_at - before).total_seconds() >= 6
    assert statuses(campaign) == {"sent": 2, "retry_wait": 1}
    assert get_redis().get(ratelimit.STREAK_KEY) == "0"


def test_three_consecutive_throttles_cut_the_shared_rate_by_20_percent(engine, sim, settings):
    engine.campaign(count=4)
    get_redis().set(ratelimit.RATE_KEY, "100")
    sim.set_faults(errors=[{"code": 130429, "http_status": 429, "count": 3}])
    lane_run(engine.numbers[0].pk)
    assert ratelimit.current_rate() == pytest.approx(80.0)
    adjustment = RateAdjustment.objects.get()
    assert (adjustment.old, adjustment.new) == (100.0, 80.0)
    assert adjustment.reason == "3 consecutive throttling errors"
    assert Recipient.objects.filter(status=RecipientStatus.RETRY_WAIT).count() == 3
    assert Recipient.objects.filter(status=RecipientStatus.SENT).count() == 1


def test_permanent_recipient_errors_fail_at_once_with_metas_code(engine, sim):
    campaign = engine.campaign(count=2)
    bad = campaign.recipients.order_by("pk")[0]
    sim.set_faults(undeliverable=[bad.phone.lstrip("+")], error_modes={"131026": "response"})
    run_until_idle(engine.numbers[0].pk)
    bad.refresh_from_db()
    assert (bad.status, bad.error_code, bad.attempts) == (RecipientStatus.FAILED, 131026, 1)
    assert bad.error_title
    assert statuses(campaign) == {"failed": 1, "sent": 1}


def test_user_stopped_marketing_fails_and_adds_a_suppression(engine, sim):
    campaign = engine.campaign(count=1)
    target = campaign.recipients.get()
    sim.set_faults(errors=[{"code": 131050, "count": 1, "mode": "response"}])
    lane_run(engine.numbers[0].pk)
    target.refresh_from_db()
    assert (target.status, target.error_code) == (RecipientStatus.FAILED, 131050)
    suppression = Suppression.objects.get()
    assert (suppression.workspace, suppression.phone) == (engine.workspace, target.phone)


def test_stopped_marketing_in_a_send_answer_cancels_the_phone_in_other_campaigns(engine, sim):
    phone = "+919800000042"
    first = engine.campaign(count=1, phones=[phone])
    paused = engine.campaign(count=2, phones=[phone, "+919800000043"], status=CampaignStatus.PAUSED)
    scheduled = engine.campaign(count=1, phones=[phone], status=CampaignStatus.SCHEDULED)
    sim.set_faults(errors=[{"code": 131050, "count": 1, "mode": "response"}])
    lane_run(engine.numbers[0].pk)
    assert first.recipients.get().status == RecipientStatus.FAILED
    suppression = Suppression.objects.get()
    assert (suppression.phone, suppression.source) == (phone, "131050")
    assert suppression.reason.startswith("Meta error 131050: ")
    for campaign in (paused, scheduled):
        row = campaign.recipients.get(phone=phone)
        assert (row.status, row.error_title) == (RecipientStatus.CANCELLED, "Opted out")
        assert row.error_details == suppression.reason
    assert paused.recipients.get(phone="+919800000043").status == RecipientStatus.PENDING
    assert sim.counts()["total"] == 0


@pytest.mark.parametrize("code", [132001, 132015, 132016])
def test_a_template_refused_by_meta_fails_the_message_and_pauses_the_campaign(engine, sim, code):
    campaign = engine.campaign(count=5)
    sim.set_faults(errors=[{"code": code, "count": 1}])
    lane_run(engine.numbers[0].pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert str(code) in campaign.pause_reason
    assert statuses(campaign) == {"failed": 1, "pending": 4}
    assert sim.counts()["total"] == 0


def test_an_expired_token_stops_the_number_and_pauses_its_campaigns(engine, sim):
    campaign = engine.campaign(count=4)
    sim.set_faults(errors=[{"code": 190, "http_status": 401, "count": 1}])
    assert lane_run(engine.numbers[0].pk).state == "stopped"
    number = engine.numbers[0]
    number.refresh_from_db()
    assert number.status == NumberStatus.TOKEN_EXPIRED
    assert number.last_error_code == 190
    assert number.last_error.startswith("Meta answered: ")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert statuses(campaign) == {"pending": 4}
    assert lane_run(number.pk).state == "stopped"
    assert sim.counts()["total"] == 0


def test_spam_rate_limit_pauses_the_numbers_campaigns_without_failing_anyone(engine, sim):
    campaign = engine.campaign(count=3)
    sim.set_faults(errors=[{"code": 131048, "count": 1, "mode": "response"}])
    assert lane_run(engine.numbers[0].pk).state == "stopped"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert "131048" in campaign.pause_reason
    assert statuses(campaign) == {"pending": 3}


def test_a_lost_answer_is_unknown_and_never_resent(engine, sim, settings):
    settings.GRAPH_READ_TIMEOUT = 0.5
    campaign = engine.campaign(count=2)
    sim.set_faults(timeout_rate=1.0, timeout_hold_s=2)
    lane_run(engine.numbers[0].pk)
    sim.set_faults(timeout_rate=0.0)
    assert statuses(campaign) == {"unknown": 2}
    assert lane_run(engine.numbers[0].pk).state == "idle"
    assert sim.counts()["total"] == 2  # accepted once each, never again


def run_in_background(number_id: int) -> threading.Thread:
    def target():
        try:
            lane_run(number_id)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def wait_for_sends(sim, count: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while (total := sim.counts()["total"]) < count:
        assert time.monotonic() < deadline, f"only {total} sends"
        time.sleep(0.01)
    return total


@pytest.mark.django_db(transaction=True)
def test_pausing_stops_the_lane_within_one_flush(engine, sim, settings):
    settings.LANE_FLUSH_EVERY = 5
    campaign = engine.campaign(count=60)
    sim.set_faults(latency_ms=[10, 10])
    lane = run_in_background(engine.numbers[0].pk)
    wait_for_sends(sim, 3)
    campaign_pause(campaign=campaign, user=None, reason="operator")
    at_pause = sim.counts()["total"]
    lane.join(timeout=30)
    counts = statuses(campaign)
    assert counts["sent"] <= at_pause + settings.LANE_FLUSH_EVERY + 1
    assert counts["sent"] + counts["pending"] == 60
    assert sim.counts()["total"] == counts["sent"]


@pytest.mark.django_db(transaction=True)
def test_cancel_mid_batch_leaves_no_row_pending(engine, sim, settings):
    settings.LANE_FLUSH_EVERY = 5
    campaign = engine.campaign(count=60)
    sim.set_faults(latency_ms=[10, 10])
    lane = run_in_background(engine.numbers[0].pk)
    wait_for_sends(sim, 3)
    campaign_cancel(campaign=campaign, user=None, reason="operator")
    lane.join(timeout=30)
    counts = statuses(campaign)
    assert set(counts) == {"sent", "cancelled"}
    assert counts["sent"] + counts["cancelled"] == 60
    assert sim.counts()["total"] == counts["sent"]


def test_a_window_keeps_several_sends_in_flight_and_records_each_once(engine, sim, settings):
    settings.LANE_WINDOW = 4
    campaign = engine.campaign(count=24)
    sim.set_faults(latency_ms=[40, 40])
    started = time.monotonic()
    run_until_idle(engine.numbers[0].pk)
    elapsed = time.monotonic() - started
    # One at a time would take 24 x 40 ms; four in flight about a quarter of that.
    assert elapsed < 24 * 0.040 * 0.6
    assert statuses(campaign) == {"sent": 24}
    assert sim.counts(duplicates_only=True)["by_recipient"] == {}
    wamids = set(campaign.recipients.values_list("wamid", flat=True))
    assert wamids == {m["wamid"] for m in sim.messages()}
