"""Delivery over real loopback receivers: Standard Webhooks signatures (checked by the
reference library), rotation, retries with backoff, time-outs, 410 Gone, e-mail over SMTP,
Slack's one message per second, dedup and cooldown, and no secret in any log."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership, Role
from notifications.delivery import channel_test, delivery_attempt, retry_delay
from notifications.models import Channel, Delivery, DeliveryAttempt, Notification
from notifications.ratelimit import slack_slot_take
from notifications.services import (
    channel_rotate_secret,
    notification_emit,
    notifications_summarize_held,
)
from tests.notifications.conftest import email_channel, slack_channel, webhook_channel

pytestmark = pytest.mark.django_db


def emit(workspace, **extra) -> Notification:
    fields = {
        "workspace_id": workspace.pk,
        "event": "campaign.paused",
        "title": "Campaign “Autumn sale” was paused",
        "body": "Paused by the product: 131048",
        "severity": "warning",
        "objects": [
            {
                "type": "campaign",
                "id": 7,
                "name": "Autumn sale",
                "admin_url": "https://wa.example/admin/campaigns/campaign/7/change/",
            }
        ],
        "data": {"reason": "131048"},
        **extra,
    }
    return notification_emit(**fields)


def the_delivery(channel: Channel) -> Delivery:
    [delivery] = Delivery.objects.filter(channel=channel)
    return delivery


def test_a_webhook_is_signed_per_standard_webhooks_and_has_the_documented_body(workspace, receiver):
    channel, secret = webhook_channel(workspace, receiver.url + "/hook")
    receiver.secrets = [secret]
    notification = emit(workspace)
    delivery = delivery_attempt(delivery_id=the_delivery(channel).pk)

    assert (delivery.status, delivery.attempts, delivery.answer) == ("delivered", 1, "200 OK: ok")
    [request] = receiver.requests
    assert request.verified_by == [0]
    assert request.headers["webhook-id"] == f"msg_{notification.uuid.hex}"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert " " not in request.headers["webhook-signature"]  # one secret, one signature
    assert request.json() == {
        "type": "campaign.paused",
        "timestamp": notification.created_at.isoformat(),
        "data": {
            "notification_id": notification.pk,
            "workspace": {"id": workspace.pk, "slug": "acme", "name": "Acme"},
            "severity": "warning",
            "title": "Campaign “Autumn sale” was paused",
            "body": "Paused by the product: 131048",
            "objects": [
                {
                    "type": "campaign",
                    "id": 7,
                    "name": "Autumn sale",
                    "admin_url": "https://wa.example/admin/campaigns/campaign/7/change/",
                }
            ],
            "reason": "131048",
        },
    }
    [attempt] = DeliveryAttempt.objects.filter(delivery=delivery)
    assert (attempt.ok, attempt.status_code) == (True, 200)
    assert attempt.duration_ms == delivery.duration_ms


def test_during_a_rotation_both_secrets_sign_and_afterwards_only_the_new(workspace, receiver):
    channel, old = webhook_channel(workspace, receiver.url)
    new = channel_rotate_secret(channel=channel)
    assert new != old and new.startswith("whsec_")
    receiver.secrets = [old, new]
    emit(workspace)
    delivery_attempt(delivery_id=the_delivery(channel).pk)
    [request] = receiver.requests
    assert request.verified_by == [0, 1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2

    Channel.objects.filter(pk=channel.pk).update(
        previous_secret_until=timezone.now() - timedelta(seconds=1)
    )
    second = emit(workspace, title="again")
    delivery_attempt(delivery_id=Delivery.objects.get(notification=second).pk)
    assert receiver.requests[1].verified_by == [1]
    assert " " not in receiver.requests[1].headers["webhook-signature"]


def test_secrets_are_encrypted_at_rest(workspace):
    from django.db import connection

    channel, secret = webhook_channel(workspace, "http://127.0.0.1:9/")
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM notifications_channel WHERE id = %s", [channel.pk])
        [stored] = cursor.fetchone()
    assert stored.startswith("fernet:") and secret not in stored


def test_500s_are_retried_with_exponential_backoff_until_delivered(workspace, receiver):
    receiver.script = [(500, 0), (500, 0), (503, 0)]
    channel, _ = webhook_channel(workspace, receiver.url)
    emit(workspace)
    delivery = the_delivery(channel)
    expected_bases = [30, 60, 120]
    for attempt, base in enumerate(expected_bases, start=1):
        before = timezone.now()
        delivery = delivery_attempt(delivery_id=delivery.pk, force=True)
        after = timezone.now()
        assert (delivery.status, delivery.attempts) == ("pending", attempt)
        # base * 2^(n-1), +-20% jitter, from the attempt's time.
        assert before + timedelta(seconds=base * 0.8) <= delivery.next_attempt_at
        assert delivery.next_attempt_at <= after + timedelta(seconds=base * 1.2)
        # Not due yet: a task arriving now does nothing.
        assert delivery_attempt(delivery_id=delivery.pk) is None
    delivery = delivery_attempt(delivery_id=delivery.pk, force=True)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("delivered", 4, None)
    codes = list(
        DeliveryAttempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)
    )
    assert codes == [500, 500, 503, 200]
    # Every retry is the same message: one webhook-id.
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 1


def test_the_backoff_is_capped_and_jittered():
    import random

    rng = random.Random(1)
    delays = [retry_delay(n, rng=rng) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        base = min(30 * 2 ** (n - 1), 3600)
        assert base * 0.8 <= delay <= base * 1.2


def test_a_time_out_is_an_attempt_that_is_retried(workspace, receiver, settings):
    settings.NOTIFY_READ_TIMEOUT = 0.3
    receiver.script = [(200, 2)]
    channel, _ = webhook_channel(workspace, receiver.url)
    emit(workspace)
    delivery = delivery_attempt(delivery_id=the_delivery(channel).pk)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.answer.startswith("timed out")
    [attempt] = DeliveryAttempt.objects.filter(delivery=delivery)
    assert (attempt.ok, attempt.status_code) == (False, None)
    assert 250 <= attempt.duration_ms < 2000


def test_after_24_hours_a_failing_delivery_gives_up(workspace, receiver):
    receiver.script = [(500, 0)]
    channel, _ = webhook_channel(workspace, receiver.url)
    emit(workspace)
    delivery = the_delivery(channel)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(hours=24))
    delivery = delivery_attempt(delivery_id=delivery.pk)
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)
    assert delivery.answer.startswith("gave up after 1 attempts over 24")


def test_410_gone_disables_the_channel_and_says_so_in_the_admin(workspace, receiver):
    receiver.script = [(410, 0)]
    channel, _ = webhook_channel(workspace, receiver.url)
    first = emit(workspace)
    second = emit(workspace, title="second")
    delivery = delivery_attempt(delivery_id=Delivery.objects.get(notification=first).pk)
    assert delivery.status == "failed"
    channel.refresh_from_db()
    assert (channel.active, channel.disabled_at is not None) == (False, True)
    assert channel.disabled_reason.startswith("the endpoint answered 410 Gone")
    # What was waiting for it is cancelled, and nothing new is queued for it.
    assert Delivery.objects.get(notification=second).status == "cancelled"
    [notice] = Notification.objects.filter(event="notification.channel_disabled")
    assert notice.objects_ref[0]["id"] == channel.pk
    assert notice.deliveries.count() == 0
    third = emit(workspace, title="third")
    assert third.deliveries.count() == 0
    assert len(receiver.requests) == 1


def test_email_goes_over_smtp_to_listed_addresses_and_members_by_role(workspace, owner, smtp):
    from django.contrib.auth import get_user_model

    owner.email = "olivia@acme.example"
    owner.save(update_fields=["email"])
    admin_user = get_user_model().objects.create_user("adam", email="adam@acme.example")
    Membership.objects.create(workspace=workspace, user=admin_user, role=Role.ADMIN)
    agent_user = get_user_model().objects.create_user("agnes", email="agnes@acme.example")
    Membership.objects.create(workspace=workspace, user=agent_user, role=Role.AGENT)

    channel = email_channel(workspace, "ops@acme.example, role:owner, role:admin")
    notification = emit(workspace)
    delivery = delivery_attempt(delivery_id=the_delivery(channel).pk)
    assert (delivery.status, delivery.answer) == ("delivered", "sent to 3 recipient(s)")
    [message] = smtp.messages
    assert message["from"] == "alerts@wa.example"
    assert sorted(message["to"]) == ["adam@acme.example", "olivia@acme.example", "ops@acme.example"]
    parsed = email.message_from_string(message["data"], policy=email.policy.default)
    assert parsed["subject"].strip() == "[Acme] Campaign “Autumn sale” was paused"
    assert parsed["message-id"] == f"<{notification.uuid.hex}@wacampaigns>"
    text = parsed.get_content()
    assert "Paused by the product: 131048" in text
    assert "Autumn sale: https://wa.example/admin/campaigns/campaign/7/change/" in text


def test_an_unreachable_smtp_server_is_retried(workspace, settings):
    from tests.notifications.conftest import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    channel = email_channel(workspace, "ops@acme.example")
    emit(workspace)
    delivery = delivery_attempt(delivery_id=the_delivery(channel).pk)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.answer.startswith("SMTP: ConnectionRefusedError")


def test_the_slack_limiter_allows_one_message_per_second_per_hook():
    first = slack_slot_take("https://hooks.slack.com/services/T1/B1/aaaa")
    second = slack_slot_take("https://hooks.slack.com/services/T1/B1/aaaa")
    other = slack_slot_take("https://hooks.slack.com/services/T1/B2/bbbb")
    assert first.allowed and other.allowed
    assert not second.allowed and 0 < second.retry_after_ms <= 1000


def test_slack_gets_text_and_blocks_at_most_once_a_second(workspace, receiver):
    import time

    channel = slack_channel(workspace, receiver.url + "/services/T1/B1/secretpart")
    for n in range(3):
        emit(workspace, title=f"n{n}")
    deferrals = 0
    pending = list(
        Delivery.objects.filter(channel=channel).order_by("pk").values_list("pk", flat=True)
    )
    while pending:
        for pk in list(pending):
            delivery = delivery_attempt(delivery_id=pk)
            if delivery is not None and delivery.status == "delivered":
                pending.remove(pk)
            elif delivery is not None:
                deferrals += 1
                assert delivery.attempts == 0  # a deferral is not an attempt
        if pending:
            wait = min(Delivery.objects.get(pk=pk).next_attempt_at for pk in pending)
            time.sleep(max(0, (wait - timezone.now()).total_seconds()) + 0.01)
    assert len(receiver.requests) == 3
    assert deferrals >= 2
    arrivals = [request.at for request in receiver.requests]
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(arrivals))
    body = receiver.requests[0].json()
    assert body["text"].startswith(":warning: n0")
    assert [block["type"] for block in body["blocks"]] == ["section", "section", "context"]
    assert "<https://wa.example/admin/campaigns/campaign/7/change/|Autumn sale>" in json.dumps(body)
    # The hook's URL (its credential) is in no answer.
    assert all("secretpart" not in d.answer for d in Delivery.objects.all())


def test_a_flapping_quality_rating_notifies_once_an_hour_with_what_was_held_back(
    workspace, receiver
):
    from tests.factories import make_number

    number = make_number(workspace=workspace, quality_rating="GREEN")
    webhook_channel(workspace, receiver.url)
    for rating in ["RED", "GREEN", "YELLOW", "RED"]:
        number.quality_rating = rating
        number.save(update_fields=["quality_rating"])
    [first] = Notification.objects.filter(event="number.quality_changed")
    assert first.data["new"] == "RED"
    assert first.held_back == 3
    assert first.held_latest["data"]["new"] == "RED"
    assert first.deliveries.count() == 1
    # Nothing is summarised while the hour runs.
    assert notifications_summarize_held() == 0
    Notification.objects.filter(pk=first.pk).update(
        cooldown_until=timezone.now() - timedelta(seconds=1)
    )
    assert notifications_summarize_held() == 1
    summary = Notification.objects.filter(event="number.quality_changed").exclude(pk=first.pk).get()
    assert summary.data["held_back"] == 3
    assert "3 more notifications of this kind were held back" in summary.body
    assert summary.deliveries.count() == 1
    # The summary starts the next hour: a further change is held by it.
    number.quality_rating = "GREEN"
    number.save(update_fields=["quality_rating"])
    summary.refresh_from_db()
    assert summary.held_back == 1
    assert notifications_summarize_held() == 0


def test_a_once_only_event_is_not_notified_twice(workspace):
    emit(workspace, event="campaign.completed", dedup_key="campaign:7")
    assert emit(workspace, event="campaign.completed", dedup_key="campaign:7") is None
    assert Notification.objects.filter(event="campaign.completed").count() == 1


def test_the_test_button_sends_once_and_records_the_attempt(workspace, receiver, owner):
    receiver.script = [(500, 0)]
    channel, secret = webhook_channel(workspace, receiver.url)
    receiver.secrets = [secret]
    delivery = channel_test(channel=channel, user=owner)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.answer == "500 Internal Server Error: nope"
    delivery = channel_test(channel=channel, user=owner)
    assert delivery.status == "delivered"
    assert receiver.requests[1].verified_by == [0]
    assert receiver.requests[1].json()["type"] == "notification.test"


def test_no_secret_reaches_a_log(workspace, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.script = [(500, 0), (410, 0)]
    channel, secret = webhook_channel(workspace, receiver.url)
    rotated = channel_rotate_secret(channel=channel)
    slack = slack_channel(workspace, receiver.url + "/services/T/B/hooksecret")
    emit(workspace)
    for delivery in Delivery.objects.all():
        delivery_attempt(delivery_id=delivery.pk, force=True)
    text = caplog.text
    for secret_text in (secret, rotated, secret[6:], rotated[6:], "hooksecret"):
        assert secret_text not in text
    assert slack.pk


def test_a_slack_hook_url_is_encrypted_at_rest(workspace):
    from django.db import connection

    channel = slack_channel(workspace, "https://hooks.slack.com/services/T1/B1/topsecretpart")
    with connection.cursor() as cursor:
        cursor.execute("SELECT target FROM notifications_channel WHERE id = %s", [channel.pk])
        [stored] = cursor.fetchone()
    assert stored.startswith("fernet:") and "topsecretpart" not in stored
    channel.refresh_from_db()
    assert channel.target.endswith("/topsecretpart")
