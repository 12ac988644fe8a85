"""The endpoint: handshake, signatures, storing first, answering 200, queueing on commit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from config.redis import get_redis
from tests.webhooks.conftest import (
    APP_SECRET,
    URL,
    VERIFY_TOKEN,
    funnel,
    inbound_payload,
    process_received,
    sign,
    status,
    statuses_payload,
)
from webhooks import tasks as webhook_tasks
from webhooks.ingest import webhook_event_process, webhook_events_requeue
from webhooks.models import WebhookEvent, WebhookEventStatus, WebhookRefusalSample
from webhooks.refusals import SAMPLE_BODY_BYTES
from webhooks.views import signature_valid

pytestmark = pytest.mark.django_db


def test_handshake_answers_the_challenge_as_plain_text(client):
    response = client.get(
        URL,
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert (response.status_code, response.content) == (200, b"1158201444")
    assert response["Content-Type"] == "text/plain"


def test_handshake_refuses_a_wrong_token_a_wrong_mode_and_an_unset_token(client, settings):
    query = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    assert client.get(URL, query).status_code == 403
    query.update({"hub.verify_token": VERIFY_TOKEN, "hub.mode": "unsubscribe"})
    assert client.get(URL, query).status_code == 403
    settings.WHATSAPP_VERIFY_TOKEN = ""
    assert (
        client.get(
            URL, {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
        ).status_code
        == 403
    )


def test_a_signed_post_is_stored_whole_answered_200_and_queues_a_drain_on_commit(
    post, world, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        webhook_tasks.drain_webhook_events,
        "apply_async",
        lambda *args, **kw: queued.append((args, kw)),
    )
    body = json.dumps(statuses_payload(status("wamid.919800000001", "delivered", 5))).encode()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(body, HTTP_USER_AGENT="facebookexternalua")

    assert (response.status_code, response.content) == (200, b"ok")
    [event] = WebhookEvent.objects.all()
    assert event.body_bytes == body
    assert (event.status, event.signature_valid, event.error) == ("received", True, "")
    assert event.headers == {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature-256": sign(body),
    }
    assert len(callbacks) == 1
    # A short wait, so the POSTs of a burst are drained together.
    assert queued == [((), {"countdown": webhook_tasks.DRAIN_GATHER_SECONDS, "retry": False})]
    assert 0 < webhook_tasks.DRAIN_GATHER_SECONDS < 1
    assert get_redis().pttl(webhook_tasks.DRAIN_QUEUED_KEY) > 0


def test_posts_while_a_drain_is_queued_queue_nothing_more_until_it_starts(
    post, world, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        webhook_tasks.drain_webhook_events, "apply_async", lambda *a, **kw: queued.append(kw)
    )
    recipient = world.recipient("+919800000001")
    with django_capture_on_commit_callbacks(execute=True):
        for second, state in enumerate(["sent", "delivered", "read"]):
            assert post(statuses_payload(status(recipient.wamid, state, second))).status_code == 200
    assert len(queued) == 1

    # The queued drain runs: it clears the flag first, then applies every stored event.
    webhook_tasks.drain_webhook_events.apply()
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    recipient.refresh_from_db()
    assert recipient.status == "read"
    with django_capture_on_commit_callbacks(execute=True):
        post(statuses_payload(status(recipient.wamid, "read", 9)))
    assert len(queued) == 2


def test_an_inbound_message_is_drained_at_once_even_while_a_gathering_drain_waits(
    post, world, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        webhook_tasks.drain_webhook_events, "apply_async", lambda *a, **kw: queued.append(kw)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post(statuses_payload(status("wamid.x", "sent", 1))).status_code == 200
        inbound = inbound_payload({"id": "wamid.in1", "type": "text", "text": {"body": "Hi"}})
        assert post(inbound).status_code == 200
        assert post(statuses_payload(status("wamid.x", "delivered", 2))).status_code == 200

    # The statuses share one gathered drain; the inbound message queued its own, now.
    gathered = {"countdown": webhook_tasks.DRAIN_GATHER_SECONDS, "retry": False}
    assert queued == [gathered, {"countdown": None, "retry": False}]
    assert WebhookEvent.objects.filter(status="received").count() == 3


def test_a_broker_outage_still_answers_200_and_the_sweeper_requeues_later(
    post, monkeypatch, django_capture_on_commit_callbacks
):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(kwargs)
        raise ConnectionError("redis is down")

    monkeypatch.setattr(webhook_tasks.drain_webhook_events, "apply_async", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(statuses_payload(status("wamid.x", "sent", 1))).status_code == 200
        # The failed publish left no flag behind: the next POST tries again.
        assert post(statuses_payload(status("wamid.x", "delivered", 2))).status_code == 200
    assert len(attempts) == 2
    assert get_redis().exists(webhook_tasks.DRAIN_QUEUED_KEY) == 0
    first, second = WebhookEvent.objects.order_by("pk")

    assert webhook_events_requeue(now=first.received_at + timedelta(minutes=1)) == []
    later = second.received_at + timedelta(minutes=6)
    assert webhook_events_requeue(now=later) == [first.pk, second.pk]
    # Not again until another five minutes went by.
    assert webhook_events_requeue(now=later + timedelta(minutes=1)) == []
    assert webhook_events_requeue(now=later + timedelta(minutes=6)) == [first.pk, second.pk]


def test_the_periodic_retry_queues_a_drain_for_events_a_lost_task_left_behind(
    post, world, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        webhook_tasks.drain_webhook_events, "apply_async", lambda *a, **kw: queued.append(kw)
    )
    with django_capture_on_commit_callbacks(execute=True):
        post(statuses_payload(status("wamid.x", "sent", 1)))
    assert len(queued) == 1
    # Nothing is old enough yet: the queued drain is trusted.
    webhook_tasks.retry_webhook_work()
    assert len(queued) == 1
    # That task was lost, and its flag is still set, when the event is old enough to requeue.
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(minutes=6))
    webhook_tasks.retry_webhook_work()
    assert len(queued) == 2


def test_forged_signature_is_403_sampled_truncated_and_never_stored_as_an_event(
    post, world, django_capture_on_commit_callbacks
):
    recipient = world.recipient("+919800000001")
    body = json.dumps(
        statuses_payload(
            status(recipient.wamid, "read", 9), *[status(f"w{i}", "sent", 1) for i in range(40)]
        )
    ).encode()
    assert len(body) > SAMPLE_BODY_BYTES

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(body, signature=sign(body, "another-secret"))

    assert response.status_code == 403
    assert callbacks == []
    assert WebhookEvent.objects.count() == 0
    [sample] = WebhookRefusalSample.objects.all()
    assert (sample.reason, sample.body_bytes) == ("bad signature", body[:SAMPLE_BODY_BYTES])
    recipient.refresh_from_db()
    assert (recipient.status, recipient.read_at) == ("sent", None)


def test_missing_signature_is_403_and_nothing_applied(post, world):
    recipient = world.recipient("+919800000001")
    response = post(statuses_payload(status(recipient.wamid, "read", 9)), signature=None)
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0
    assert WebhookRefusalSample.objects.get().reason == "missing signature"
    assert process_received() == []
    recipient.refresh_from_db()
    assert recipient.status == "sent"


def test_without_an_app_secret_every_post_is_refused(post, settings):
    settings.WHATSAPP_APP_SECRET = ""
    body = b'{"object": "whatsapp_business_account", "entry": []}'
    assert post(body, signature=sign(body, "")).status_code == 403


def test_signature_check_is_exact():
    body = b'{"a": 1}'
    good = sign(body)
    assert signature_valid(body, good, APP_SECRET)
    assert signature_valid(body, f"  {good} ", APP_SECRET)
    assert not signature_valid(body, good.replace("sha256=", "sha1="), APP_SECRET)
    assert not signature_valid(body + b" ", good, APP_SECRET)
    assert not signature_valid(body, good[:-1], APP_SECRET)
    assert not signature_valid(body, "sha256=ü", APP_SECRET)
    assert not signature_valid(body, None, APP_SECRET)
    assert not signature_valid(body, good, "")


def test_malformed_json_is_stored_answered_200_and_flagged(post):
    response = post(b'{"object": "whatsapp_business_account", "entry": [')
    assert response.status_code == 200
    [event] = process_received()
    assert event.status == WebhookEventStatus.FLAGGED
    assert event.error.startswith("malformed JSON: ")
    assert event.body_bytes == b'{"object": "whatsapp_business_account", "entry": ['


def test_unknown_shapes_are_flagged_and_unknown_fields_noted(post):
    bodies = [
        b"[]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": {"id": 1}}',
        b'{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages"}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [7]}',
        b'"\\u0000"',
        b'{"a": NaN}',
    ]
    for body in bodies:
        assert post(body).status_code == 200
    events = process_received()
    assert [e.status for e in events] == ["flagged"] * len(bodies)
    assert [e.error for e in events] == [
        "not a WhatsApp webhook: no entry list",
        "unexpected object 'page'",
        "not a WhatsApp webhook: no entry list",
        "change 'messages' has no value object",
        "an entry is not an object",
        "not a WhatsApp webhook: no entry list",
        "malformed JSON: NaN is not JSON",
    ]

    post(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "security", "value": {}}]}],
        }
    )
    [event] = process_received()
    assert (event.status, event.outcome) == ("processed", {"ignored:security": 1})


def test_other_methods_are_405(client):
    assert client.put(URL, data=b"{}", content_type="application/json").status_code == 405


def test_the_same_bytes_delivered_twice_are_kept_twice_and_applied_once(post, world):
    recipient = world.recipient("+919800000001")
    body = json.dumps(statuses_payload(status(recipient.wamid, "delivered", 5))).encode()
    post(body)
    post(body)
    first, second = process_received()
    assert first.dedupe_key == second.dedupe_key
    assert (first.status, first.outcome) == ("processed", {"statuses": 1, "applied": 1})
    assert (second.status, second.outcome) == ("processed", {"statuses": 1, "duplicates": 1})
    # The admin's reprocess of either changes nothing either.
    for event in (first, second):
        again = webhook_event_process(event_id=event.pk, force=True)
        assert again.outcome == {"statuses": 1, "duplicates": 1}
    assert (funnel(world.campaign)["sent"], funnel(world.campaign)["delivered"]) == (1, 1)


def test_an_event_already_processed_is_left_alone_without_force(post, world):
    post(statuses_payload(status("wamid.unknown", "sent", 1)))
    [event] = process_received()
    processed_at = event.processed_at
    assert webhook_event_process(event_id=event.pk).processed_at == processed_at
    assert webhook_event_process(event_id=10**9) is None
    assert timezone.now() >= processed_at
