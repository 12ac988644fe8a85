"""The simulator's own behaviour: Meta's validation codes, limits, paging, control API."""

from __future__ import annotations

import copy
import json
import time

import pytest
import requests

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID, demo_seed
from graph_simulator.server import build_state
from graph_simulator.state import bsuid_for
from graph_simulator.testing import SimulatorProcess
from messaging.management.commands.graph_simulator import Command

PNID, PNID_2 = DEMO_PHONE_NUMBER_IDS
# The demo WABA's business-scoped id of the test's usual recipient.
USER_ID = bsuid_for(f"business-of-{DEMO_WABA_ID}", "919812345678")
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}
BODY = [{"type": "text", "text": "Asha"}, {"type": "text", "text": "FALL25"}]
IMAGE = {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x/i.jpg"}}]}
URL_BUTTON = {
    "type": "button",
    "sub_type": "url",
    "index": "0",
    "parameters": [{"type": "text", "text": "track/1"}],
}


def template_body(name="seasonal_promo", components=None, language="en_US", to="919812345678"):
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": language, "policy": "deterministic"},
            "components": [{"type": "body", "parameters": BODY}]
            if components is None
            else components,
        },
    }


@pytest.fixture
def post(sim):
    session = requests.Session()
    session.trust_env = False

    def send(body=None, *, pnid=PNID, headers=AUTH, data=None):
        return session.post(
            f"{sim.base_url}/v23.0/{pnid}/messages",
            json=body if data is None else None,
            data=data,
            headers=headers,
            timeout=5,
        )

    yield send
    session.close()


def error_of(response) -> tuple[int, int, int | None]:
    error = response.json()["error"]
    return response.status_code, error["code"], error.get("error_subcode")


@pytest.mark.parametrize(
    ("body", "kwargs", "expected"),
    [
        pytest.param(template_body(), {"headers": {}}, (401, 190, None), id="no-token"),
        pytest.param(
            template_body(),
            {"headers": {"Authorization": "Bearer nope"}},
            (401, 190, None),
            id="bad-token",
        ),
        pytest.param(template_body(), {"pnid": "299"}, (400, 100, 33), id="unknown-number"),
        pytest.param(None, {"data": b"{not json"}, (400, 100, None), id="not-json"),
        pytest.param(
            {**template_body(), "messaging_product": "sms"},
            {},
            (400, 100, None),
            id="messaging-product",
        ),
        pytest.param(template_body(to="12ab"), {}, (400, 100, None), id="bad-to"),
        pytest.param(template_body(to="1234567"), {}, (400, 100, None), id="short-to"),
        pytest.param(template_body(to="15550000001"), {}, (400, 131021, None), id="to-self"),
        pytest.param(template_body("no_such"), {}, (404, 132001, None), id="unknown-name"),
        pytest.param(template_body(language="fr"), {}, (404, 132001, None), id="wrong-language"),
        pytest.param(template_body("summer_sale"), {}, (404, 132001, None), id="pending"),
        pytest.param(template_body("crypto_giveaway"), {}, (404, 132001, None), id="rejected"),
        pytest.param(template_body("flash_sale"), {}, (400, 132015, None), id="paused"),
        pytest.param(template_body("old_newsletter"), {}, (400, 132016, None), id="disabled"),
        pytest.param(
            template_body(components=[{"type": "body", "parameters": BODY[:1]}]),
            {},
            (400, 132000, None),
            id="too-few-params",
        ),
        pytest.param(
            template_body(components=[]),
            {},
            (400, 132000, None),
            id="no-params",
        ),
        pytest.param(
            template_body(
                components=[
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "parameter_name": "a", "text": "x"},
                            {"type": "text", "parameter_name": "b", "text": "y"},
                        ],
                    }
                ]
            ),
            {},
            (400, 132012, None),
            id="named-to-positional",
        ),
        pytest.param(
            template_body("welcome_named", [{"type": "body", "parameters": BODY}]),
            {},
            (400, 132012, None),
            id="positional-to-named",
        ),
        pytest.param(
            template_body(
                "welcome_named",
                [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "parameter_name": "first_name", "text": "x"},
                            {"type": "text", "parameter_name": "surname", "text": "y"},
                        ],
                    }
                ],
            ),
            {},
            (400, 132000, None),
            id="wrong-names",
        ),
        pytest.param(
            template_body("order_update", [{"type": "body", "parameters": BODY}, URL_BUTTON]),
            {},
            (400, 132012, None),
            id="missing-image-header",
        ),
        pytest.param(
            template_body(
                "order_update",
                [
                    {
                        "type": "header",
                        "parameters": [{"type": "document", "document": {"id": "1"}}],
                    },
                    {"type": "body", "parameters": BODY},
                    URL_BUTTON,
                ],
            ),
            {},
            (400, 132012, None),
            id="wrong-media-type",
        ),
        pytest.param(
            template_body(
                "order_update",
                [
                    {
                        "type": "header",
                        "parameters": [
                            {"type": "image", "image": {"id": "1", "link": "https://x"}}
                        ],
                    },
                    {"type": "body", "parameters": BODY},
                    URL_BUTTON,
                ],
            ),
            {},
            (400, 131009, None),
            id="media-id-and-link",
        ),
        pytest.param(
            template_body("order_update", [IMAGE, {"type": "body", "parameters": BODY}]),
            {},
            (400, 132000, None),
            id="missing-url-suffix",
        ),
        pytest.param(
            template_body("event_reminder", []),
            {},
            (400, 132000, None),
            id="missing-header-text",
        ),
        pytest.param(
            template_body(
                components=[
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "x" * 1000},
                            {"type": "text", "text": "y"},
                        ],
                    }
                ]
            ),
            {},
            (400, 132005, None),
            id="too-long",
        ),
        pytest.param(
            template_body(
                components=[
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": ""}, {"type": "text", "text": "y"}],
                    }
                ]
            ),
            {},
            (400, 131008, None),
            id="empty-text",
        ),
    ],
)
def test_invalid_sends_get_metas_codes_and_nothing_is_accepted(post, sim, body, kwargs, expected):
    response = post(body, **kwargs)
    assert error_of(response) == expected
    assert response.json()["error"]["type"] == "OAuthException"
    assert sim.counts()["total"] == 0


def test_template_error_bodies_match_metas_shape(post):
    response = post(template_body("no_such"))
    error = response.json()["error"]
    fbtrace = error.pop("fbtrace_id")
    assert fbtrace.startswith("A") and len(fbtrace) == 17
    assert error == {
        "message": "(#132001) Template name does not exist in the translation",
        "type": "OAuthException",
        "code": 132001,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "template name (no_such) does not exist in en_US",
        },
    }


@pytest.mark.parametrize(
    ("name", "components"),
    [
        ("seasonal_promo", [{"type": "body", "parameters": BODY}]),
        ("hello_world", []),
        ("order_update", [IMAGE, {"type": "body", "parameters": BODY}, URL_BUTTON]),
        (
            "event_reminder",
            [
                {"type": "header", "parameters": [{"type": "text", "text": "Launch"}]},
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": 0,
                    "parameters": [{"type": "payload", "payload": "no"}],
                },
            ],
        ),
        (
            "welcome_named",
            [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "member_id", "text": "M-1"},
                        {"type": "text", "parameter_name": "first_name", "text": "Asha"},
                    ],
                }
            ],
        ),
        (
            "seasonal_promo",
            [
                {
                    "type": "body",
                    "parameters": [
                        {
                            "type": "currency",
                            "currency": {
                                "fallback_value": "$5",
                                "code": "USD",
                                "amount_1000": 5000,
                            },
                        },
                        {"type": "date_time", "date_time": {"fallback_value": "May 1"}},
                    ],
                }
            ],
        ),
    ],
)
def test_valid_sends_of_every_template_shape_are_accepted(post, sim, name, components):
    response = post(template_body(name, components))
    assert response.status_code == 200
    body = response.json()
    wamid = body["messages"][0]["id"]
    assert body == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "919812345678", "wa_id": "919812345678", "user_id": USER_ID}],
        "messages": [{"id": wamid, "message_status": "accepted"}],
    }
    assert [m["wamid"] for m in sim.messages()] == [wamid]


def test_undeliverable_rules_by_prefix_suffix_and_exact_number(post, sim):
    # The response path (by default 131026 arrives as a failed webhook after a 200).
    sim.set_faults(
        undeliverable=["9199*", "*0000", "+447700900123"], error_modes={"131026": "response"}
    )
    codes = [
        post(template_body(to=to)).status_code
        for to in ("919912345678", "919800000000", "447700900123", "919812345678")
    ]
    assert codes == [400, 400, 400, 200]
    assert sim.counts()["by_recipient"] == {"919812345678": 1}
    assert sim.counts()["rejected"] == {"131026": 3}


def test_throughput_window_per_number_answers_130429_as_400(post, sim):
    sim.set_faults(mps=5)
    statuses = [post(template_body(to=f"9198000000{i:02d}")).status_code for i in range(8)]
    other_number = post(template_body(to="919800000099"), pnid=PNID_2)
    assert statuses == [200] * 5 + [400] * 3
    assert other_number.status_code == 200
    response = post(template_body(to="919800000098"))
    assert error_of(response) == (400, 130429, None)
    assert response.json()["error"]["error_data"]["details"] == (
        "Cloud API message throughput has been reached."
    )
    time.sleep(1.05)  # the sliding one-second window has moved past the first five
    assert post(template_body(to="919800000097")).status_code == 200
    assert sim.counts()["total"] == 7


def test_throughput_can_answer_429(post, sim):
    sim.set_faults(mps=1, throttle_status=429)
    assert post(template_body(to="919800000001")).status_code == 200
    assert error_of(post(template_body(to="919800000002"))) == (429, 130429, None)


def test_numbers_use_their_own_throughput_by_default(post, sim):
    # The demo's second number is a STANDARD (80 msg/s) number.
    statuses = [
        post(template_body(to=f"91980000{i:04d}"), pnid=PNID_2).status_code for i in range(81)
    ]
    assert statuses == [200] * 80 + [400]


def test_pair_rate_limits_one_recipient_not_the_others(post, sim):
    sim.set_faults(pair_rate_seconds=6, pair_burst=2)
    statuses = [post(template_body()).status_code for _ in range(3)]
    assert statuses == [200, 200, 400]
    assert error_of(post(template_body())) == (400, 131056, None)
    assert post(template_body(to="919800000001")).status_code == 200
    assert post(template_body(), pnid=PNID_2).status_code == 200  # the pair is per number


def test_pair_rate_is_on_by_default_one_message_per_6_seconds(post, sim):
    assert sim.faults()["pair_rate_seconds"] == 6.0
    assert [post(template_body()).status_code for _ in range(3)] == [200, 400, 400]
    assert sim.counts()["by_recipient"] == {"919812345678": 1}


def test_pair_rate_can_be_switched_off(post, sim):
    sim.set_faults(pair_rate_seconds=0)
    assert [post(template_body()).status_code for _ in range(5)] == [200] * 5
    assert sim.counts()["by_recipient"] == {"919812345678": 5}


def test_transient_faults_answer_131000_with_the_chosen_5xx(post, sim):
    sim.set_faults(transient_rate=1.0, transient_status=503)
    response = post(template_body())
    assert error_of(response) == (503, 131000, None)
    assert response.json()["error"]["is_transient"] is True
    assert sim.counts()["total"] == 0


def test_injected_error_rules_match_recipient_and_count_down(post, sim):
    sim.set_faults(errors=[{"code": 131048, "to": "*99", "count": 2, "mode": "response"}])
    statuses = [
        post(template_body(to=to)).status_code
        for to in ("919800000099", "919800000001", "919800000098", "919800000199")
    ]
    assert statuses == [400, 200, 200, 400]
    assert sim.faults()["errors"] == [{"code": 131048, "to": "*99", "count": 0, "mode": "response"}]
    assert post(template_body(to="919800000299")).status_code == 200


def test_latency_is_applied(post, sim):
    sim.set_faults(latency_ms="150-200")
    started = time.monotonic()
    post(template_body())
    assert 0.15 <= time.monotonic() - started < 1.0


def test_text_needs_a_message_in_body(post):
    body = {"messaging_product": "whatsapp", "to": "919812345678", "type": "text", "text": {}}
    assert error_of(post(body)) == (400, 131008, None)


# -- Graph reads -------------------------------------------------------------------------


def test_template_paging_has_cursors_next_and_previous(sim):
    url = f"{sim.base_url}/v23.0/{DEMO_WABA_ID}/message_templates?limit=4&fields=name"
    pages = []
    while url:
        page = requests.get(url, headers=AUTH, timeout=5).json()
        pages.append(page)
        url = page["paging"].get("next")
    assert [len(p["data"]) for p in pages] == [4, 4, 2]
    assert "previous" not in pages[0]["paging"]
    assert "previous" in pages[1]["paging"]
    assert pages[0]["data"][0] == {"id": "300000000000001", "name": "seasonal_promo"}
    assert pages[1]["paging"]["next"].startswith(sim.base_url + "/v23.0/")
    back = requests.get(pages[1]["paging"]["previous"], headers=AUTH, timeout=5).json()
    assert back["data"] == pages[0]["data"]


def test_template_filters(sim):
    response = requests.get(
        f"{sim.base_url}/v99.9/{DEMO_WABA_ID}/message_templates",
        params={"status": "PAUSED,DISABLED", "fields": "name,status"},
        headers=AUTH,
        timeout=5,
    )
    assert response.json()["data"] == [
        {"id": "300000000000009", "name": "flash_sale", "status": "PAUSED"},
        {"id": "300000000000010", "name": "old_newsletter", "status": "DISABLED"},
    ]


def test_phone_number_fields_are_selectable(sim):
    response = requests.get(
        f"{sim.base_url}/v23.0/{PNID}",
        params={"fields": "quality_rating,throughput{level}"},
        headers=AUTH,
        timeout=5,
    )
    assert response.json() == {
        "id": PNID,
        "quality_rating": "GREEN",
        "throughput": {"level": "HIGH"},
    }


def test_a_token_scoped_to_another_waba_sees_nothing(sim):
    sim.token("other", wabas=["999"])
    response = requests.get(
        f"{sim.base_url}/v23.0/{PNID}", headers={"Authorization": "Bearer other"}, timeout=5
    )
    assert error_of(response) == (400, 100, 33)


# -- control API -------------------------------------------------------------------------


def test_messages_filters_and_counts(post, sim):
    sim.set_faults(pair_rate_seconds=0)  # two sends to one recipient in a row
    for to, cb in (("919800000001", "a"), ("919800000002", "b"), ("919800000001", "a")):
        post({**template_body(to=to), "biz_opaque_callback_data": cb})
    assert [m["to"] for m in sim.messages(to="919800000001")] == ["919800000001"] * 2
    assert [m["callback_data"] for m in sim.messages(since_seq=sim.messages()[0]["seq"])] == [
        "b",
        "a",
    ]
    assert len(sim.messages(limit=1)) == 1
    first = sim.messages()[0]
    assert first["accepted_at"] > 0 and abs(first["accepted_at_wall"] - time.time()) < 60
    counts = sim.counts()
    assert counts == {
        "total": 3,
        "by_recipient": {"919800000001": 2, "919800000002": 1},
        "by_phone_number": {PNID: 3},
        "duplicate_callback_data": {"a": 2},
        "rejected": {},
        "failed": {},
        "blocked": 0,
        "tiers": {
            f"business-of-{DEMO_WABA_ID}": {"tier": "TIER_100K", "limit": 100000, "reached": 2}
        },
    }
    assert sim.counts(duplicates_only=True)["by_recipient"] == {"919800000001": 2}


def test_faults_are_validated_and_unknown_settings_refused(sim):
    with pytest.raises(RuntimeError, match="unknown setting"):
        sim.set_faults(nonsense=1)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        sim.set_faults(transient_rate=2)
    with pytest.raises(RuntimeError, match="400 or 429"):
        sim.set_faults(throttle_status=418)
    assert sim.faults()["transient_rate"] == 0.0
    assert sim.set_faults(latency_ms="5-10")["latency_ms"] == [5.0, 10.0]


def test_reset_restores_templates_tokens_and_faults(post, sim):
    sim.upsert_templates({"name": "seasonal_promo", "language": "en_US", "status": "PAUSED"})
    sim.token(DEMO_TOKEN, "expire")
    sim.set_faults(mps=1)
    assert error_of(post(template_body())) == (401, 190, 463)
    sim.token(DEMO_TOKEN, "restore")
    assert error_of(post(template_body())) == (400, 132015, None)
    sim.reset()
    assert post(template_body()).status_code == 200
    assert sim.faults()["mps"] is None


def test_new_templates_can_be_added(post, sim):
    [created] = sim.upsert_templates(
        {
            "name": "promo_v2",
            "language": "en_US",
            "category": "MARKETING",
            "components": [{"type": "BODY", "text": "Hi {{1}}"}],
        }
    )
    assert created["status"] == "APPROVED"
    assert created["id"] == "900000000000001"
    ok = post(template_body("promo_v2", [{"type": "body", "parameters": BODY[:1]}]))
    assert ok.status_code == 200


def test_health(sim):
    health = sim.health()
    assert health["status"] == "ok"
    assert health["messages"] == 0


# -- configuration, without a process ----------------------------------------------------


def test_flags_override_the_seed_files_faults(tmp_path):
    seed = demo_seed()
    seed["faults"] = {"mps": 10, "transient_rate": 0.5}
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    state = build_state(
        {"seed": str(path), "mps": 3, "undeliverable": "999*,*0000", "latency_ms": [1.0, 2.0]}
    )
    assert state.faults.mps == 3
    assert state.faults.transient_rate == 0.5
    assert state.faults.undeliverable == ["999*", "*0000"]
    assert state.faults.latency_ms == [1.0, 2.0]
    state.faults.update({"mps": 50})
    state.reset()
    assert state.faults.mps == 3  # reset goes back to the startup settings


def test_seed_without_wabas_is_refused(tmp_path):
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({"tokens": []}))
    with pytest.raises(ValueError, match="wabas"):
        build_state({"seed": str(path)})


def test_management_command_takes_the_simulator_flags():
    parser = Command().create_parser("manage.py", "graph_simulator")
    options = parser.parse_args(
        [
            "--port",
            "0",
            "--mps",
            "1000",
            "--throttle-status",
            "429",
            "--latency-ms",
            "5-20",
            "--webhook-shuffle",
            "--callback-url",
            "http://127.0.0.1:8000/webhooks/whatsapp",
        ]
    )
    assert (options.port, options.mps, options.throttle_status) == (0, 1000, 429)
    assert options.latency_ms == [5.0, 20.0]
    assert options.webhook_shuffle is True
    assert options.pair_rate_seconds is None  # unset flags leave the seed's settings alone


def test_demo_seed_is_not_shared_between_states():
    seed = demo_seed()
    first = build_state({})
    first.upsert_template(DEMO_WABA_ID, {"name": "x", "language": "en_US"})
    assert build_state({}).templates.keys() == first.templates.keys() - {
        (DEMO_WABA_ID, "x", "en_US")
    }
    assert seed == copy.deepcopy(demo_seed())


def test_simulator_process_starts_fast_with_flags_and_stops_by_pid():
    started = time.monotonic()
    process = SimulatorProcess("--mps", "7", "--throttle-status", "429").start()
    try:
        assert time.monotonic() - started < 3.0
        assert process.base_url == f"http://127.0.0.1:{process.port}"
        faults = process.control.faults()
        assert (faults["mps"], faults["throttle_status"]) == (7, 429)
        child = process.process
    finally:
        process.stop()
    assert child.returncode == 0
    assert process.process is None
