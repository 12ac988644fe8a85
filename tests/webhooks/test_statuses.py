"""Status webhooks: matching, forward-only states, times, failures, the funnel, pending."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign, RecipientStatus, Suppression
from messaging.callbacks import callback_data_for
from tests.webhooks.conftest import (
    OTHER_PNID,
    at,
    funnel,
    messages_change,
    payload,
    status,
    statuses_payload,
)
from webhooks.models import PendingStatus, StatusOutcome, StatusUpdate
from webhooks.statuses import pending_statuses_apply

UNDELIVERABLE = [
    {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."},
    }
]


def counters(campaign: Campaign) -> dict[str, int]:
    return funnel(campaign)


def times(recipient) -> tuple:
    recipient.refresh_from_db()
    return (recipient.status, recipient.sent_at, recipient.delivered_at, recipient.read_at)


def test_sent_delivered_read_move_the_message_and_keep_pricing_and_conversation(deliver, world):
    recipient = world.recipient("+919800000001", sent_at=at(1))
    wamid = recipient.wamid
    event = deliver(statuses_payload(status(wamid, "sent", 0)))
    assert event.outcome == {"statuses": 1, "applied": 1}
    deliver(statuses_payload(status(wamid, "delivered", 3)))
    deliver(statuses_payload(status(wamid, "read", 8)))

    # Meta's "sent" time is earlier than our clock's: the earlier one is kept.
    assert times(recipient) == ("read", at(0), at(3), at(8))
    assert recipient.wamid == wamid
    assert counters(world.campaign) == {
        "total": 1,
        "sent": 1,
        "delivered": 1,
        "read": 1,
        "failed": 0,
        "replied": 0,
    }
    rows = StatusUpdate.objects.order_by("at")
    assert [(u.status, u.outcome, u.recipient_id) for u in rows] == [
        ("sent", "applied", recipient.pk),
        ("delivered", "applied", recipient.pk),
        ("read", "applied", recipient.pk),
    ]
    sent = rows[0]
    assert sent.pricing == {"billable": True, "pricing_model": "PMP", "category": "marketing"}
    assert sent.conversation == {
        "id": "c0ffee",
        "origin": {"type": "marketing"},
        "expiration_timestamp": str(1735689600 + 86400),
    }
    assert (sent.wa_id, sent.phone_number_id, sent.at) == ("919800000001", "200000000000001", at(0))


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "read"])))
def test_every_order_of_sent_delivered_read_ends_read_with_every_time_right(deliver, world, order):
    recipient = world.recipient("+919800000001", sent_at=at(1))
    seconds = {"sent": 0, "delivered": 3, "read": 8}
    for state in order:
        deliver(statuses_payload(status(recipient.wamid, state, seconds[state])))
    assert times(recipient) == ("read", at(0), at(3), at(8))
    assert [counters(world.campaign)[n] for n in ("sent", "delivered", "read")] == [1, 1, 1]


def test_read_without_delivered_sets_delivered_at_to_the_read_time(deliver, world):
    recipient = world.recipient("+919800000001", sent_at=at(1))
    deliver(statuses_payload(status(recipient.wamid, "read", 8)))
    assert times(recipient) == ("read", at(1), at(8), at(8))


def test_a_late_delivered_after_read_changes_no_state_and_no_counter(deliver, world):
    recipient = world.recipient("+919800000001", sent_at=at(1))
    deliver(statuses_payload(status(recipient.wamid, "read", 8)))
    before = counters(world.campaign)
    event = deliver(statuses_payload(status(recipient.wamid, "delivered", 3)))
    assert counters(world.campaign) == before
    # Only the implied delivery time gives way to the real one.
    assert times(recipient) == ("read", at(1), at(3), at(8))
    assert event.outcome == {"statuses": 1, "applied": 1}


def test_failed_keeps_metas_code_title_and_details_and_counts_failed(deliver, world):
    recipient = world.recipient("+919800000001")
    deliver(statuses_payload(status(recipient.wamid, "failed", 4, errors=UNDELIVERABLE)))
    recipient.refresh_from_db()
    assert (
        recipient.status,
        recipient.failed_at,
        recipient.error_code,
        recipient.error_title,
        recipient.error_details,
    ) == ("failed", at(4), 131026, "Message undeliverable", "Message Undeliverable.")
    assert counters(world.campaign) == {
        "total": 1,
        "sent": 0,
        "delivered": 0,
        "read": 0,
        "failed": 1,
        "replied": 0,
    }
    [update] = StatusUpdate.objects.all()
    assert update.errors == UNDELIVERABLE


def test_failed_is_terminal_and_cannot_follow_delivered(deliver, world):
    failed = world.recipient("+919800000001")
    delivered = world.recipient("+919800000002")
    deliver(statuses_payload(status(failed.wamid, "failed", 4, errors=UNDELIVERABLE)))
    deliver(statuses_payload(status(delivered.wamid, "delivered", 4)))
    event = deliver(
        statuses_payload(
            status(failed.wamid, "delivered", 6, wa_id="919800000001"),
            status(delivered.wamid, "failed", 6, wa_id="919800000002", errors=UNDELIVERABLE),
        )
    )
    assert event.outcome == {"statuses": 2, "unchanged": 2}
    assert times(failed) == ("failed", at(0), None, None)
    assert times(delivered) == ("delivered", at(0), at(4), None)


def test_131050_adds_a_webhook_suppression_and_cancels_that_phones_unsent_messages(deliver, world):
    recipient = world.recipient("+919800000001")
    later = world.new_campaign("Winter sale")
    waiting = world.recipient("+919800000001", status=RecipientStatus.PENDING, campaign=later)
    stop = [
        {
            "code": 131050,
            "title": "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
            "message": "x",
        }
    ]
    event = deliver(statuses_payload(status(recipient.wamid, "failed", 4, errors=stop)))

    [suppression] = Suppression.objects.all()
    assert (suppression.workspace_id, suppression.phone, suppression.source) == (
        world.workspace.pk,
        "+919800000001",
        "131050",
    )
    assert suppression.reason.startswith("Meta error 131050: Unable to deliver the message.")
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"
    assert event.outcome["suppressions_added"] == 1


def test_several_entries_and_statuses_in_one_post_never_write_the_campaign_row(post, world):
    from tests.webhooks.conftest import process_received

    first = [world.recipient(f"+91980000000{i}") for i in range(1, 4)]
    second = world.recipient("+919800000009", number=world.other_number)
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "100000000000001",
                "changes": [
                    messages_change(
                        statuses=[
                            status(first[0].wamid, "delivered", 2),
                            status(first[0].wamid, "read", 5),
                            status(first[1].wamid, "read", 6, wa_id="919800000002"),
                        ]
                    )
                ],
            },
            {
                "id": "100000000000001",
                "changes": [
                    messages_change(
                        statuses=[
                            status(
                                first[2].wamid,
                                "failed",
                                3,
                                wa_id="919800000003",
                                errors=UNDELIVERABLE,
                            )
                        ]
                    ),
                    messages_change(
                        pnid=OTHER_PNID,
                        statuses=[status(second.wamid, "delivered", 4, wa_id="919800000009")],
                    ),
                ],
            },
        ],
    }
    assert post(body).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        [event] = process_received()
    assert event.outcome == {"statuses": 5, "applied": 5}
    # Counts are read from the rows: the campaign row is no hot spot for receipts.
    assert [
        q["sql"] for q in queries if '"campaigns_campaign"' in q["sql"].split(" WHERE")[0]
    ] == []
    assert counters(world.campaign) == {
        "total": 4,
        "sent": 3,
        "delivered": 3,
        "read": 2,
        "failed": 1,
        "replied": 0,
    }
    assert [times(r)[0] for r in [*first, second]] == ["read", "read", "failed", "delivered"]


def test_duplicate_deliveries_change_nothing_the_second_time(deliver, world):
    recipient = world.recipient("+919800000001")
    other = world.recipient("+919800000002")
    items = [
        status(recipient.wamid, "delivered", 2),
        status(other.wamid, "read", 3, wa_id="919800000002"),
    ]
    deliver(statuses_payload(*items))
    before = (
        counters(world.campaign),
        times(recipient),
        times(other),
        StatusUpdate.objects.count(),
    )
    # Meta regroups retried statuses: same statuses, other POST, a duplicate inside it too.
    event = deliver(statuses_payload(items[1], items[0], items[0]))
    assert event.outcome == {"statuses": 2, "duplicates": 2}
    assert (
        counters(world.campaign),
        times(recipient),
        times(other),
        StatusUpdate.objects.count(),
    ) == before


def test_callback_data_resolves_an_unknown_send_and_records_its_wamid(deliver, world):
    recipient = world.recipient("+919800000001", status=RecipientStatus.UNKNOWN, wamid=None)
    callback = callback_data_for(recipient.pk)
    deliver(statuses_payload(status("wamid.found-late", "delivered", 3, callback=callback)))
    recipient.refresh_from_db()
    assert (recipient.status, recipient.wamid, recipient.sent_at, recipient.delivered_at) == (
        "delivered",
        "wamid.found-late",
        at(3),
        at(3),
    )
    assert counters(world.campaign) == {
        "total": 1,
        "sent": 1,
        "delivered": 1,
        "read": 0,
        "failed": 0,
        "replied": 0,
    }
    # The next status finds it by wamid.
    deliver(statuses_payload(status("wamid.found-late", "read", 9)))
    assert times(recipient) == ("read", at(3), at(3), at(9))


def test_an_unknown_send_can_resolve_as_failed(deliver, world):
    recipient = world.recipient("+919800000001", status=RecipientStatus.UNKNOWN, wamid=None)
    deliver(
        statuses_payload(
            status(
                "wamid.f",
                "failed",
                3,
                callback=callback_data_for(recipient.pk),
                errors=UNDELIVERABLE,
            )
        )
    )
    recipient.refresh_from_db()
    assert (recipient.status, recipient.wamid, recipient.error_code) == (
        "failed",
        "wamid.f",
        131026,
    )


def test_a_callback_id_from_another_number_or_message_is_not_trusted(deliver, world):
    recipient = world.recipient("+919800000001", status=RecipientStatus.UNKNOWN, wamid=None)
    sent = world.recipient("+919800000002")
    event = deliver(
        statuses_payload(
            status("wamid.a", "delivered", 3, callback=callback_data_for(recipient.pk)),
            pnid=OTHER_PNID,
        )
    )
    event2 = deliver(
        statuses_payload(status("wamid.b", "delivered", 3, callback=callback_data_for(sent.pk)))
    )
    assert (event.outcome, event2.outcome) == (
        {"statuses": 1, "ignored": 1},
        {"statuses": 1, "ignored": 1},
    )
    assert times(recipient) == ("unknown", None, None, None)
    assert times(sent) == ("sent", at(0), None, None)
    assert sorted(StatusUpdate.objects.values_list("note", flat=True)) == [
        "callback id names a message of another number",
        f"callback id names a message sent as {sent.wamid}",
    ]


def test_a_status_before_the_sends_answer_waits_and_applies_when_the_engine_records_it(
    deliver, world
):
    recipient = world.recipient("+919800000001", status=RecipientStatus.SENDING, wamid=None)
    callback = callback_data_for(recipient.pk)
    event = deliver(statuses_payload(status("wamid.race", "delivered", 3, callback=callback)))
    assert event.outcome == {"statuses": 1, "pending": 1}
    [pending] = PendingStatus.objects.all()
    assert (pending.wamid, pending.callback_recipient_id) == ("wamid.race", recipient.pk)
    assert times(recipient) == ("sending", None, None, None)
    assert pending_statuses_apply() == 0  # still the engine's

    # The engine records the send's answer (as lanes.record_outcomes does).
    recipient.status, recipient.wamid, recipient.sent_at = "sent", "wamid.race", at(1)
    recipient.save(update_fields=["status", "wamid", "sent_at"])

    assert pending_statuses_apply() == 1
    assert times(recipient) == ("delivered", at(1), at(3), None)
    assert PendingStatus.objects.count() == 0
    assert StatusUpdate.objects.get().outcome == StatusOutcome.APPLIED


def test_a_status_for_an_unseen_wamid_is_applied_when_the_next_status_finds_its_message(
    deliver, world
):
    early = deliver(statuses_payload(status("wamid.later", "delivered", 3)))
    assert early.outcome == {"statuses": 1, "pending": 1}
    recipient = world.recipient("+919800000001", wamid="wamid.later", sent_at=at(1))
    event = deliver(statuses_payload(status("wamid.later", "read", 9)))
    assert event.outcome == {"statuses": 1, "applied": 2, "pending_applied": 1}
    assert times(recipient) == ("read", at(1), at(3), at(9))
    assert PendingStatus.objects.count() == 0


def test_a_pending_status_nobody_claims_expires_after_a_day(deliver, world):
    deliver(statuses_payload(status("wamid.elsewhere", "sent", 3)))
    PendingStatus.objects.update(created_at=at(0) - timedelta(days=2))
    assert pending_statuses_apply() == 0
    assert PendingStatus.objects.count() == 0
    assert StatusUpdate.objects.get().outcome == StatusOutcome.EXPIRED


def test_cancelled_messages_and_untracked_statuses_are_ignored(deliver, world):
    cancelled = world.recipient("+919800000001", status=RecipientStatus.CANCELLED, wamid="wamid.c")
    sent = world.recipient("+919800000002")
    event = deliver(
        statuses_payload(status("wamid.c", "read", 3), status(sent.wamid, "deleted", 3))
    )
    assert event.outcome == {"statuses": 2, "ignored": 2}
    assert times(cancelled)[0] == "cancelled"
    assert times(sent)[0] == "sent"


def test_statuses_with_bad_items_apply_the_good_ones_and_flag_the_event(deliver, world):
    recipient = world.recipient("+919800000001")
    body = statuses_payload(
        status(recipient.wamid, "delivered", 3),
        {"status": "read"},
        "nonsense",
        {"id": "wamid.q", "status": "sent", "timestamp": "soon"},
    )
    event = deliver(body)
    assert event.status == "flagged"
    assert event.error == (
        "a status without a status or a message id; a status is not an object; "
        "status sent of wamid.q: bad timestamp, used the receive time"
    )
    assert times(recipient)[0] == "delivered"
    assert StatusUpdate.objects.get(message_key="wamid.q").at == event.received_at


def test_payload_helper_shapes_match_metas(world):
    assert payload(messages_change(statuses=[]))["entry"][0]["changes"][0]["field"] == "messages"
