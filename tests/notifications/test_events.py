"""Each event kind, produced by the product's real code path, becomes the right notification
(with deliveries to the subscribed channels only), written in the change's transaction."""

from __future__ import annotations

import io

import pytest
from django.db import transaction

from campaigns.models import CampaignStatus
from campaigns.services import (
    campaign_finish_if_done,
    campaign_pause_if_running,
    campaigns_start_due,
    contacts_import,
)
from messaging.graph import GraphError
from notifications.models import Delivery, Notification
from numbers.models import NumberStatus
from tests.factories import make_campaign
from tests.notifications.conftest import email_channel, webhook_channel
from tests.webhooks.conftest import DISPLAY, payload, process_received

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliver(post):
    def run(body):
        response = post(body)
        assert response.status_code == 200, response.content
        [event] = process_received()
        return event

    return run


def only(event: str) -> Notification:
    [notification] = Notification.objects.filter(event=event)
    return notification


def test_a_pause_by_the_product_notifies_with_the_reason_and_queues_after_commit(
    world, django_capture_on_commit_callbacks
):
    everything = email_channel(world.workspace, "ops@acme.example")
    numbers_only, _ = webhook_channel(
        world.workspace, "http://127.0.0.1:9/", events=["number.quality_changed"]
    )
    with django_capture_on_commit_callbacks() as callbacks:
        assert campaign_pause_if_running(campaign_id=world.campaign.pk, reason="131048: spam rate")

    notification = only("campaign.paused")
    assert (notification.severity, notification.title, notification.body) == (
        "warning",
        "Campaign “Autumn sale” was paused",
        "Paused by the product: 131048: spam rate",
    )
    assert notification.objects_ref == [
        {
            "type": "campaign",
            "id": world.campaign.pk,
            "name": "Autumn sale",
            "admin_url": f"https://wa.example/admin/campaigns/campaign/{world.campaign.pk}/change/",
        }
    ]
    assert notification.data["reason"] == "131048: spam rate"
    assert notification.data["campaign"]["status"] == "paused"
    [delivery] = Delivery.objects.all()
    assert (delivery.channel, delivery.status, delivery.attempts) == (everything, "pending", 0)
    assert numbers_only.deliveries.count() == 0
    # The pause's own lane kick plus this one delivery task, both after commit.
    assert any(getattr(cb, "args", None) == (delivery.pk,) for cb in callbacks)


def test_a_rolled_back_pause_writes_and_queues_nothing(world, django_capture_on_commit_callbacks):
    email_channel(world.workspace, "ops@acme.example")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        campaign_pause_if_running(campaign_id=world.campaign.pk, reason="token expired")
        raise RuntimeError("the change failed after the pause")
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.RUNNING
    assert Notification.objects.count() == Delivery.objects.count() == 0
    assert callbacks == []


def test_a_person_pausing_a_campaign_is_not_notified(world):
    from campaigns.services import campaign_pause

    campaign_pause(campaign=world.campaign, user=None, reason="by hand")
    assert Notification.objects.count() == 0


def test_completion_notifies_once_with_the_funnel(world):
    campaign = world.new_campaign("Done soon")
    world.recipient("+919800000001", campaign=campaign, status="read")
    world.recipient("+919800000002", campaign=campaign, status="delivered")
    world.recipient("+919800000003", campaign=campaign, status="failed", wamid="")
    assert campaign_finish_if_done(campaign=campaign)
    notification = only("campaign.completed")
    assert notification.data["funnel"] == {
        "total": 3,
        "sent": 2,
        "delivered": 2,
        "read": 1,
        "replied": 0,
        "failed": 1,
        "unknown": 0,
        "cancelled": 0,
    }
    assert notification.body == "3 contacts: 2 sent, 2 delivered, 1 read, 0 replied, 1 failed."
    assert notification.dedup_key == f"campaign:{campaign.pk}"


def test_a_scheduled_start_refused_by_preflight_notifies_the_problems(world):
    from django.utils import timezone

    scheduled = world.new_campaign("Nobody to send to", status=CampaignStatus.SCHEDULED)
    scheduled.scheduled_at = timezone.now()
    scheduled.save(update_fields=["scheduled_at"])
    assert campaigns_start_due() == 0
    scheduled.refresh_from_db()
    assert scheduled.status == CampaignStatus.FAILED
    notification = only("campaign.preflight_failed")
    assert notification.severity == "critical"
    assert notification.data["problems"]
    assert notification.body == "\n".join(f"- {p}" for p in notification.data["problems"])


def test_a_real_import_notifies_its_counts(world):
    campaign = make_campaign(
        workspace=world.workspace,
        name="Import me",
        numbers=[world.number],
        templates=[world.template],
    )
    data = b"phone\n9812345678\n9812345678\nnot a phone\n"
    job = contacts_import(
        campaign=campaign,
        user=None,
        opener=lambda: io.BytesIO(data),
        filename="c.csv",
        size=len(data),
    )
    assert job.status == "done"
    notification = only("import.finished")
    assert notification.data["import"] == {
        "id": job.pk,
        "status": "done",
        "filename": "c.csv",
        "data_rows": 3,
        "accepted": 1,
        "rejected": 1,
        "duplicates": 1,
        "suppressed": 0,
    }
    assert notification.severity == "warning"  # rows were rejected
    assert notification.title == "Import into “Import me” finished: 1 contacts accepted"


def template_update(event: str, reason: str = "NONE") -> dict:
    value = {
        "event": event,
        "message_template_id": 300000000000001,
        "message_template_name": "seasonal_promo",
        "message_template_language": "en_US",
        "reason": reason,
    }
    return payload({"field": "message_template_status_update", "value": value}, time=60)


def test_a_template_rejected_by_webhook_notifies_with_metas_reason_and_the_pause(deliver, world):
    deliver(template_update("REJECTED", reason="INCORRECT_CATEGORY"))
    notification = only("template.status_changed")
    assert (notification.severity, notification.title, notification.body) == (
        "critical",
        "Template seasonal_promo (en_US) is now REJECTED",
        "APPROVED → REJECTED. Meta's reason: INCORRECT_CATEGORY",
    )
    assert notification.data["source"] == "webhook"
    paused = only("campaign.paused")
    assert "became REJECTED at Meta: INCORRECT_CATEGORY" in paused.body


def test_a_template_category_change_from_the_webhook_notifies(deliver, world):
    world.template.category = "UTILITY"
    world.template.save(update_fields=["category"])
    value = {
        "message_template_id": 300000000000001,
        "message_template_name": "seasonal_promo",
        "message_template_language": "en_US",
        "previous_category": "UTILITY",
        "new_category": "MARKETING",
    }
    deliver(payload({"field": "template_category_update", "value": value}, time=60))
    notification = only("template.category_changed")
    assert (notification.severity, notification.data["old"], notification.data["new"]) == (
        "warning",
        "UTILITY",
        "MARKETING",
    )
    assert notification.title == "Template seasonal_promo (en_US) is now in category MARKETING"


def quality(event: str) -> dict:
    return payload(
        {
            "field": "phone_number_quality_update",
            "value": {"display_phone_number": DISPLAY, "event": event, "current_limit": "TIER_1K"},
        },
        time=60,
    )


def test_a_quality_drop_from_the_account_webhook_notifies(deliver, world):
    deliver(quality("FLAGGED"))
    notification = only("number.quality_changed")
    assert notification.severity == "critical"
    assert (notification.data["old"], notification.data["new"]) == ("GREEN", "RED")
    assert notification.objects_ref[0]["admin_url"].endswith(
        f"/admin/numbers/number/{world.number.pk}/change/"
    )
    # The tier did not change (TIER_1K both), so there is no tier notification.
    assert not Notification.objects.filter(event="number.tier_changed").exists()


def test_a_disabled_account_notifies_the_status_change(deliver, world):
    body = payload(
        {
            "field": "account_update",
            "value": {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE"}},
        },
        time=60,
    )
    deliver(body)
    notifications = Notification.objects.filter(event="number.status_changed").order_by("pk")
    assert [(n.data["number"]["id"], n.data["new"], n.severity) for n in notifications] == [
        (world.number.pk, "blocked", "critical"),
        (world.other_number.pk, "blocked", "critical"),
    ]


def test_an_expired_token_met_by_the_engine_notifies_token_invalid_and_pauses(world):
    from campaigns.services.outcomes import number_stop_for_error

    error = GraphError("Error validating access token: Session has expired", code=190)
    number_stop_for_error(number_id=world.number.pk, error=error)
    world.number.refresh_from_db()
    assert world.number.status == NumberStatus.TOKEN_EXPIRED
    notification = only("number.token_invalid")
    assert notification.severity == "critical"
    assert "Session has expired" in notification.body
    # No separate status notification for the same fact.
    assert not Notification.objects.filter(event="number.status_changed").exists()
    assert only("campaign.paused").data["reason"].startswith("number stopped: token_expired")


def test_the_first_report_after_adding_a_number_is_not_a_change(world):
    world.other_number.messaging_limit_tier = "TIER_250"
    world.other_number.save(update_fields=["messaging_limit_tier"])
    assert Notification.objects.count() == 0


def test_a_notification_failure_never_undoes_the_change(world, monkeypatch):
    from notifications import receivers

    def broken(**kwargs):
        raise RuntimeError("outbox is broken")

    monkeypatch.setattr(receivers, "notification_emit", broken)
    assert campaign_pause_if_running(campaign_id=world.campaign.pk, reason="x")
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED


def test_a_conversation_handed_over_by_the_bot_notifies(world):
    from conversations.models import Contact, Conversation
    from conversations.services import conversation_handover

    contact = Contact.objects.create(workspace=world.workspace, phone="+919800000009", name="Asha")
    conversation = Conversation.objects.create(
        workspace=world.workspace, number=world.number, contact=contact
    )
    conversation_handover(conversation=conversation, reason="asked for a person")
    notification = only("conversation.handed_over")
    assert (notification.title, notification.body) == (
        "Conversation with Asha needs a person",
        "asked for a person",
    )
    assert notification.objects_ref[0]["id"] == conversation.pk


def test_a_scheduled_campaign_long_past_its_time_expires_instead_of_starting(world):
    from datetime import timedelta

    from django.utils import timezone

    late = world.new_campaign("Monday news", status=CampaignStatus.SCHEDULED)
    late.scheduled_at = timezone.now() - timedelta(hours=25)
    late.save(update_fields=["scheduled_at"])
    assert campaigns_start_due() == 0
    late.refresh_from_db()
    assert late.status == CampaignStatus.FAILED
    assert late.events.get().reason.startswith("expired: its scheduled time")
    notification = only("campaign.expired")
    assert notification.title == "Scheduled campaign “Monday news” expired without starting"
    assert not Notification.objects.filter(event="campaign.preflight_failed").exists()


def test_a_number_change_is_announced_once_whoever_saves_afterwards(world):
    from numbers.models import Number
    from numbers.signals import number_changed

    sent = []

    def record(sender, number, changes, **kwargs):
        sent.append((number.pk, changes))

    number_changed.connect(record)
    try:
        stale = Number.objects.get(pk=world.number.pk)
        fresh = Number.objects.get(pk=world.number.pk)
        fresh.quality_rating = "YELLOW"
        fresh.save(update_fields=["quality_rating"])
        stale.refresh_from_db()
        stale.label = "renamed"
        stale.save()  # every field written; the quality is what the row already holds
        stale.last_error = "x"
        stale.save(update_fields=["last_error"])  # no watched field: not even a query
    finally:
        number_changed.disconnect(record)
    assert sent == [(world.number.pk, {"quality_rating": ("GREEN", "YELLOW")})]
