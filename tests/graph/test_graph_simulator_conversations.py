"""The simulator's conversation surface: the 24 h window, media upload and sends by id,
mark-as-read and typing, every inbound kind Meta sends, and statuses for replies."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from graph_simulator.state import bsuid_for

PNID = DEMO_PHONE_NUMBER_IDS[0]
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}
USER = "919812345678"
USER_ID = bsuid_for(f"business-of-{DEMO_WABA_ID}", USER)
APP_SECRET = "app-secret-for-tests"
JPEG = b"\xff\xd8\xff\xe0" + b"sim-jpeg" * 10


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture
def hooks(sim, receiver):
    sim.set_faults(callback_url=receiver.url, app_secret=APP_SECRET, webhook_concurrency=1)
    return receiver


def post(http, sim, body, pnid=PNID):
    return http.post(f"{sim.base_url}/v23.0/{pnid}/messages", json=body, headers=AUTH, timeout=5)


def text_body(text="hello", to=USER):
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": text}}


def upload(http, sim, data=JPEG, mime="image/jpeg", filename="photo.jpg", product="whatsapp"):
    return http.post(
        f"{sim.base_url}/v23.0/{PNID}/media",
        data={"messaging_product": product, "type": mime},
        files={"file": (filename, data, mime)},
        headers=AUTH,
        timeout=5,
    )


def statuses(receiver):
    return [
        status
        for post_ in receiver.posts
        for entry in json.loads(post_.body)["entry"]
        for change in entry["changes"]
        for status in change["value"].get("statuses", [])
    ]


def inbound_messages(receiver):
    return [
        (change["value"]["contacts"], message)
        for post_ in receiver.posts
        for entry in json.loads(post_.body)["entry"]
        for change in entry["changes"]
        for message in change["value"].get("messages", [])
    ]


# -- the customer-service window ----------------------------------------------------------


def test_free_form_outside_the_window_is_accepted_then_failed_131047_by_webhook(http, sim, hooks):
    response = post(http, sim, text_body())
    assert response.status_code == 200
    wamid = response.json()["messages"][0]["id"]
    sim.webhooks(wait=5)
    [failed] = statuses(hooks)
    assert (failed["id"], failed["status"], failed["errors"][0]["code"]) == (
        wamid,
        "failed",
        131047,
    )
    assert sim.counts()["failed"] == {"131047": 1}


def test_free_form_outside_the_window_is_refused_131047_in_response_mode(http, sim):
    sim.set_faults(error_modes={"131047": "response"})
    for body in (
        text_body(),
        {
            "messaging_product": "whatsapp",
            "to": USER,
            "type": "image",
            "image": {"link": "https://x/i.jpg"},
        },
    ):
        response = post(http, sim, body)
        assert (response.status_code, response.json()["error"]["code"]) == (400, 131047)
    assert sim.messages() == []
    assert sim.counts()["rejected"] == {"131047": 2}


def test_an_inbound_opens_the_window_for_that_user_and_number_only(http, sim, hooks):
    sim.set_faults(error_modes={"131047": "response"}, pair_rate_seconds=0)
    sim.inbound(USER, phone_number_id=PNID, text="hi")
    assert post(http, sim, text_body()).status_code == 200
    assert post(http, sim, text_body(to="919800000001")).status_code == 400
    assert post(http, sim, text_body(), pnid=DEMO_PHONE_NUMBER_IDS[1]).status_code == 400


def test_the_window_closes_24_hours_after_the_last_inbound(http, sim):
    sim.set_faults(error_modes={"131047": "response"}, pair_rate_seconds=0)
    sim.inbound(USER, phone_number_id=PNID)
    sim.set_faults(clock_offset_s=24 * 3600 - 60)
    assert post(http, sim, text_body()).status_code == 200
    sim.set_faults(clock_offset_s=24 * 3600 + 60)
    assert post(http, sim, text_body()).json()["error"]["code"] == 131047


def test_replies_in_the_window_get_sent_delivered_read_as_service(http, sim, hooks):
    sim.inbound(USER, phone_number_id=PNID)
    hooks.posts.clear()
    response = post(http, sim, {**text_body("thanks"), "context": {"message_id": "wamid.IN.1"}})
    wamid = response.json()["messages"][0]["id"]
    assert response.json()["contacts"] == [{"input": USER, "wa_id": USER, "user_id": USER_ID}]
    sim.webhooks(wait=5)
    got = statuses(hooks)
    assert [(s["id"], s["status"]) for s in got] == [
        (wamid, "sent"),
        (wamid, "delivered"),
        (wamid, "read"),
    ]
    assert got[0]["pricing"] == {"billable": False, "pricing_model": "PMP", "category": "service"}
    assert got[0]["conversation"]["origin"] == {"type": "service"}


# -- media ----------------------------------------------------------------------------------


def test_upload_returns_an_id_that_get_and_download_serve(http, sim):
    response = upload(http, sim)
    assert response.status_code == 200
    media_id = response.json()["id"]
    info = http.get(f"{sim.base_url}/v23.0/{media_id}", headers=AUTH, timeout=5).json()
    assert info == {
        "messaging_product": "whatsapp",
        "url": f"{sim.base_url}/_sim/media/{media_id}",
        "mime_type": "image/jpeg",
        "sha256": __import__("hashlib").sha256(JPEG).hexdigest(),
        "file_size": len(JPEG),
        "id": media_id,
    }
    assert http.get(info["url"], timeout=5).status_code == 401  # the token is required
    download = http.get(info["url"], headers=AUTH, timeout=5)
    assert (download.status_code, download.content) == (200, JPEG)
    assert http.delete(f"{sim.base_url}/v23.0/{media_id}", headers=AUTH, timeout=5).json() == {
        "success": True
    }
    assert http.get(f"{sim.base_url}/v23.0/{media_id}", headers=AUTH, timeout=5).status_code == 400


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({"product": "sms"}, 100, id="no-messaging-product"),
        pytest.param({"mime": "application/x-msdownload", "filename": "a.exe"}, 100, id="type"),
        pytest.param({"data": b"x" * (5 * 1024 * 1024 + 1)}, 131053, id="image-over-5mb"),
        pytest.param({"data": b""}, 131053, id="empty"),
    ],
)
def test_bad_uploads_are_refused_with_meta_codes(http, sim, kwargs, code):
    response = upload(http, sim, **kwargs)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert http.get(f"{sim.base_url}/_sim/counts", timeout=5).json()["total"] == 0


def test_media_sends_by_uploaded_id_are_delivered_unknown_ids_fail_131053(http, sim, hooks):
    sim.set_faults(pair_rate_seconds=0)
    sim.inbound(USER, phone_number_id=PNID)
    media_id = upload(http, sim).json()["id"]
    hooks.posts.clear()
    good = post(
        http,
        sim,
        {
            "messaging_product": "whatsapp",
            "to": USER,
            "type": "image",
            "image": {"id": media_id, "caption": "Your photo"},
        },
    ).json()["messages"][0]["id"]
    bad = post(
        http,
        sim,
        {
            "messaging_product": "whatsapp",
            "to": USER,
            "type": "document",
            "document": {"id": "999", "filename": "menu.pdf"},
        },
    ).json()["messages"][0]["id"]
    sim.webhooks(wait=5)
    assert {(s["id"], s["status"]) for s in statuses(hooks)} == {
        (good, "sent"),
        (good, "delivered"),
        (good, "read"),
        (bad, "failed"),
    }
    [failed] = [s for s in statuses(hooks) if s["status"] == "failed"]
    assert failed["errors"][0]["code"] == 131053
    [sent] = sim.messages(wamid=good)
    assert sent["payload"]["image"] == {"id": media_id, "caption": "Your photo"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"type": "image", "image": {}}, 131009, id="neither-id-nor-link"),
        pytest.param(
            {"type": "image", "image": {"id": "1", "link": "https://x"}}, 131009, id="both"
        ),
        pytest.param(
            {"type": "audio", "audio": {"link": "https://x/a.ogg", "caption": "no"}},
            131009,
            id="audio-caption",
        ),
        pytest.param(
            {"type": "image", "image": {"link": "https://x/i", "filename": "i"}},
            131009,
            id="image-filename",
        ),
        pytest.param({"type": "video"}, 131008, id="missing-object"),
        pytest.param(
            {"type": "reaction", "reaction": {"emoji": "x"}}, 131008, id="reaction-no-target"
        ),
        pytest.param({"type": "location", "location": {"latitude": 1}}, 131008, id="location-half"),
        pytest.param({"type": "carrier_pigeon"}, 131009, id="unknown-type"),
    ],
)
def test_malformed_free_form_sends_are_refused(http, sim, body, code):
    response = post(http, sim, {"messaging_product": "whatsapp", "to": USER, **body})
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert sim.messages() == []


# -- mark as read and typing ---------------------------------------------------------------


def test_mark_read_and_typing_indicator_are_recorded(http, sim):
    answer = sim.inbound(USER, phone_number_id=PNID)
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": answer["message_id"]}
    assert post(http, sim, read).json() == {"success": True}
    typing = {**read, "typing_indicator": {"type": "text"}}
    assert post(http, sim, typing).json() == {"success": True}
    bad = post(http, sim, {**read, "typing_indicator": {"type": "voice"}})
    assert bad.json()["error"]["code"] == 131009
    marks = sim.read_marks()
    assert [(m["message_id"], m["typing"]) for m in marks] == [
        (answer["message_id"], False),
        (answer["message_id"], True),
    ]
    assert sim.messages() == []  # a read mark is not a message


# -- inbound of every kind ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {
                "type": "location",
                "latitude": 12.97,
                "longitude": 77.59,
                "text": "Office",
                "address": "MG Road",
            },
            {
                "type": "location",
                "location": {
                    "latitude": 12.97,
                    "longitude": 77.59,
                    "address": "MG Road",
                    "name": "Office",
                },
            },
            id="location",
        ),
        pytest.param(
            {
                "type": "interactive",
                "interactive_type": "list_reply",
                "payload": "row-2",
                "text": "Tuesday",
                "description": "10:00-12:00",
            },
            {
                "type": "interactive",
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "row-2", "title": "Tuesday", "description": "10:00-12:00"},
                },
            },
            id="list-reply",
        ),
        pytest.param(
            {"type": "reaction", "reaction_to": "wamid.OUT.1", "text": "\U0001f44d"},
            {"type": "reaction", "reaction": {"message_id": "wamid.OUT.1", "emoji": "\U0001f44d"}},
            id="reaction",
        ),
        pytest.param(
            {"type": "reaction", "reaction_to": "wamid.OUT.1"},
            {"type": "reaction", "reaction": {"message_id": "wamid.OUT.1", "emoji": ""}},
            id="reaction-removed",
        ),
        pytest.param(
            {
                "type": "contacts",
                "contacts": [
                    {"name": {"formatted_name": "Ravi"}, "phones": [{"phone": "+91 98100 00000"}]}
                ],
            },
            {
                "type": "contacts",
                "contacts": [
                    {"name": {"formatted_name": "Ravi"}, "phones": [{"phone": "+91 98100 00000"}]}
                ],
            },
            id="contacts",
        ),
        pytest.param(
            {"type": "button", "text": "Yes", "payload": "YES", "context_id": "wamid.T"},
            {
                "type": "button",
                "button": {"payload": "YES", "text": "Yes"},
                "context": {"from": "15550000001", "id": "wamid.T"},
            },
            id="template-quick-reply",
        ),
        pytest.param(
            {"type": "unsupported", "unsupported_type": "poll"},
            {
                "type": "unsupported",
                "unsupported": {"type": "poll"},
                "errors": [
                    {
                        "code": 131051,
                        "title": "Message type unknown",
                        "message": "Message type unknown",
                        "error_data": {"details": "Message type is currently not supported."},
                    }
                ],
            },
            id="unsupported",
        ),
    ],
)
def test_inbound_kinds_have_metas_shapes(sim, hooks, kwargs, expected):
    answer = sim.inbound(USER, phone_number_id=PNID, name="Asha", **kwargs)
    [(contacts, message)] = inbound_messages(hooks)
    message.pop("timestamp")
    assert message == {
        "from": USER,
        "id": answer["message_id"],
        "from_user_id": USER_ID,
        **expected,
    }
    assert contacts == [{"profile": {"name": "Asha"}, "wa_id": USER, "user_id": USER_ID}]


@pytest.mark.parametrize(
    ("kind", "kwargs", "mime", "extra"),
    [
        ("image", {"text": "look"}, "image/jpeg", {"caption": "look"}),
        ("video", {}, "video/mp4", {}),
        ("audio", {}, "audio/ogg; codecs=opus", {"voice": True}),
        (
            "document",
            {"filename": "invoice.pdf", "text": "Invoice"},
            "application/pdf",
            {"filename": "invoice.pdf", "caption": "Invoice"},
        ),
        ("sticker", {}, "image/webp", {"animated": False}),
    ],
)
def test_inbound_media_carries_an_id_the_product_can_download(
    http, sim, hooks, kind, kwargs, mime, extra
):
    content = f"{kind} bytes".encode()
    sim.inbound(USER, phone_number_id=PNID, type=kind, content=content, **kwargs)
    [(_, message)] = inbound_messages(hooks)
    media = message[kind]
    assert message["type"] == kind
    assert media == {
        "mime_type": mime,
        "sha256": __import__("hashlib").sha256(content).hexdigest(),
        "id": media["id"],
        **extra,
    }
    info = http.get(f"{sim.base_url}/v23.0/{media['id']}", headers=AUTH, timeout=5).json()
    assert http.get(info["url"], headers=AUTH, timeout=5).content == content


def test_unknown_inbound_kind_is_a_400_naming_the_known_ones(sim):
    with pytest.raises(RuntimeError, match=r"unknown inbound kind 'poll'.*reaction"):
        sim.inbound(USER, phone_number_id=PNID, type="poll")


def test_a_username_user_arrives_with_a_business_scoped_id_only(http, sim, hooks):
    sim.inbound(USER, phone_number_id=PNID, username="asha.k", hide_phone=True)
    [(contacts, message)] = inbound_messages(hooks)
    assert contacts == [{"profile": {"name": "Sim User", "username": "asha.k"}, "user_id": USER_ID}]
    assert "from" not in message and message["from_user_id"] == USER_ID
    # The business can answer it by that id (`recipient` instead of `to`).
    response = post(
        http,
        sim,
        {
            "messaging_product": "whatsapp",
            "recipient": USER_ID,
            "type": "text",
            "text": {"body": "hi"},
        },
    )
    assert response.status_code == 200
    assert sim.messages()[0]["wa_id"] == USER


def test_inbound_content_must_be_base64(http, sim):
    response = http.post(
        f"{sim.base_url}/_sim/inbound",
        json={"from": USER, "type": "image", "content_base64": "%%%"},
        timeout=5,
    )
    assert response.status_code == 400
    assert base64  # the client encodes bytes itself (SimulatorControl.inbound)
