"""Delivery by a real Celery worker: queued after commit, retried after a 500 on its backoff,
a lost task recovered by the sweep, and a rolled-back change never delivered."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from campaigns.models import CampaignStatus
from campaigns.services import campaign_pause_if_running
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.tasks import sweep_notifications
from tests.engine.conftest import start_worker  # noqa: F401 - fixture
from tests.factories import make_campaign, make_number, make_template
from tests.notifications.conftest import webhook_channel

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(check, timeout: float = 30.0):
    """Poll until ``check()`` is truthy (a deadline for a stuck run, not a measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.fixture
def running(workspace):
    number = make_number(workspace=workspace)
    template = make_template(workspace=workspace)

    def make(name: str):
        return make_campaign(
            workspace=workspace,
            name=name,
            numbers=[number],
            templates=[template],
            status=CampaignStatus.RUNNING,
        )

    return make


def test_the_worker_delivers_after_commit_and_retries_a_500_on_the_backoff(
    workspace,
    receiver,
    running,
    start_worker,  # noqa: F811
):
    start_worker(NOTIFY_RETRY_BASE_SECONDS="0.5", NOTIFY_BASE_URL="https://wa.example")
    receiver.script = [(500, 0)]
    channel, secret = webhook_channel(workspace, receiver.url)
    receiver.secrets = [secret]
    campaign = running("Autumn sale")

    assert campaign_pause_if_running(campaign_id=campaign.pk, reason="131048: spam rate")

    delivery = wait_for(
        lambda: Delivery.objects.filter(channel=channel, status="delivered").first()
    )
    assert delivery.attempts == 2
    first, second = DeliveryAttempt.objects.filter(delivery=delivery).order_by("pk")
    assert (first.status_code, second.status_code) == (500, 200)
    # The retry waited its backoff: 0.5 s +-20% after the first attempt.
    assert second.at - first.at >= timedelta(seconds=0.4)
    assert [request.verified_by for request in receiver.requests] == [[0], [0]]
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 1
    body = receiver.requests[1].json()
    assert body["type"] == "campaign.paused"
    assert body["data"]["objects"][0]["admin_url"] == (
        f"https://wa.example/admin/campaigns/campaign/{campaign.pk}/change/"
    )


def test_a_lost_task_is_recovered_by_the_sweep(workspace, receiver, start_worker):  # noqa: F811
    start_worker()
    channel, secret = webhook_channel(workspace, receiver.url)
    receiver.secrets = [secret]
    notification = Notification.objects.create(
        workspace=workspace, event="campaign.completed", title="Lost"
    )
    # As if its task had been queued and lost: pending, due for a while, in no queue.
    delivery = Delivery.objects.create(
        notification=notification,
        channel=channel,
        next_attempt_at=timezone.now() - timedelta(seconds=30),
    )
    assert sweep_notifications() == {"queued": 1, "summaries": 0}
    wait_for(lambda: Delivery.objects.filter(pk=delivery.pk, status="delivered").exists())
    [request] = receiver.requests
    assert request.verified_by == [0]


def test_a_rolled_back_change_is_never_delivered(
    workspace,
    receiver,
    running,
    start_worker,  # noqa: F811
):
    start_worker()
    webhook_channel(workspace, receiver.url)
    doomed, kept = running("Doomed"), running("Kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        campaign_pause_if_running(campaign_id=doomed.pk, reason="rolled back")
        raise RuntimeError("the change failed")
    campaign_pause_if_running(campaign_id=kept.pk, reason="committed")
    wait_for(lambda: Delivery.objects.filter(status="delivered").exists())
    sweep_notifications()
    # Only the committed change exists and reached the endpoint.
    assert list(Notification.objects.values_list("data__reason", flat=True)) == ["committed"]
    assert [request.json()["data"]["reason"] for request in receiver.requests] == ["committed"]
    doomed.refresh_from_db()
    assert doomed.status == CampaignStatus.RUNNING
