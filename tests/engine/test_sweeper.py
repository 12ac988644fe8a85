"""Recovery without hand-run scripts: dead claims, orphaned lanes, finished campaigns, counters."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus
from campaigns.selectors import campaign_counts
from campaigns.services import recipients_resend_unknown
from config.redis import get_redis
from messaging.kick import KICK_PREFIX
from messaging.lanes import CLAIM_SENTINEL, claim_batch, lane_run, lease_key, marks_key
from messaging.sweeper import sweep

pytestmark = pytest.mark.django_db


def dead_claim(engine, *, count: int, attempted: int, sentinel: bool = True):
    """A claim left by a worker that died after attempting ``attempted`` of ``count`` rows."""
    campaign = engine.campaign(count=count)
    number = engine.numbers[0].pk
    token = "dead0000dead0000dead0000"
    redis = get_redis()
    if sentinel:
        redis.rpush(marks_key(token), CLAIM_SENTINEL)
    claimed = claim_batch(number_id=number, token=token, size=count)
    for row in claimed[:attempted]:
        redis.rpush(marks_key(token), row.id)
    Recipient.objects.update(claimed_at=timezone.now() - timedelta(minutes=5))
    return campaign, claimed, token


def test_a_dead_claim_splits_into_unknown_attempted_and_pending_never_tried(engine):
    campaign, claimed, token = dead_claim(engine, count=10, attempted=3)
    result = sweep()
    assert result.unknown == 3
    assert result.released == 7
    attempted = {c.id for c in claimed[:3]}
    for recipient in campaign.recipients.all():
        if recipient.pk in attempted:
            assert recipient.status == RecipientStatus.UNKNOWN
            assert recipient.attempts == 1
        else:
            assert recipient.status == RecipientStatus.PENDING
            assert recipient.attempts == 0
            assert recipient.claim_token == ""
    assert not get_redis().exists(marks_key(token))


def test_lost_marks_make_every_row_of_the_claim_unknown(engine):
    campaign, _, _ = dead_claim(engine, count=4, attempted=0, sentinel=False)
    assert sweep().unknown == 4
    assert set(campaign.recipients.values_list("status", flat=True)) == {RecipientStatus.UNKNOWN}


def test_a_claim_whose_lease_is_alive_is_left_alone(engine):
    _, _, token = dead_claim(engine, count=3, attempted=1)
    get_redis().set(lease_key(engine.numbers[0].pk), token, px=10_000)
    result = sweep()
    assert (result.unknown, result.released) == (0, 0)
    assert Recipient.objects.filter(status=RecipientStatus.SENDING).count() == 3


def test_a_recent_claim_is_left_alone(engine):
    engine.campaign(count=3)
    claim_batch(number_id=engine.numbers[0].pk, token="fresh" * 4, size=3)
    assert sweep().unknown == 0
    assert Recipient.objects.filter(status=RecipientStatus.SENDING).count() == 3


def test_a_lane_with_due_work_and_no_lease_gets_one_link_queued(engine):
    engine.campaign(count=3, numbers=engine.numbers)
    first = sweep()
    assert sorted(first.kicked) == sorted(n.pk for n in engine.numbers)
    assert get_redis().exists(f"{KICK_PREFIX}{engine.numbers[0].pk}")
    # Already queued: the next sweep does not pile up another link.
    assert sweep().kicked == []


def test_a_running_campaign_with_nothing_left_completes_with_exact_counters(engine, sim):
    campaign = engine.campaign(count=4)
    while lane_run(engine.numbers[0].pk).state == "more":
        pass
    result = sweep()
    assert result.completed == [campaign.pk]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    assert campaign.completed_at is not None
    assert campaign.events.last().reason == "nothing left to send"
    counts = campaign_counts([campaign.pk])[campaign.pk]
    assert (counts["total"], counts["sent"]) == (4, 4)


def test_unknowns_do_not_hold_a_campaign_open_and_can_be_resent_on_request(engine, sim):
    campaign, _, _ = dead_claim(engine, count=2, attempted=2)
    sweep()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED

    other, _, _ = dead_claim(engine, count=2, attempted=2)
    Campaign.objects.filter(pk=other.pk).update(status=CampaignStatus.PAUSED)
    sweep()
    other.refresh_from_db()
    assert recipients_resend_unknown(campaign=other, user=None) == 2
    assert set(other.recipients.values_list("status", flat=True)) == {RecipientStatus.PENDING}
    assert sim.counts()["total"] == 0


def test_the_admin_action_resends_unknowns_of_a_paused_campaign(client, owner, engine):
    from django.urls import reverse

    from tests.conftest import PASSWORD

    campaign, _, _ = dead_claim(engine, count=3, attempted=3)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PAUSED)
    sweep()
    assert campaign.recipients.filter(status=RecipientStatus.UNKNOWN).count() == 3
    client.login(username="olivia", password=PASSWORD)
    response = client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "resend_unknown_selected", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "3 unknown messages put back in line" in response.content.decode()
    assert set(campaign.recipients.values_list("status", flat=True)) == {RecipientStatus.PENDING}
