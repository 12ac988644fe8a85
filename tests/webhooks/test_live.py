"""End to end: the Graph simulator posts real signed webhooks to a live server."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import RecipientStatus
from graph_simulator.seed import DEMO_TOKEN
from messaging.callbacks import callback_data_for
from messaging.graph import GraphClient
from tests.webhooks.conftest import APP_SECRET, PNID, URL, funnel, process_received
from webhooks.models import InboundMessage, PendingStatus, StatusUpdate, WebhookEvent
from webhooks.statuses import pending_statuses_apply

BODY = [{"type": "text", "text": "Asha"}, {"type": "text", "text": "FALL25"}]


@pytest.mark.django_db(transaction=True)
def test_simulator_webhooks_through_a_live_server_end_with_every_message_read_and_replied(
    sim, live_server, world
):
    sim.set_faults(
        callback_url=f"{live_server.url}{URL}",
        app_secret=APP_SECRET,
        webhook_batch=4,
        webhook_duplicates=1.0,
        webhook_shuffle=True,
        reply_rate=1.0,
    )
    recipients = [
        world.recipient(f"+91980000{i:04d}", status=RecipientStatus.SENDING, wamid=None)
        for i in range(12)
    ]
    client = GraphClient(DEMO_TOKEN, base_url=sim.base_url, timeout=(2.0, 5.0))
    answers = {}
    for recipient in recipients:
        answers[recipient.pk] = client.send_template(
            phone_number_id=PNID,
            to=recipient.phone.lstrip("+"),
            name="seasonal_promo",
            language="en_US",
            components=[{"type": "body", "parameters": BODY}],
            callback_data=callback_data_for(recipient.pk),
        ).wamid
    stats = sim.webhooks(wait=20)
    assert (stats["idle"], stats["posts_failed"], stats["attempts_failed"]) == (True, 0, 0)
    # 3 statuses and a reply per message, each delivered twice.
    assert stats["events_delivered"] == 12 * 4 * 2
    assert WebhookEvent.objects.filter(signature_valid=True).count() == stats["posts_ok"]

    # The webhooks raced the send's answer: everything waits for the engine.
    process_received()
    assert PendingStatus.objects.count() == 12 * 3
    assert {r.status for r in world.campaign.recipients.all()} == {"sending"}

    # The engine records the answers (as lanes.record_outcomes does), then the retry runs.
    now = timezone.now()
    for recipient in recipients:
        recipient.status, recipient.wamid, recipient.sent_at = "sent", answers[recipient.pk], now
        recipient.save(update_fields=["status", "wamid", "sent_at"])
    assert pending_statuses_apply() == 12 * 3

    rows = list(world.campaign.recipients.order_by("pk"))
    assert {r.status for r in rows} == {"read"}
    assert all(r.sent_at <= r.delivered_at <= r.read_at for r in rows)
    assert all(r.replied_at is not None for r in rows)
    assert StatusUpdate.objects.filter(outcome="applied").count() == 12 * 3
    assert InboundMessage.objects.filter(recipient__isnull=False).count() == 12
    assert funnel(world.campaign) == {
        "total": 12,
        "sent": 12,
        "delivered": 12,
        "read": 12,
        "failed": 0,
        "replied": 12,
    }
