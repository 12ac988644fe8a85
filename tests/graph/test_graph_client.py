"""GraphClient against the simulator: exact bodies, every error class, paging, timeouts."""

from __future__ import annotations

import json
import logging
import socket

import pytest
import requests
from requests.adapters import BaseAdapter

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from messaging import graph
from messaging.graph import Consequence, ErrorClass, GraphClient, GraphError, SendResult

PNID = DEMO_PHONE_NUMBER_IDS[0]
BODY_PARAMS = [{"type": "text", "text": "Asha"}, {"type": "text", "text": "FALL25"}]


def promo(client: GraphClient, to: str = "919812345678", **kwargs) -> SendResult:
    return client.send_template(
        phone_number_id=PNID,
        to=to,
        name="seasonal_promo",
        language="en_US",
        components=[{"type": "body", "parameters": BODY_PARAMS}],
        **kwargs,
    )


def test_send_template_posts_exactly_the_documented_body(client, sim):
    result = promo(client, callback_data="msg-42")

    [message] = sim.messages()
    assert message["payload"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919812345678",
        "type": "template",
        "template": {
            "name": "seasonal_promo",
            "language": {"code": "en_US", "policy": "deterministic"},
            "components": [{"type": "body", "parameters": BODY_PARAMS}],
        },
        "biz_opaque_callback_data": "msg-42",
    }
    assert result == SendResult(
        wamid=message["wamid"], wa_id="919812345678", message_status="accepted"
    )
    assert message["wamid"].startswith("wamid.")


def test_send_template_with_media_header_url_button_and_named_params(client, sim):
    components = [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x/a.jpg"}}]},
        {"type": "body", "parameters": BODY_PARAMS},
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "track/123"}],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": "stop-updates"}],
        },
    ]
    client.send_template(
        phone_number_id=PNID,
        to="+919812345678",
        name="order_update",
        language="en_US",
        components=components,
    )
    named = [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Asha"},
                {"type": "text", "parameter_name": "member_id", "text": "M-7"},
            ],
        }
    ]
    result = client.send_template(
        phone_number_id=PNID,
        to="919800000001",
        name="welcome_named",
        language="en_US",
        components=named,
    )
    first, second = sim.messages()
    assert first["template"] == {"name": "order_update", "language": "en_US"}
    assert first["components"] == components
    assert first["to"] == "+919812345678"
    assert first["wa_id"] == "919812345678"
    assert first["callback_data"] is None
    assert "biz_opaque_callback_data" not in first["payload"]
    assert second["components"] == named
    assert result.wa_id == "919800000001"


def test_template_without_parameters_sends_no_components(client, sim):
    client.send_template(
        phone_number_id=PNID, to="919812345678", name="hello_world", language="en_US"
    )
    [message] = sim.messages()
    assert message["payload"]["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US", "policy": "deterministic"},
    }


def test_callback_data_over_512_characters_is_refused_before_sending(client, sim):
    with pytest.raises(ValueError, match="512"):
        promo(client, callback_data="x" * 513)
    assert sim.counts()["total"] == 0


def test_send_text_inside_the_window_and_mark_read(client, sim):
    inbound = sim.inbound("919812345678", phone_number_id=PNID, text="hi")
    result = client.send_text(
        phone_number_id=PNID, to="919812345678", body="Hello!", reply_to=inbound["message_id"]
    )
    client.mark_read(phone_number_id=PNID, message_id=inbound["message_id"])

    [message] = sim.messages()
    assert message["payload"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919812345678",
        "type": "text",
        "text": {"body": "Hello!", "preview_url": False},
        "context": {"message_id": inbound["message_id"]},
    }
    assert result == SendResult(wamid=message["wamid"], wa_id="919812345678", message_status=None)
    assert [(m["phone_number_id"], m["message_id"]) for m in sim.read_marks()] == [
        (PNID, inbound["message_id"])
    ]


def test_get_phone_number_returns_the_documented_fields(client):
    assert client.get_phone_number(DEMO_PHONE_NUMBER_IDS[1]) == {
        "id": "200000000000002",
        "display_phone_number": "+1 555-000-0002",
        "verified_name": "Demo Shop Support",
        "quality_rating": "YELLOW",
        "code_verification_status": "VERIFIED",
        "name_status": "APPROVED",
        "throughput": {"level": "STANDARD"},
        "messaging_limit_tier": "TIER_1K",
        "platform_type": "CLOUD_API",
        "status": "CONNECTED",
        # The portfolio's limit: the highest tier of the WABA's numbers.
        "whatsapp_business_manager_messaging_limit": "TIER_100K",
    }


def test_list_phone_numbers(client):
    assert [n["id"] for n in client.list_phone_numbers(DEMO_WABA_ID)] == list(DEMO_PHONE_NUMBER_IDS)


def test_list_templates_follows_next_links_across_pages(client, caplog):
    caplog.set_level(logging.DEBUG, logger="messaging.graph")
    templates = list(client.list_templates(DEMO_WABA_ID, limit=3))

    assert [(t["id"], t["name"], t["language"], t["status"]) for t in templates] == [
        ("300000000000001", "seasonal_promo", "en_US", "APPROVED"),
        ("300000000000002", "seasonal_promo", "es", "APPROVED"),
        ("300000000000003", "welcome_named", "en_US", "APPROVED"),
        ("300000000000004", "order_update", "en_US", "APPROVED"),
        ("300000000000005", "event_reminder", "en_US", "APPROVED"),
        ("300000000000006", "hello_world", "en_US", "APPROVED"),
        ("300000000000007", "summer_sale", "en_US", "PENDING"),
        ("300000000000008", "crypto_giveaway", "en_US", "REJECTED"),
        ("300000000000009", "flash_sale", "en_US", "PAUSED"),
        ("300000000000010", "old_newsletter", "en_US", "DISABLED"),
    ]
    assert set(templates[2]) == {
        "id",
        "name",
        "language",
        "status",
        "category",
        "parameter_format",
        "components",
    }
    pages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("graph GET")]
    assert len(pages) == 4  # 3 + 3 + 3 + 1


def test_list_templates_passes_filters(client):
    names = [
        t["name"]
        for t in client.list_templates(DEMO_WABA_ID, status="APPROVED", category="UTILITY")
    ]
    assert names == ["order_update", "event_reminder", "hello_world"]


# -- errors from real error bodies -------------------------------------------------------


def _send_with_faults(sim, client, faults, *, sends=1, **kwargs):
    sim.set_faults(**faults)
    for i in range(sends - 1):
        promo(client, to=f"91980000{i:04d}")
    return promo(client, **kwargs)


@pytest.mark.parametrize(
    ("faults", "sends", "kwargs", "expected"),
    [
        pytest.param(
            {"mps": 2}, 3, {}, (130429, None, 400, ErrorClass.THROTTLE), id="throttle-400"
        ),
        pytest.param(
            {"mps": 1, "throttle_status": 429},
            2,
            {},
            (130429, None, 429, ErrorClass.THROTTLE),
            id="throttle-429",
        ),
        pytest.param(
            {"pair_rate_seconds": 6},
            1,
            {},
            (131056, None, 400, ErrorClass.RECIPIENT_THROTTLE),
            id="pair-rate",
        ),
        pytest.param(
            {"errors": [{"code": 131048, "count": 1, "mode": "response"}]},
            1,
            {},
            (131048, None, 400, ErrorClass.QUALITY),
            id="quality",
        ),
        pytest.param(
            {"transient_rate": 1.0},
            1,
            {},
            (131000, None, 500, ErrorClass.TRANSIENT),
            id="transient",
        ),
        pytest.param(
            {"errors": [{"code": 131031, "subcode": 2494067}]},
            1,
            {},
            (131031, 2494067, 400, ErrorClass.AUTH),
            id="auth-locked",
        ),
        pytest.param(
            {"undeliverable": ["*5678"], "error_modes": {"131026": "response"}},
            1,
            {},
            (131026, None, 400, ErrorClass.RECIPIENT),
            id="recipient",
        ),
        pytest.param(
            {"errors": [{"code": 777777, "http_status": 400, "details": "odd"}]},
            1,
            {},
            (777777, None, 400, ErrorClass.UNKNOWN),
            id="unknown",
        ),
    ],
)
def test_each_error_class_from_a_real_error_body(client, sim, faults, sends, kwargs, expected):
    if "pair_rate_seconds" in faults:
        sim.set_faults(**faults)
        promo(client)
        faults = {}
    with pytest.raises(GraphError) as caught:
        _send_with_faults(sim, client, faults, sends=sends, **kwargs)
    error = caught.value
    assert (error.code, error.subcode, error.http_status, error.error_class) == expected
    assert error.title == "OAuthException"
    assert error.fbtrace_id.startswith("A")
    assert error.outcome_unknown is False


def test_error_fields_are_parsed_from_the_body(client, sim):
    with pytest.raises(GraphError) as caught:
        client.send_template(phone_number_id=PNID, to="919812345678", name="nope", language="en_US")
    error = caught.value
    assert error.code == 132001
    assert error.http_status == 404
    assert error.error_class is ErrorClass.TEMPLATE
    assert error.message == "(#132001) Template name does not exist in the translation"
    assert error.details == "template name (nope) does not exist in en_US"
    assert error.rule.consequence is Consequence.PAUSE_CAMPAIGN


def test_invalid_and_expired_tokens_are_auth_errors(sim):
    bad = GraphClient("not-a-token", base_url=sim.base_url)
    with pytest.raises(GraphError) as caught:
        bad.get_phone_number(PNID)
    assert (caught.value.code, caught.value.subcode, caught.value.http_status) == (190, None, 401)
    assert caught.value.error_class is ErrorClass.AUTH

    sim.token("fresh-token")
    fresh = GraphClient("fresh-token", base_url=sim.base_url)
    assert fresh.get_phone_number(PNID)["id"] == PNID
    sim.token("fresh-token", "expire")
    with pytest.raises(GraphError) as caught:
        promo(fresh)
    assert (caught.value.code, caught.value.subcode, caught.value.http_status) == (190, 463, 401)
    assert caught.value.error_class is ErrorClass.AUTH
    assert sim.counts()["total"] == 0


# -- network failures and unknown outcomes -----------------------------------------------


def test_read_timeout_after_acceptance_is_outcome_unknown(sim):
    sim.set_faults(timeout_rate=1.0, timeout_hold_s=5)
    client = GraphClient(DEMO_TOKEN, base_url=sim.base_url, timeout=(1.0, 0.3))
    with pytest.raises(GraphError) as caught:
        promo(client, callback_data="msg-1")
    error = caught.value
    assert error.outcome_unknown is True
    assert error.error_class is ErrorClass.TRANSIENT
    assert (error.code, error.http_status) == (None, None)
    assert str(error) == (
        "Graph API error (code=None, http=None, class=transient, outcome_unknown): "
        "network error: ReadTimeoutError"
    )
    [message] = sim.messages()
    assert (message["callback_data"], message["timed_out"]) == ("msg-1", True)


def test_connection_dropped_after_acceptance_is_outcome_unknown(client, sim):
    sim.set_faults(timeout_rate=1.0, timeout_mode="drop")
    with pytest.raises(GraphError) as caught:
        promo(client)
    assert caught.value.outcome_unknown is True
    assert caught.value.error_class is ErrorClass.TRANSIENT
    assert sim.counts()["total"] == 1


def test_a_slow_get_is_a_retryable_failure_not_an_unknown_outcome(sim):
    sim.set_faults(latency_ms=1000)
    client = GraphClient(DEMO_TOKEN, base_url=sim.base_url, timeout=(1.0, 0.2))
    with pytest.raises(GraphError) as caught:
        client.get_phone_number(PNID)
    assert caught.value.outcome_unknown is False
    assert caught.value.rule.consequence is Consequence.RETRY


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_certainly_not_sent():
    client = GraphClient(DEMO_TOKEN, base_url=f"http://127.0.0.1:{_unused_port()}")
    with pytest.raises(GraphError) as caught:
        promo(client)
    error = caught.value
    assert error.outcome_unknown is False
    assert error.error_class is ErrorClass.TRANSIENT
    assert error.rule.consequence is Consequence.RETRY
    assert (error.code, error.http_status) == (None, None)
    assert error.message == "network error: NewConnectionError"


# -- the token stays secret --------------------------------------------------------------

SECRET = "EAAG-very-secret-token-123"


def test_token_never_appears_in_repr_str_or_logs(sim, caplog):
    caplog.set_level(logging.DEBUG)
    sim.token(SECRET)
    client = GraphClient(f"  {SECRET}\n", base_url=sim.base_url)
    texts = [repr(client), str(client)]
    promo(client)  # whitespace around the token was stripped, or this would be a 190
    sim.token(SECRET, "expire")
    with pytest.raises(GraphError) as expired:
        promo(client)
    refused = GraphClient(SECRET, base_url=f"http://127.0.0.1:{_unused_port()}")
    with pytest.raises(GraphError) as network:
        refused.get_phone_number(PNID)
    for error in (expired.value, network.value):
        texts += [str(error), repr(error), error.message, str(error.args)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    assert expired.value.code == 190
    assert any("graph POST" in t for t in texts)
    assert all(SECRET not in text for text in texts)
    assert repr(client) == f"GraphClient(base_url='{sim.base_url}', version='v23.0', token=***)"


def test_empty_token_is_refused():
    with pytest.raises(ValueError, match="empty"):
        GraphClient("  ")


# -- the pooled session, and paging edge cases with a stub transport ---------------------


def test_one_pooled_session_per_process_without_urllib3_retries(settings):
    session = graph.shared_session()
    assert graph.shared_session() is session
    adapter = session.get_adapter("https://graph.facebook.com")
    assert adapter._pool_maxsize == settings.GRAPH_POOL_SIZE
    assert adapter.max_retries.total == 0
    assert adapter.max_retries.read is False


class StubAdapter(BaseAdapter):
    """Answers from a list of (status, body) and records what was asked."""

    def __init__(self, answers: list[tuple[int, object]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.requests.append(request)
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response.reason = "Bad Gateway" if status == 502 else "OK"
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def _stub_client(answers) -> tuple[GraphClient, StubAdapter]:
    session = requests.Session()
    adapter = StubAdapter(answers)
    session.mount("https://", adapter)
    client = GraphClient("tok", base_url="https://graph.test", version="v23.0", session=session)
    return client, adapter


def test_paging_by_cursor_when_there_is_no_next_link():
    client, adapter = _stub_client(
        [
            (200, {"data": [{"id": "1"}, {"id": "2"}], "paging": {"cursors": {"after": "c2"}}}),
            (200, {"data": [{"id": "3"}], "paging": {"cursors": {"after": "c3"}}}),
        ]
    )
    assert [t["id"] for t in client.list_templates("W", limit=2)] == ["1", "2", "3"]
    assert [r.url for r in adapter.requests] == [
        "https://graph.test/v23.0/W/message_templates?fields=id%2Cname%2Clanguage%2Cstatus"
        "%2Ccategory%2Cparameter_format%2Ccomponents&limit=2",
        "https://graph.test/v23.0/W/message_templates?fields=id%2Cname%2Clanguage%2Cstatus"
        "%2Ccategory%2Cparameter_format%2Ccomponents&limit=2&after=c2",
    ]


def test_next_links_lose_their_access_token_and_never_leave_the_origin():
    client, adapter = _stub_client(
        [
            (
                200,
                {
                    "data": [{"id": "1"}],
                    "paging": {
                        "cursors": {"after": "a1"},
                        "next": "https://graph.test/v23.0/W/phone_numbers?access_token=LEAK&after=a1",
                    },
                },
            ),
            (
                200,
                {
                    "data": [{"id": "2"}],
                    "paging": {
                        "cursors": {"after": "a2"},
                        "next": "https://evil.test/v23.0/W/phone_numbers?after=a2",
                    },
                },
            ),
            (200, {"data": [{"id": "3"}], "paging": {"cursors": {"after": "a3"}}}),
        ]
    )
    assert [n["id"] for n in client.list_phone_numbers("W")] == ["1", "2", "3"]
    urls = [r.url for r in adapter.requests]
    assert urls[1] == "https://graph.test/v23.0/W/phone_numbers?after=a1"
    assert urls[2].startswith("https://graph.test/v23.0/W/phone_numbers?fields=")
    assert urls[2].endswith("&limit=100&after=a2")
    assert all(r.headers["Authorization"] == "Bearer tok" for r in adapter.requests)


def test_a_non_json_error_body_still_gives_a_graph_error():
    client, _ = _stub_client([(502, b"<html>Bad Gateway</html>")])
    with pytest.raises(GraphError) as caught:
        client.get_phone_number("P")
    error = caught.value
    assert (error.code, error.http_status, error.error_class) == (None, 502, ErrorClass.TRANSIENT)
    assert error.message == "HTTP 502: Bad Gateway"


def test_error_data_sent_as_a_json_string_is_understood():
    body = {
        "error": {
            "message": "(#131056) pair",
            "type": "OAuthException",
            "code": 131056,
            "error_subcode": 2494073,
            "error_data": json.dumps({"details": "too many"}),
            "error_user_title": "Slow down",
            "fbtrace_id": "Fb1",
        }
    }
    client, _ = _stub_client([(400, body)])
    with pytest.raises(GraphError) as caught:
        promo(client)
    error = caught.value
    assert (error.code, error.subcode, error.title, error.details, error.fbtrace_id) == (
        131056,
        2494073,
        "Slow down",
        "too many",
        "Fb1",
    )
    assert error.error_class is ErrorClass.RECIPIENT_THROTTLE


def test_a_success_without_a_message_id_is_an_unknown_outcome():
    client, _ = _stub_client([(200, {"messaging_product": "whatsapp"})])
    with pytest.raises(GraphError) as caught:
        promo(client)
    assert caught.value.outcome_unknown is True
    assert caught.value.error_class is ErrorClass.UNKNOWN
