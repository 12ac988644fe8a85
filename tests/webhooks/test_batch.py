"""The drain: many stored events applied in one batch end exactly as one by one, in a fixed
number of statements, and a bad event is isolated."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction

from campaigns.models import Recipient, RecipientStatus
from messaging.callbacks import callback_data_for
from tests.webhooks.conftest import at, funnel, inbound_payload, status, statuses_payload
from webhooks import statuses
from webhooks import tasks as webhook_tasks
from webhooks.ingest import webhook_event_process, webhook_events_drain
from webhooks.models import (
    InboundMessage,
    PendingStatus,
    StatusOutcome,
    StatusUpdate,
    WebhookEvent,
)
from webhooks.statuses import pending_statuses_apply

pytestmark = pytest.mark.django_db

UNDELIVERABLE = [{"code": 131026, "title": "Message undeliverable"}]


@pytest.fixture
def processing():
    """These tests pick the way of processing themselves (no need to run them twice)."""
    return "both"


class Rollback(Exception):
    """Undoes one way of processing, so the other starts from the same stored events."""


def snapshot(world) -> dict[str, Any]:
    """Everything processing writes, keyed so that two runs compare equal when they agree."""
    world.campaign.refresh_from_db()
    return {
        "recipients": list(
            Recipient.objects.order_by("pk").values_list(
                "phone",
                "status",
                "wamid",
                "sent_at",
                "delivered_at",
                "read_at",
                "failed_at",
                "replied_at",
                "error_code",
                "error_title",
            )
        ),
        "statuses": sorted(
            StatusUpdate.objects.values_list(
                "message_key", "status", "event_id", "recipient_id", "outcome", "note", "at"
            )
        ),
        "pending": sorted(PendingStatus.objects.values_list("update__message_key", "wamid")),
        "events": list(
            WebhookEvent.objects.order_by("pk").values_list("pk", "status", "error", "outcome")
        ),
        "inbound": list(
            InboundMessage.objects.order_by("message_id").values_list(
                "message_id", "recipient_id", "campaign_id"
            )
        ),
        "funnel": funnel(world.campaign),
    }


def processed_both_ways(world) -> tuple[dict, dict]:
    """The stored events processed one by one, then (from the same start) by one drain."""
    ids = list(
        WebhookEvent.objects.filter(status="received").order_by("pk").values_list("pk", flat=True)
    )
    results = []
    for way in ("one_by_one", "drain"):
        try:
            with transaction.atomic():
                if way == "one_by_one":
                    for pk in ids:
                        webhook_event_process(event_id=pk)
                else:
                    assert webhook_events_drain() == len(ids)
                    assert webhook_events_drain() == 0
                results.append(snapshot(world))
                raise Rollback
        except Rollback:
            pass
    return results[0], results[1]


def test_a_batch_of_duplicates_reorderings_bad_shapes_and_races_ends_as_one_by_one(post, world):
    read = world.recipient("+919800000001", sent_at=at(1))
    failed_late = world.recipient("+919800000002", sent_at=at(1))
    failed_first = world.recipient("+919800000003", sent_at=at(1))
    racing = world.recipient("+919800000004", status=RecipientStatus.SENDING, wamid=None)
    unknown = world.recipient("+919800000005", status=RecipientStatus.UNKNOWN, wamid=None)
    replied = world.recipient("+919800000006", sent_at=at(1))
    bodies: list[Any] = [
        # Out of order, across POSTs, with Meta's own duplicate and a same-bytes retry.
        statuses_payload(status(read.wamid, "read", 9)),
        statuses_payload(status(read.wamid, "delivered", 5), status(read.wamid, "sent", 1)),
        statuses_payload(status(read.wamid, "delivered", 5)),
        statuses_payload(status(read.wamid, "read", 9)),
        # Delivered before failed in arrival order: failed cannot follow delivered.
        statuses_payload(status(failed_late.wamid, "delivered", 4)),
        statuses_payload(status(failed_late.wamid, "failed", 3, errors=UNDELIVERABLE)),
        # Failed first: the later delivered changes nothing.
        statuses_payload(status(failed_first.wamid, "failed", 3, errors=UNDELIVERABLE)),
        statuses_payload(status(failed_first.wamid, "delivered", 4)),
        # Unknown shapes and malformed JSON, flagged in the middle of the batch.
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": [',
        # A status racing the send's answer, and one for a message not known at all.
        statuses_payload(
            status("wamid.race", "delivered", 6, callback=callback_data_for(racing.pk))
        ),
        statuses_payload(status("wamid.elsewhere", "sent", 2)),
        # An unknown send resolved by our callback id, then found by its wamid.
        statuses_payload(
            status("wamid.resolved", "delivered", 7, callback=callback_data_for(unknown.pk))
        ),
        statuses_payload(status("wamid.resolved", "read", 8)),
        # An inbound reply in the middle (processed one by one by the drain), and a status
        # with a bad timestamp (applied with the receive time, event flagged).
        inbound_payload(
            {"id": "wamid.IN.1", "type": "text", "text": {"body": "yes"}},
            wa_id="919800000006",
        ),
        statuses_payload({"id": replied.wamid, "status": "delivered", "timestamp": "soon"}),
    ]
    for body in bodies:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        assert post(raw).status_code == 200
    post(json.dumps(bodies[0]).encode())

    one_by_one, drained = processed_both_ways(world)

    assert drained == one_by_one
    recipients = {row[0]: row for row in drained["recipients"]}
    assert recipients["+919800000001"][1:6] == ("read", read.wamid, at(1), at(5), at(9))
    assert recipients["+919800000002"][1] == "delivered"
    assert recipients["+919800000003"][1:2] + recipients["+919800000003"][8:] == (
        "failed",
        131026,
        "Message undeliverable",
    )
    assert recipients["+919800000004"][1] == "sending"
    assert recipients["+919800000005"][1:3] == ("read", "wamid.resolved")
    assert recipients["+919800000006"][1] == "delivered"
    assert recipients["+919800000006"][7] == at(100)
    assert drained["pending"] == [
        ("wamid.elsewhere", "wamid.elsewhere"),
        ("wamid.race", "wamid.race"),
    ]
    assert [event[1] for event in drained["events"]] == [
        *["processed"] * 8,
        "flagged",
        "flagged",
        *["processed"] * 5,
        "flagged",
        "processed",
    ]
    outcomes = [event[3] for event in drained["events"]]
    assert outcomes[:4] == [
        {"statuses": 1, "applied": 1},
        # delivered moves delivered_at back to its real time; sent_at was already right.
        {"statuses": 2, "applied": 1, "unchanged": 1},
        {"statuses": 1, "duplicates": 1},
        {"statuses": 1, "duplicates": 1},
    ]
    assert outcomes[5] == {"statuses": 1, "unchanged": 1}
    assert outcomes[-1] == {"statuses": 1, "duplicates": 1}
    # sent / delivered / read / failed / replied; the racing message is still the engine's.
    assert [
        drained["funnel"][name] for name in ("sent", "delivered", "read", "failed", "replied")
    ] == [
        4,
        4,
        2,
        1,
        1,
    ]
    assert drained["inbound"] == [("wamid.IN.1", replied.pk, world.campaign.pk)]


def test_a_parked_status_is_applied_with_the_batch_that_finds_its_message(post, world):
    recipient = world.recipient("+919800000001", status=RecipientStatus.SENDING, wamid=None)
    callback = callback_data_for(recipient.pk)
    post(statuses_payload(status("wamid.race", "sent", 2, callback=callback)))
    assert webhook_events_drain() == 1
    assert PendingStatus.objects.count() == 1
    assert pending_statuses_apply() == 0
    # The engine records the send's answer; then the next statuses arrive together.
    recipient.status, recipient.wamid, recipient.sent_at = "sent", "wamid.race", at(1)
    recipient.save(update_fields=["status", "wamid", "sent_at"])
    post(statuses_payload(status("wamid.race", "read", 9, callback=callback)))
    post(statuses_payload(status("wamid.race", "delivered", 5, callback=callback)))

    one_by_one, drained = processed_both_ways(world)

    assert drained == one_by_one
    assert drained["pending"] == []
    assert drained["recipients"][0][1:6] == ("read", "wamid.race", at(1), at(5), at(9))
    assert [event[3] for event in drained["events"][1:]] == [
        # The parked "sent" is older news than the engine's sent_at: unchanged.
        {"statuses": 1, "applied": 1, "unchanged": 1, "pending_applied": 1},
        {"statuses": 1, "applied": 1},
    ]


def test_a_drain_uses_the_same_few_statements_for_ten_events_or_two_hundred(
    post, world, django_assert_max_num_queries
):
    recipients = [world.recipient(f"+9198000{i:05d}", sent_at=at(1)) for i in range(200)]
    for recipient in recipients[:10]:
        post(statuses_payload(status(recipient.wamid, "delivered", 5)))
    # Claim, insert statuses, lock recipients, parked lookup, write recipients, write
    # status rows, one counter UPDATE, mark events; and two savepoints with their releases
    # (the batch's, and the drain transaction's inside the test's own).
    with django_assert_max_num_queries(12):
        assert webhook_events_drain() == 10
    for recipient in recipients:
        post(statuses_payload(status(recipient.wamid, "read", 9)))
    with django_assert_max_num_queries(12):
        assert webhook_events_drain() == 200
    assert {r.status for r in Recipient.objects.all()} == {"read"}
    assert StatusUpdate.objects.filter(outcome=StatusOutcome.APPLIED).count() == 210


def test_an_event_that_breaks_the_batch_fails_alone_and_the_others_apply(post, world, monkeypatch):
    good = world.recipient("+919800000001")
    bad = world.recipient("+919800000002")
    advance = statuses._advance

    def advance_or_break(recipient, update):
        if recipient.pk == bad.pk:
            raise RuntimeError("a bug")
        return advance(recipient, update)

    monkeypatch.setattr(statuses, "_advance", advance_or_break)
    post(statuses_payload(status(good.wamid, "delivered", 5)))
    post(statuses_payload(status(bad.wamid, "delivered", 5)))
    post(statuses_payload(status(good.wamid, "read", 9)))

    assert webhook_events_drain() == 3

    first, broken, third = WebhookEvent.objects.order_by("pk")
    assert (first.status, third.status) == ("processed", "processed")
    assert (broken.status, broken.error, broken.attempts) == ("failed", "RuntimeError: a bug", 1)
    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.status, good.delivered_at, good.read_at) == ("read", at(5), at(9))
    assert (bad.status, bad.delivered_at) == ("sent", None)
    assert StatusUpdate.objects.filter(message_key=bad.wamid).count() == 0


def test_a_backlog_brings_in_a_second_drain_and_every_event_is_applied(post, world, monkeypatch):
    monkeypatch.setattr(webhook_tasks, "DRAIN_BATCH", 2)
    queued = []
    monkeypatch.setattr(
        webhook_tasks.drain_webhook_events, "apply_async", lambda *a, **kw: queued.append(kw)
    )
    recipient = world.recipient("+919800000001")
    for second, state in enumerate(["sent", "delivered", "read", "read", "delivered"]):
        post(statuses_payload(status(recipient.wamid, state, second)))

    webhook_tasks.drain_webhook_events.apply()

    assert queued == [{"countdown": None, "retry": False}]
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    recipient.refresh_from_db()
    assert (recipient.status, recipient.delivered_at, recipient.read_at) == ("read", at(1), at(2))
