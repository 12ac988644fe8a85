"""Webhooks the simulator sends: signatures, shapes, batching, duplicates, shuffling."""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import time

import pytest

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_WABA_ID
from graph_simulator.state import bsuid_for
from graph_simulator.webhooks import sign

PNID = DEMO_PHONE_NUMBER_IDS[0]
USER_ID = bsuid_for(f"business-of-{DEMO_WABA_ID}", "919812345678")
APP_SECRET = "app-secret-for-tests"
BODY = [{"type": "text", "text": "Asha"}, {"type": "text", "text": "FALL25"}]


def send(client, to="919812345678", callback_data=None, name="seasonal_promo"):
    return client.send_template(
        phone_number_id=PNID,
        to=to,
        name=name,
        language="en_US",
        components=[{"type": "body", "parameters": BODY}],
        callback_data=callback_data,
    )


@pytest.fixture
def hooks(sim, receiver):
    """Webhooks on, to the test's receiver, one POST at a time so arrival order is fixed."""
    sim.set_faults(callback_url=receiver.url, app_secret=APP_SECRET, webhook_concurrency=1)
    return receiver


def payloads(receiver):
    return [json.loads(post.body) for post in receiver.posts]


def statuses(receiver):
    return [
        status
        for payload in payloads(receiver)
        for entry in payload["entry"]
        for change in entry["changes"]
        for status in change["value"].get("statuses", [])
    ]


def verifies(post, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), post.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(post.headers["X-Hub-Signature-256"], expected)


def test_each_accepted_message_gets_signed_sent_delivered_read(client, sim, hooks):
    result = send(client, callback_data="msg-1")
    assert sim.webhooks(wait=5)["idle"] is True

    assert [p.path for p in hooks.posts] == ["/webhooks/whatsapp"] * 3
    assert all(verifies(post, APP_SECRET) for post in hooks.posts)
    assert not any(verifies(post, "another-secret") for post in hooks.posts)
    assert all(p.headers["Content-Type"] == "application/json" for p in hooks.posts)
    sent = payloads(hooks)[0]
    item = sent["entry"][0]["changes"][0]["value"]["statuses"][0]
    timestamp = item.pop("timestamp")
    conversation_id = item["conversation"].pop("id")
    expiration = item["conversation"].pop("expiration_timestamp")
    assert abs(int(timestamp) - time.time()) < 60
    assert int(expiration) - int(timestamp) in range(24 * 3600 - 60, 24 * 3600 + 60)
    assert len(conversation_id) == 32
    assert sent == {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": DEMO_WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000001",
                                "phone_number_id": PNID,
                            },
                            "statuses": [
                                {
                                    "id": result.wamid,
                                    "status": "sent",
                                    "recipient_id": "919812345678",
                                    "biz_opaque_callback_data": "msg-1",
                                    "recipient_user_id": USER_ID,
                                    "conversation": {"origin": {"type": "marketing"}},
                                    "pricing": {
                                        "billable": True,
                                        "pricing_model": "PMP",
                                        "category": "marketing",
                                    },
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    assert [(s["id"], s["status"]) for s in statuses(hooks)] == [
        (result.wamid, "sent"),
        (result.wamid, "delivered"),
        (result.wamid, "read"),
    ]
    read = statuses(hooks)[2]
    assert set(read) == {
        "id",
        "status",
        "timestamp",
        "recipient_id",
        "biz_opaque_callback_data",
        "recipient_user_id",
    }
    stats = sim.webhooks()
    assert (stats["posts_ok"], stats["events_delivered"], stats["posts_failed"]) == (3, 3, 0)


def test_sign_matches_hmac_sha256_of_the_raw_body():
    body = b'{"object":"whatsapp_business_account"}'
    digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={digest}"


def test_undeliverable_after_accept_gets_a_failed_status(client, sim, hooks):
    sim.set_faults(fail_after_accept=["*0000"])
    result = send(client, to="919800000000", callback_data="msg-9")
    sim.webhooks(wait=5)
    [failed] = statuses(hooks)
    failed.pop("timestamp")
    assert failed == {
        "id": result.wamid,
        "status": "failed",
        "recipient_id": "919800000000",
        "biz_opaque_callback_data": "msg-9",
        "errors": [
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
            }
        ],
    }


def test_text_outside_the_service_window_fails_with_131047(client, sim, hooks):
    result = client.send_text(phone_number_id=PNID, to="919812345678", body="hi")
    sim.webhooks(wait=5)
    [failed] = statuses(hooks)
    assert (failed["id"], failed["status"], failed["errors"][0]["code"]) == (
        result.wamid,
        "failed",
        131047,
    )


def test_batches_with_duplicates_in_due_order(client, sim, hooks):
    sim.set_faults(webhooks_paused=True, webhook_batch=10, webhook_duplicates=1.0)
    wamids = [send(client, to=f"91980000000{i}").wamid for i in range(3)]
    assert sim.webhooks()["pending"] == 18
    assert hooks.posts == []
    sim.set_faults(webhooks_paused=False)
    sim.webhooks(wait=5)

    assert [len(p["entry"][0]["changes"][0]["value"]["statuses"]) for p in payloads(hooks)] == [
        10,
        8,
    ]
    expected = [
        (wamid, status)
        for wamid in wamids
        for status in ("sent", "sent", "delivered", "delivered", "read", "read")
    ]
    assert [(s["id"], s["status"]) for s in statuses(hooks)] == expected


def test_shuffle_reorders_but_loses_nothing(client, sim, hooks):
    sim.set_faults(webhooks_paused=True, webhook_batch=10, webhook_shuffle=True)
    wamids = [send(client, to=f"91980000000{i}").wamid for i in range(6)]
    sim.set_faults(webhooks_paused=False)
    sim.webhooks(wait=5)

    got = [(s["id"], s["status"]) for s in statuses(hooks)]
    in_order = [(w, s) for w in wamids for s in ("sent", "delivered", "read")]
    assert sorted(got) == sorted(in_order)
    assert got != in_order
    assert [len(p["entry"][0]["changes"][0]["value"]["statuses"]) for p in payloads(hooks)] == [
        10,
        8,
    ]


def test_one_post_groups_statuses_by_phone_number(client, sim, hooks):
    sim.set_faults(webhooks_paused=True, webhook_batch=10, read_rate=0.0)
    send(client)
    client.send_template(
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        to="919812345678",
        name="hello_world",
        language="en_US",
    )
    sim.set_faults(webhooks_paused=False)
    sim.webhooks(wait=5)
    [payload] = payloads(hooks)
    [entry] = payload["entry"]
    assert [
        (c["value"]["metadata"]["phone_number_id"], [s["status"] for s in c["value"]["statuses"]])
        for c in entry["changes"]
    ] == [(PNID, ["sent", "delivered"]), (DEMO_PHONE_NUMBER_IDS[1], ["sent", "delivered"])]
    utility = entry["changes"][1]["value"]["statuses"][0]
    assert utility["pricing"]["category"] == "utility"


def test_failed_deliveries_are_retried_with_the_same_signed_body(client, sim, hooks):
    hooks.statuses.extend([500, 503])
    sim.set_faults(read_rate=0.0, webhook_batch=2, webhooks_paused=True)
    send(client)
    sim.set_faults(webhooks_paused=False)
    stats = sim.webhooks(wait=5)
    assert (stats["posts_ok"], stats["attempts_failed"], stats["posts_failed"]) == (1, 2, 0)
    assert stats["last_error"] == "HTTP 503"
    assert len(hooks.posts) == 3
    assert len({p.body for p in hooks.posts}) == 1
    assert all(verifies(post, APP_SECRET) for post in hooks.posts)


def test_delay_spaces_the_status_steps(client, sim, hooks):
    sim.set_faults(webhook_delay_ms=150, read_rate=0.0)
    started = time.monotonic()
    send(client)
    assert sim.webhooks()["pending"] == 2
    sim.webhooks(wait=5)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.0
    assert [s["status"] for s in statuses(hooks)] == ["sent", "delivered"]


def test_reset_drops_queued_webhooks(client, sim, hooks):
    sim.set_faults(webhooks_paused=True)
    send(client)
    assert sim.webhooks()["pending"] == 3
    sim.reset()
    assert sim.webhooks()["pending"] == 0
    assert hooks.posts == []


def test_no_callback_url_means_no_webhooks(client, sim):
    send(client)
    assert sim.webhooks() == {
        "posts_ok": 0,
        "posts_failed": 0,
        "attempts_failed": 0,
        "events_delivered": 0,
        "last_error": None,
        "pending": 0,
        "in_flight": 0,
        "idle": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"text": "Yes please", "context_id": "wamid.OUT1"},
            {
                "type": "text",
                "text": {"body": "Yes please"},
                "context": {"from": "15550000001", "id": "wamid.OUT1"},
            },
        ),
        ({"type": "stop"}, {"type": "text", "text": {"body": "STOP"}}),
        (
            {"type": "button", "text": "Stop promotions", "payload": "STOP_PROMO"},
            {"type": "button", "button": {"payload": "STOP_PROMO", "text": "Stop promotions"}},
        ),
        (
            {"type": "interactive", "text": "Yes", "payload": "yes-1"},
            {
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": "yes-1", "title": "Yes"},
                },
            },
        ),
    ],
)
def test_inbound_messages_on_request(sim, hooks, kwargs, message):
    answer = sim.inbound("919812345678", phone_number_id=PNID, name="Asha", **kwargs)
    assert (answer["delivered"], answer["status"], answer["error"]) == (True, 200, None)
    [post] = hooks.posts
    assert verifies(post, APP_SECRET)
    payload = json.loads(post.body)
    value = payload["entry"][0]["changes"][0]["value"]
    [got] = value["messages"]
    assert got.pop("timestamp").isdigit()
    assert got == {
        "from": "919812345678",
        "from_user_id": USER_ID,
        "id": answer["message_id"],
        **message,
    }
    assert value["contacts"] == [
        {"profile": {"name": "Asha"}, "wa_id": "919812345678", "user_id": USER_ID}
    ]
    assert value["metadata"]["phone_number_id"] == PNID
    assert payload["entry"][0]["id"] == DEMO_WABA_ID


def test_inbound_opens_the_window_even_without_a_callback_url(client, sim):
    answer = sim.inbound("919812345678", phone_number_id=PNID)
    assert (answer["delivered"], answer["error"]) == (False, "no callback_url configured")
    client.send_text(phone_number_id=PNID, to="919812345678", body="hello")
    assert sim.messages()[0]["fail_code"] is None


def test_reply_rate_sends_a_reply_quoting_the_message(client, sim, hooks):
    sim.set_faults(reply_rate=1.0, reply_text="Tell me more", read_rate=0.0)
    result = send(client)
    sim.webhooks(wait=5)
    messages = [
        m
        for p in payloads(hooks)
        for c in p["entry"][0]["changes"]
        for m in c["value"].get("messages", [])
    ]
    assert [(m["text"]["body"], m["context"]["id"]) for m in messages] == [
        ("Tell me more", result.wamid)
    ]


def test_template_status_change_sends_a_template_webhook(sim, hooks):
    sim.upsert_templates(
        {"name": "seasonal_promo", "language": "en_US", "status": "PAUSED", "reason": "LOW_QUALITY"}
    )
    sim.webhooks(wait=5)
    [payload] = payloads(hooks)
    assert payload == {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": DEMO_WABA_ID,
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "PAUSED",
                            "message_template_id": "300000000000001",
                            "message_template_name": "seasonal_promo",
                            "message_template_language": "en_US",
                            "reason": "LOW_QUALITY",
                        },
                    }
                ],
            }
        ],
    }


def test_duplicates_rate_roughly_holds(client, sim, hooks):
    sim.set_faults(webhooks_paused=True, webhook_batch=100, webhook_duplicates=0.5, read_rate=0)
    for i in range(50):
        send(client, to=f"9198000001{i:02d}")
    sim.set_faults(webhooks_paused=False)
    sim.webhooks(wait=5)
    per_event = collections.Counter((s["id"], s["status"]) for s in statuses(hooks))
    assert len(per_event) == 100
    assert set(per_event.values()) == {1, 2}
    assert 25 <= sum(per_event.values()) - 100 <= 75
