"""Hardening of the webhook endpoint and its data: refused POSTs are counted and sampled,
never stored as events; bodies are bounded; lone surrogates and implausible times are
cleaned; stored data is pruned after WEBHOOK_RETENTION_DAYS."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from campaigns.models import RecipientStatus
from config.beat import PERIODIC_TASKS, Periodic
from templates_sync.models import Template
from tests.webhooks.conftest import (
    T0,
    URL,
    at,
    inbound_payload,
    payload,
    process_received,
    sign,
    status,
    statuses_payload,
)
from webhooks import refusals
from webhooks import tasks as webhook_tasks
from webhooks.ingest import webhook_event_process
from webhooks.models import (
    InboundMessage,
    PendingStatus,
    StatusUpdate,
    WebhookEvent,
    WebhookEventStatus,
    WebhookRefusalCount,
    WebhookRefusalSample,
)
from webhooks.refusals import (
    REFUSAL_SAMPLES,
    SAMPLE_BODY_BYTES,
    webhook_refusal_record,
    webhook_refusals_flush,
)
from webhooks.retention import PruneResult, webhook_data_prune
from webhooks.statuses import pending_statuses_apply
from webhooks.views import whatsapp_webhook

pytestmark = pytest.mark.django_db

BEFORE_2020 = "time 1970-01-01T00:00:00Z is before 2020-01-01: used the arrival time"
IN_2099 = "time 2099-01-01T00:00:00Z is more than a day after it arrived: used the arrival time"
BEFORE_SEND = (
    "time 2024-12-31T23:00:00Z is before the message was sent (2025-01-01T00:00:00Z): "
    "used the arrival time"
)
YEAR_2099 = 4070908800
# Who force_login logs in with: the first backend configured may authenticate no one.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def refusal_counts() -> dict[str, int]:
    """The admin's counters, once the periodic flush has moved Redis's counts into them."""
    webhook_refusals_flush()
    return dict(WebhookRefusalCount.objects.values_list("reason", "count"))


@pytest.fixture
def sample_all(monkeypatch):
    """Every refusal sampled (by default at most one a second per reason is)."""
    monkeypatch.setattr(refusals, "SAMPLE_INTERVAL_MS", 0)


# --- refused POSTs --------------------------------------------------------------------


def test_refused_posts_store_no_event_and_are_counted_per_hour_and_reason(
    post, settings, sample_all
):
    body = json.dumps(statuses_payload(status("wamid.x", "read", 9))).encode()
    for _ in range(3):
        assert post(body, signature=None).status_code == 403
    for forged in (sign(body, "another-secret"), "sha256=" + "0" * 64):
        assert post(body, signature=forged).status_code == 403
    settings.WHATSAPP_APP_SECRET = ""
    assert post(body, signature=sign(body, "")).status_code == 403

    assert WebhookEvent.objects.count() == 0
    assert refusal_counts() == {"missing signature": 3, "bad signature": 2, "no app secret": 1}
    for row in WebhookRefusalCount.objects.all():
        assert row.hour == row.last_at.replace(minute=0, second=0, microsecond=0)
    assert WebhookRefusalSample.objects.count() == 6


def test_a_refusal_is_sampled_with_its_body_and_headers_cut_short(post):
    body = json.dumps(statuses_payload(*[status(f"w{i}", "sent", 1) for i in range(40)]))
    body = body.encode()
    forged = "sha256=" + "ab" * 300
    response = post(
        body,
        signature=forged,
        HTTP_USER_AGENT="u" * 1000,
        HTTP_X_FORWARDED_FOR="203.0.113.7",
        HTTP_COOKIE="not kept",
    )

    assert response.status_code == 403
    [sample] = WebhookRefusalSample.objects.all()
    assert len(body) > SAMPLE_BODY_BYTES
    assert sample.body_bytes == body[:SAMPLE_BODY_BYTES]
    assert sample.headers == {
        "Content-Type": "application/json",
        "User-Agent": "u" * 200,
        "X-Hub-Signature-256": forged[:200],
        "X-Forwarded-For": "203.0.113.7",
    }
    assert (sample.reason, sample.remote_addr, sample.content_length) == (
        "bad signature",
        "127.0.0.1",
        len(body),
    )


def test_the_samples_are_a_ring_of_the_last_refusals(post, sample_all):
    bodies = [f'{{"n": {i}}}'.encode() for i in range(REFUSAL_SAMPLES + 7)]
    for body in bodies:
        assert post(body, signature=None).status_code == 403

    samples = list(WebhookRefusalSample.objects.order_by("number"))
    assert len(samples) == REFUSAL_SAMPLES
    numbers = [sample.number for sample in samples]
    assert numbers == list(range(numbers[0], numbers[0] + REFUSAL_SAMPLES))
    assert [sample.body_bytes for sample in samples] == bodies[7:]
    assert {sample.slot for sample in samples} == set(range(REFUSAL_SAMPLES))
    assert refusal_counts() == {"missing signature": REFUSAL_SAMPLES + 7}


def test_only_the_first_refusal_of_an_hour_is_logged(post, caplog):
    with caplog.at_level(logging.WARNING, logger="webhooks.views"):
        for _ in range(5):
            post(b"{}", signature=None)
    assert [record.getMessage() for record in caplog.records] == [
        "webhook POST refused: missing signature (this hour's further refusals are counted, "
        "see the admin's webhook refusals)"
    ]


KWARGS = {"body": b"{}", "headers": {}, "remote_addr": "", "content_length": 2}
TEN = datetime(2025, 3, 1, 10, 59, 58, tzinfo=UTC)
ELEVEN = datetime(2025, 3, 1, 11, 0, 1, tzinfo=UTC)


def counters() -> list[tuple]:
    return list(
        WebhookRefusalCount.objects.order_by("hour", "reason").values_list(
            "hour", "reason", "count", "last_at"
        )
    )


def test_counts_are_kept_per_hour_and_added_up_by_each_flush():
    assert webhook_refusal_record(reason="bad signature", now=TEN, **KWARGS) is True
    assert webhook_refusal_record(reason="bad signature", now=TEN, **KWARGS) is False
    assert webhook_refusal_record(reason="bad signature", now=ELEVEN, **KWARGS) is True
    assert WebhookRefusalCount.objects.count() == 0

    assert webhook_refusals_flush() == 3
    later = TEN.replace(second=59)
    webhook_refusal_record(reason="bad signature", now=later, **KWARGS)
    webhook_refusal_record(reason="missing signature", now=later, **KWARGS)
    assert webhook_refusals_flush() == 2
    assert webhook_refusals_flush() == 0

    assert counters() == [
        (datetime(2025, 3, 1, 10, tzinfo=UTC), "bad signature", 3, later),
        (datetime(2025, 3, 1, 10, tzinfo=UTC), "missing signature", 1, later),
        (datetime(2025, 3, 1, 11, tzinfo=UTC), "bad signature", 1, ELEVEN),
    ]


def test_a_flood_keeps_at_most_one_sample_a_second_per_reason(post):
    for i in range(5):
        assert post(f'{{"n": {i}}}'.encode(), signature=None).status_code == 403
        assert post(f'{{"n": {i}}}'.encode(), signature="sha256=0").status_code == 403
    assert sorted(WebhookRefusalSample.objects.values_list("reason", "body")) == [
        ("bad signature", b'{"n": 0}'),
        ("missing signature", b'{"n": 0}'),
    ]
    assert refusal_counts() == {"missing signature": 5, "bad signature": 5}


def test_without_redis_refusals_are_counted_and_sampled_in_postgresql(post, monkeypatch):
    class Down:
        def pipeline(self, **kwargs):
            raise RedisConnectionError("redis is down")

    monkeypatch.setattr(refusals, "get_redis", lambda: Down())
    for _ in range(3):
        assert post(b"{}", signature=None).status_code == 403
    assert WebhookEvent.objects.count() == 0
    assert dict(WebhookRefusalCount.objects.values_list("reason", "count")) == {
        "missing signature": 3
    }
    assert WebhookRefusalSample.objects.count() == 3


def test_an_event_stored_unsigned_by_an_earlier_version_is_never_processed(world):
    recipient = world.recipient("+919800000001")
    body = json.dumps(statuses_payload(status(recipient.wamid, "read", 9))).encode()
    legacy = WebhookEvent.objects.create(
        body=body, signature_valid=False, status=WebhookEventStatus.FLAGGED, dedupe_key="x"
    )
    assert webhook_event_process(event_id=legacy.pk, force=True).status == "flagged"
    recipient.refresh_from_db()
    assert (recipient.status, recipient.read_at) == ("sent", None)


# --- body size --------------------------------------------------------------------------


class Tripwire:
    def read(self, *args, **kwargs):
        raise AssertionError("the body was read")


class EndlessBody:
    """A request stream that would go on for ever: counts what is read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "asked for the whole body"
        self.read_bytes += size
        return b"x" * size


def test_a_body_declared_over_the_limit_is_413_without_a_byte_read(settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    request = RequestFactory().post(
        URL, data=b"x" * 1025, content_type="application/json", HTTP_X_HUB_SIGNATURE_256="x"
    )
    request._stream = Tripwire()

    response = whatsapp_webhook(request)

    assert (response.status_code, response.content) == (413, b"body over 1024 bytes")
    assert WebhookEvent.objects.count() == 0
    assert refusal_counts() == {"body too large": 1}
    sample = WebhookRefusalSample.objects.get()
    assert (sample.body_bytes, sample.content_length) == (b"", 1025)


def test_a_body_without_a_content_length_is_read_to_the_limit_plus_one_only(settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    request = RequestFactory().post(URL, data=b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    stream = EndlessBody()
    request._stream = stream

    response = whatsapp_webhook(request)

    assert response.status_code == 413
    assert stream.read_bytes == 1025
    assert WebhookEvent.objects.count() == 0
    assert WebhookRefusalSample.objects.get().body_bytes == b"x" * SAMPLE_BODY_BYTES


def test_a_signed_body_of_exactly_the_limit_is_stored_whole(post, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    body = b'{"object": "whatsapp_business_account", "entry": [], "pad": "'
    body += b"p" * (1024 - len(body) - 2) + b'"}'
    assert len(body) == 1024
    assert post(body).status_code == 200
    assert WebhookEvent.objects.get().body_bytes == body
    assert post(body + b" ").status_code == 413
    assert WebhookEvent.objects.count() == 1


def test_the_default_limit_accepts_the_3_mb_meta_documents(post, settings):
    assert settings.WEBHOOK_MAX_BODY_BYTES == 3 * 1024 * 1024
    # Above Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which request.body enforced.
    body = json.dumps({"object": "whatsapp_business_account", "entry": [], "pad": "p" * 3_000_000})
    assert post(body.encode()).status_code == 200
    assert WebhookEvent.objects.get().body_bytes == body.encode()


# --- lone surrogates --------------------------------------------------------------------


def surrogate_body() -> bytes:
    """A signed-able payload with lone surrogates escaped (a status's wamid, a contact's
    name) and one as raw CESU-8 bytes (a message's text)."""
    body = inbound_payload(
        {"id": "wamid.IN.1", "type": "text", "text": {"body": "hi RAW"}}, name="\udc00Asha"
    )
    body["entry"][0]["changes"][0]["value"]["statuses"] = [status("wamid.\ud800", "sent", 5)]
    return json.dumps(body).encode().replace(b"RAW", b"\xed\xa0\x80")


def test_lone_surrogates_are_stored_as_u_fffd_and_the_event_processes(post, world):
    body = surrogate_body()
    assert post(body).status_code == 200

    [event] = process_received()

    expected = {
        "statuses": 1,
        "pending": 1,
        "inbound": 1,
        "surrogates_replaced": 3,
    }
    assert (event.status, event.error, event.outcome) == ("processed", "", expected)
    assert event.body_bytes == body
    message = InboundMessage.objects.get()
    assert (message.text, message.contact_name) == ("hi \ufffd", "\ufffdAsha")
    assert message.raw["text"] == {"body": "hi \ufffd"}
    update = StatusUpdate.objects.get()
    assert (update.message_key, update.wamid) == ("wamid.\ufffd", "wamid.\ufffd")

    again = webhook_event_process(event_id=event.pk, force=True)
    assert (again.status, again.error) == ("processed", "")
    assert again.outcome == {
        "statuses": 1,
        "duplicates": 1,
        "inbound": 1,
        "surrogates_replaced": 3,
    }
    assert (InboundMessage.objects.count(), StatusUpdate.objects.count()) == (1, 1)


def test_the_admin_shows_events_and_refusals_holding_lone_surrogates(client, post, world):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    post(surrogate_body())
    post(b'{"name": "\\ud800"}', signature=None)
    [event] = process_received()
    client.force_login(root, backend=MODEL_BACKEND)

    detail = client.get(f"/admin/webhooks/webhookevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert "wamid.\ufffd".encode() in detail.content
    sample = WebhookRefusalSample.objects.get()
    for page in (
        "/admin/webhooks/webhookrefusalcount/",
        "/admin/webhooks/webhookrefusalsample/",
        f"/admin/webhooks/webhookrefusalsample/{sample.pk}/change/",
    ):
        assert client.get(page).status_code == 200
    assert b"Missing signature" in client.get("/admin/webhooks/webhookrefusalcount/").content


def test_refusals_are_for_superusers_only_and_read_only(client, post, owner):
    post(b"{}", signature=None)
    sample = WebhookRefusalSample.objects.get()
    client.force_login(owner, backend=MODEL_BACKEND)
    assert client.get("/admin/webhooks/webhookrefusalsample/").status_code == 403
    assert client.get("/admin/webhooks/webhookrefusalcount/").status_code == 403
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    client.force_login(root, backend=MODEL_BACKEND)
    assert client.get("/admin/webhooks/webhookrefusalsample/add/").status_code == 403
    change = client.get(f"/admin/webhooks/webhookrefusalsample/{sample.pk}/change/")
    assert b'name="_save"' not in change.content


# --- implausible times ------------------------------------------------------------------


def test_times_before_2020_or_a_day_ahead_are_replaced_by_the_arrival_time(deliver, world):
    recipient = world.recipient("+919800000001", sent_at=at(0))
    items = [status(recipient.wamid, "sent", 0), status(recipient.wamid, "delivered", 0)]
    for item in items:
        item["timestamp"] = "0"
    read = status(recipient.wamid, "read", 0)
    read["timestamp"] = str(YEAR_2099)

    event = deliver(statuses_payload(*items, read))

    arrival = event.received_at
    assert event.outcome == {"statuses": 3, "unchanged": 1, "applied": 2, "timestamps_clamped": 3}
    assert event.status == "processed"
    recipient.refresh_from_db()
    assert (recipient.status, recipient.sent_at, recipient.delivered_at, recipient.read_at) == (
        "read",
        at(0),
        arrival,
        arrival,
    )
    assert sorted(StatusUpdate.objects.values_list("status", "at", "outcome", "note")) == [
        ("delivered", arrival, "applied", BEFORE_2020),
        ("read", arrival, "applied", IN_2099),
        ("sent", arrival, "unchanged", BEFORE_2020),
    ]


def test_a_status_dated_before_its_message_was_sent_gets_the_arrival_time(deliver, world):
    early = world.recipient("+919800000001", sent_at=at(0))
    skewed = world.recipient("+919800000002", sent_at=at(0))

    event = deliver(
        statuses_payload(
            status(early.wamid, "delivered", -3600),
            # Within the two minutes a clock may be off: believed.
            status(skewed.wamid, "delivered", -60),
        )
    )

    assert event.outcome == {"statuses": 2, "applied": 2, "timestamps_clamped": 1}
    early.refresh_from_db()
    skewed.refresh_from_db()
    assert (early.sent_at, early.delivered_at) == (at(0), event.received_at)
    assert (skewed.sent_at, skewed.delivered_at) == (at(-60), at(-60))
    assert StatusUpdate.objects.get(wamid=early.wamid).note == BEFORE_SEND
    assert StatusUpdate.objects.get(wamid=skewed.wamid).note == ""


def test_a_parked_status_keeps_its_time_note_and_is_checked_against_the_send(post, world):
    racing = world.recipient("+919800000001", status=RecipientStatus.SENDING, wamid="wamid.r1")
    early = world.recipient("+919800000002", status=RecipientStatus.SENDING, wamid="wamid.r2")
    zero = status(racing.wamid, "delivered", 0)
    zero["timestamp"] = "0"
    post(statuses_payload(zero, status(early.wamid, "delivered", -3600)))
    [event] = process_received()
    waiting = "waits for the send's answer (message is sending)"
    assert dict(StatusUpdate.objects.values_list("wamid", "note")) == {
        "wamid.r1": f"{BEFORE_2020}; {waiting}",
        "wamid.r2": waiting,
    }

    # The engine records both sends, then the parked statuses apply.
    for recipient in (racing, early):
        recipient.status, recipient.sent_at = RecipientStatus.SENT, at(0)
        recipient.save(update_fields=["status", "sent_at"])
    assert pending_statuses_apply() == 2

    assert PendingStatus.objects.count() == 0
    racing.refresh_from_db()
    early.refresh_from_db()
    assert (racing.status, racing.delivered_at) == ("delivered", event.received_at)
    assert (early.status, early.delivered_at) == ("delivered", event.received_at)
    # The outcome's note stays as the history of the wait; the time's is put first.
    assert dict(StatusUpdate.objects.values_list("wamid", "note")) == {
        "wamid.r1": f"{BEFORE_2020}; {waiting}",
        "wamid.r2": f"{BEFORE_SEND}; {waiting}",
    }
    assert set(StatusUpdate.objects.values_list("at", flat=True)) == {event.received_at}


def test_implausible_inbound_and_template_times_are_replaced_too(deliver, world):
    message = inbound_payload({"id": "wamid.IN.1", "type": "text", "text": {"body": "hi"}})
    message["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = "0"
    event = deliver(message)
    assert event.outcome["timestamps_clamped"] == 1
    assert InboundMessage.objects.get().at == event.received_at

    change = {
        "field": "message_template_status_update",
        "value": {
            "event": "PAUSED",
            "message_template_id": world.template.meta_id,
            "message_template_name": world.template.name,
            "message_template_language": world.template.language,
            "reason": "NONE",
        },
    }
    event = deliver(payload(change, time=YEAR_2099 - T0))
    assert event.outcome == {"template_updated": 1, "timestamps_clamped": 1}
    template = Template.objects.get(pk=world.template.pk)
    assert (template.status, template.status_changed_at) == ("PAUSED", event.received_at)


# --- retention --------------------------------------------------------------------------


def age(event: WebhookEvent, days: float, now: datetime) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=now - timedelta(days=days))


def test_retention_deletes_old_events_and_refusals_and_keeps_what_they_produced(
    post, world, caplog
):
    now = timezone.now()
    recipient = world.recipient("+919800000001")
    race = world.recipient("+919800000002", status=RecipientStatus.SENDING, wamid="wamid.race")
    post(statuses_payload(status(recipient.wamid, "delivered", 5)))
    post(statuses_payload(status(race.wamid, "delivered", -3600)))
    post(inbound_payload({"id": "wamid.IN.1", "type": "text", "text": {"body": "hi"}}))
    post(statuses_payload(status(recipient.wamid, "read", 9)))
    status_event, parked_event, inbound_event, recent_event = process_received()
    failed = WebhookEvent.objects.create(
        body=b"{}", signature_valid=True, status=WebhookEventStatus.FAILED, dedupe_key="f"
    )
    received = WebhookEvent.objects.create(body=b"{}", signature_valid=True, dedupe_key="r")
    legacy = WebhookEvent.objects.create(
        body=b"{}", signature_valid=False, status=WebhookEventStatus.FLAGGED, dedupe_key="l"
    )
    old = [status_event, parked_event, inbound_event, failed, received, legacy]
    for i, event in enumerate(old):
        # Deleted oldest first, two per batch: these in this order.
        age(event, 30.1 - i / 100, now)
    age(recent_event, 29.99, now)
    webhook_refusal_record(reason="bad signature", now=now - timedelta(days=31), **KWARGS)
    # Sampled as well: another reason (one sample a second per reason).
    webhook_refusal_record(reason="no app secret", now=now - timedelta(hours=1), **KWARGS)
    webhook_refusals_flush()

    with caplog.at_level(logging.WARNING, logger="webhooks.retention"):
        result = webhook_data_prune(now=now, days=30, batch=2)

    assert result == PruneResult(
        cutoff=now - timedelta(days=30), events=6, unprocessed=2, samples=1, counters=1
    )
    assert list(WebhookEvent.objects.values_list("pk", flat=True)) == [recent_event.pk]
    # What the events produced stays, unlinked from the deleted ones.
    assert sorted(StatusUpdate.objects.values_list("wamid", "status", "event_id", "outcome")) == [
        (recipient.wamid, "delivered", None, "applied"),
        (recipient.wamid, "read", recent_event.pk, "applied"),
        ("wamid.race", "delivered", None, "pending"),
    ]
    assert PendingStatus.objects.get().update.wamid == "wamid.race"
    message = InboundMessage.objects.get()
    assert (message.message_id, message.event_id, message.text) == ("wamid.IN.1", None, "hi")
    recipient.refresh_from_db()
    assert recipient.status == "read"
    assert WebhookRefusalSample.objects.get().received_at == now - timedelta(hours=1)
    assert WebhookRefusalCount.objects.get().count == 1
    assert [record.getMessage() for record in caplog.records] == [
        "retention deleted 1 webhook event(s) never processed, older than 30 days: "
        f"{failed.pk} (failed)",
        "retention deleted 1 webhook event(s) never processed, older than 30 days: "
        f"{received.pk} (received)",
    ]

    assert webhook_data_prune(now=now, days=30) == PruneResult(cutoff=now - timedelta(days=30))

    # A parked status whose event is gone still applies; dated before the send, it takes
    # the time its own row was written.
    race.status, race.sent_at = RecipientStatus.SENT, at(0)
    race.save(update_fields=["status", "sent_at"])
    assert pending_statuses_apply() == 1
    update = StatusUpdate.objects.get(wamid="wamid.race")
    race.refresh_from_db()
    assert (race.status, race.delivered_at, update.at) == (
        "delivered",
        update.created_at,
        update.created_at,
    )
    assert update.note == f"{BEFORE_SEND}; waits for the send's answer (message is sending)"


def test_retention_stops_at_its_deadline_and_says_more_is_left(world):
    now = timezone.now()
    events = [
        WebhookEvent.objects.create(
            body=b"{}", signature_valid=True, status="processed", dedupe_key=str(i)
        )
        for i in range(3)
    ]
    for event in events:
        age(event, 40, now)

    first = webhook_data_prune(now=now, batch=1, seconds=0)

    assert (first.events, first.more) == (1, True)
    assert WebhookEvent.objects.count() == 2
    rest = webhook_data_prune(now=now, batch=1)
    assert (rest.events, rest.more) == (2, False)
    assert WebhookEvent.objects.count() == 0


def test_retention_is_a_daily_periodic_task_that_queues_itself_while_more_is_left(
    settings, monkeypatch
):
    assert settings.WEBHOOK_RETENTION_DAYS == 30
    assert (
        Periodic(
            "webhooks retention", "webhooks.tasks.prune_webhook_data", 86400, expires_seconds=3600
        )
        in PERIODIC_TASKS
    )
    runs, queued = [], []
    answers = iter([True, False])

    def prune(**kwargs):
        runs.append(kwargs)
        return PruneResult(cutoff=timezone.now(), more=next(answers))

    monkeypatch.setattr(webhook_tasks, "webhook_data_prune", prune)
    monkeypatch.setattr(
        webhook_tasks.prune_webhook_data, "apply_async", lambda *a, **kw: queued.append(kw)
    )
    webhook_tasks.prune_webhook_data()
    webhook_tasks.prune_webhook_data()
    assert runs == [{"seconds": webhook_tasks.PRUNE_SECONDS}] * 2
    assert queued == [{}]


def test_the_refusal_counts_are_flushed_by_a_periodic_task_every_10_seconds(post):
    assert (
        Periodic(
            "webhook refusals flush",
            "webhooks.tasks.flush_webhook_refusals",
            10,
            queue="webhooks",
            expires_seconds=10,
        )
        in PERIODIC_TASKS
    )
    post(b"{}", signature=None)
    assert WebhookRefusalCount.objects.count() == 0
    webhook_tasks.flush_webhook_refusals()
    assert dict(WebhookRefusalCount.objects.values_list("reason", "count")) == {
        "missing signature": 1
    }
