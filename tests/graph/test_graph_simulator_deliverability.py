"""The simulator fails the way Meta does: errors by webhook after a 200, switched on
mid-run, the portfolio's tier budget, the per-user marketing cap, quality dynamics with
their webhooks, Brazil/Mexico wa_ids."""

from __future__ import annotations

import json

import pytest
import requests

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID

PNID, PNID_2 = DEMO_PHONE_NUMBER_IDS
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}
APP_SECRET = "app-secret-for-tests"
BODY = [{"type": "text", "text": "Asha"}, {"type": "text", "text": "FALL25"}]


@pytest.fixture
def post(sim):
    session = requests.Session()
    session.trust_env = False

    def send(to="919812345678", *, pnid=PNID, name="seasonal_promo", components=None):
        body = {
            "messaging_product": "whatsapp",
            "to": to,
            "type": "template",
            "template": {
                "name": name,
                "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": BODY}]
                if components is None
                else components,
            },
        }
        return session.post(
            f"{sim.base_url}/v23.0/{pnid}/messages", json=body, headers=AUTH, timeout=5
        )

    yield send
    session.close()


@pytest.fixture
def hooks(sim, receiver):
    sim.set_faults(callback_url=receiver.url, app_secret=APP_SECRET, webhook_concurrency=1)
    return receiver


def changes(receiver, field=None):
    return [
        change
        for post_ in receiver.posts
        for entry in json.loads(post_.body)["entry"]
        for change in entry["changes"]
        if field is None or change["field"] == field
    ]


def statuses(receiver):
    return [s for c in changes(receiver, "messages") for s in c["value"].get("statuses", [])]


def failed_codes(receiver):
    return {s["id"]: s["errors"][0]["code"] for s in statuses(receiver) if s["status"] == "failed"}


def wamid(response):
    assert response.status_code == 200, response.text
    return response.json()["messages"][0]["id"]


# -- where the error arrives ----------------------------------------------------------------


@pytest.mark.parametrize("code", [131026, 131048, 131049, 131053, 130472, 131050])
def test_recipient_and_quality_errors_come_as_failed_webhooks_after_a_200(post, sim, hooks, code):
    sim.set_faults(errors=[{"code": code, "to": "919812345678"}])
    sent = wamid(post())
    sim.webhooks(wait=5)
    [failed] = statuses(hooks)
    assert (failed["id"], failed["status"], failed["errors"][0]["code"]) == (sent, "failed", code)
    assert failed["errors"][0]["title"] and failed["errors"][0]["error_data"]["details"]
    assert "recipient_user_id" not in failed
    assert sim.counts()["failed"] == {str(code): 1}
    assert sim.counts()["rejected"] == {}


@pytest.mark.parametrize("code", [131026, 131048, 131049, 131053, 130472])
def test_each_of_them_can_be_answered_in_the_response_instead(post, sim, hooks, code):
    sim.set_faults(error_modes={str(code): "response"}, errors=[{"code": code}])
    response = post()
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert sim.messages() == []
    assert sim.counts()["rejected"] == {str(code): 1}


def test_a_rule_mode_overrides_the_code_default(post, sim):
    sim.set_faults(error_modes={"131048": "response"}, errors=[{"code": 131048, "mode": "webhook"}])
    assert post().status_code == 200
    assert sim.messages()[0]["fail_code"] == 131048


def test_bad_error_modes_are_refused(sim):
    with pytest.raises(RuntimeError, match="error_modes"):
        sim.set_faults(error_modes={"131048": "smoke-signal"})
    with pytest.raises(RuntimeError, match="mode must be"):
        sim.set_faults(errors=[{"code": 131048, "mode": "later"}])
    assert sim.faults()["error_modes"] == {} and sim.faults()["errors"] == []


def test_131048_switched_on_mid_run_for_one_number(post, sim, hooks):
    before = [wamid(post(f"9198000000{i:02d}")) for i in range(3)]
    sim.set_faults(errors=[{"code": 131048, "phone_number_id": PNID}])
    after = [wamid(post(f"9198000001{i:02d}")) for i in range(3)]
    other = wamid(post("919800000200", pnid=PNID_2))
    sim.webhooks(wait=5)
    assert failed_codes(hooks) == dict.fromkeys(after, 131048)
    delivered = {s["id"] for s in statuses(hooks) if s["status"] == "delivered"}
    assert delivered == {*before, other}


# -- tier budget ------------------------------------------------------------------------------


def test_tier_budget_counts_unique_users_per_portfolio_across_its_numbers(post, sim, hooks):
    assert sim.set_messaging_limit("TIER_50")["limit"] == 50
    users = [f"9198000{i:05d}" for i in range(50)]
    for index, user in enumerate(users):
        wamid(post(user, pnid=PNID if index % 2 else PNID_2))
    sim.set_faults(pair_rate_seconds=0)
    repeat = wamid(post(users[0]))  # already reached today: no new user
    over = wamid(post("919899999999"))
    sim.inbound("919899999998", phone_number_id=PNID)
    in_window = wamid(post("919899999998"))  # inside a service window: not counted
    sim.webhooks(wait=5)
    assert failed_codes(hooks) == {over: 131048}
    assert repeat not in failed_codes(hooks) and in_window not in failed_codes(hooks)
    assert sim.counts()["tiers"][f"business-of-{DEMO_WABA_ID}"] == {
        "tier": "TIER_50",
        "limit": 50,
        "reached": 50,
    }


def test_tier_budget_rolls_after_24_hours(post, sim, hooks):
    sim.set_messaging_limit("TIER_50")
    for i in range(50):
        wamid(post(f"9198000{i:05d}"))
    sim.set_faults(error_modes={"131048": "response"})
    assert post("919899999999").json()["error"]["code"] == 131048
    sim.set_faults(clock_offset_s=24 * 3600 + 1)
    assert post("919899999999").status_code == 200
    assert sim.counts()["tiers"][f"business-of-{DEMO_WABA_ID}"]["reached"] == 1


def test_messaging_limit_change_sends_quality_updates_and_the_new_field(sim, hooks):
    sim.set_messaging_limit("TIER_2K")
    sim.webhooks(wait=5)
    updates = [c["value"] for c in changes(hooks, "phone_number_quality_update")]
    assert updates == [
        {
            "display_phone_number": display,
            "event": "DOWNGRADE",
            "current_limit": "TIER_2K",
            "old_limit": "TIER_100K",
            "max_daily_conversations_per_business": "TIER_2K",
        }
        for display in ("15550000001", "15550000002")
    ]
    session = requests.Session()
    session.trust_env = False
    number = session.get(
        f"{sim.base_url}/v23.0/{PNID}",
        params={"fields": "whatsapp_business_manager_messaging_limit"},
        headers=AUTH,
        timeout=5,
    ).json()
    assert number == {"id": PNID, "whatsapp_business_manager_messaging_limit": "TIER_2K"}


# -- per-user marketing cap -------------------------------------------------------------------


def test_marketing_cap_fails_the_second_marketing_template_to_a_user_with_131049(post, sim, hooks):
    sim.set_faults(marketing_cap=1, pair_rate_seconds=0)
    first = wamid(post())
    second = wamid(post())
    utility = wamid(post(name="hello_world", components=[]))  # utility: not capped
    other = wamid(post("919800000001"))
    sim.webhooks(wait=5)
    assert failed_codes(hooks) == {second: 131049}
    assert {first, utility, other}.isdisjoint(failed_codes(hooks))
    sim.set_faults(clock_offset_s=24 * 3600 + 1)
    assert sim.messages(wamid=wamid(post()))[0]["fail_code"] is None


# -- quality dynamics ------------------------------------------------------------------------


def test_blocks_lower_template_and_number_quality_pause_the_template_and_flag_the_number(
    post, sim, hooks
):
    sim.set_faults(block_rate=1.0, quality_sample=2)
    wamid(post("919800000001"))
    wamid(post("919800000002"))
    sim.webhooks(wait=5)
    [quality] = [c["value"] for c in changes(hooks, "message_template_quality_update")]
    assert quality == {
        "previous_quality_score": "GREEN",
        "new_quality_score": "RED",
        "message_template_id": 300000000000001,
        "message_template_name": "seasonal_promo",
        "message_template_language": "en_US",
    }
    [paused] = [c["value"] for c in changes(hooks, "message_template_status_update")]
    assert (paused["event"], paused["message_template_name"]) == ("PAUSED", "seasonal_promo")
    [flagged] = [c["value"] for c in changes(hooks, "phone_number_quality_update")]
    assert (flagged["display_phone_number"], flagged["event"]) == ("15550000001", "FLAGGED")
    assert sim.counts()["blocked"] == 2
    response = post("919800000003")
    assert (response.status_code, response.json()["error"]["code"]) == (400, 132015)
    number = sim.update_number(PNID)
    assert (number["quality_rating"], number["status"]) == ("RED", "FLAGGED")


def test_a_low_block_share_keeps_quality_green(post, sim, hooks):
    sim.set_faults(block_rate=0.0, quality_sample=2)
    for i in range(4):
        wamid(post(f"91980000000{i}"))
    sim.webhooks(wait=5)
    assert [c["field"] for c in changes(hooks) if c["field"] != "messages"] == []


def test_quality_control_sends_the_webhooks_at_once(sim, hooks):
    sim.set_quality("YELLOW", phone_number_id=PNID)
    sim.set_quality("RED", phone_number_id=PNID)
    sim.set_quality("GREEN", phone_number_id=PNID)
    sim.set_quality("YELLOW", template="seasonal_promo", language="en_US")
    sim.webhooks(wait=5)
    events = [c["value"]["event"] for c in changes(hooks, "phone_number_quality_update")]
    assert events == ["DOWNGRADE", "FLAGGED", "UNFLAGGED"]
    [template] = [c["value"] for c in changes(hooks, "message_template_quality_update")]
    assert (template["previous_quality_score"], template["new_quality_score"]) == (
        "GREEN",
        "YELLOW",
    )
    assert changes(hooks, "message_template_status_update") == []  # only RED pauses
    with pytest.raises(RuntimeError, match="quality must be"):
        sim.set_quality("PURPLE", phone_number_id=PNID)


# -- wa_id rewriting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "wa_id"),
    [
        ("+55 11 98765-4321", "551187654321"),  # Brazil mobile with the 9th digit
        ("551187654321", "551187654321"),  # Brazil without it
        ("+52 55 1234 5678", "5215512345678"),  # Mexico: 52 -> 521
        ("5215512345678", "5215512345678"),
        ("919812345678", "919812345678"),
    ],
)
def test_wa_id_is_rewritten_for_brazil_and_mexico(post, sim, hooks, to, wa_id):
    response = post(to)
    assert response.json()["contacts"][0]["input"] == to
    assert response.json()["contacts"][0]["wa_id"] == wa_id
    sim.webhooks(wait=5)
    assert {s["recipient_id"] for s in statuses(hooks)} == {wa_id}
    assert sim.counts()["by_recipient"] == {wa_id: 1}


def test_inbound_from_brazil_uses_the_wa_id(sim, hooks):
    sim.inbound("5511987654321", phone_number_id=PNID)
    [change] = changes(hooks, "messages")
    assert change["value"]["messages"][0]["from"] == "551187654321"
    assert change["value"]["contacts"][0]["wa_id"] == "551187654321"


def test_wa_id_rewrite_can_be_switched_off(post, sim):
    sim.set_faults(wa_id_rewrite=False)
    assert post("5511987654321").json()["contacts"][0]["wa_id"] == "5511987654321"


def test_the_command_line_sets_error_modes_and_quality_faults():
    from graph_simulator.server import build_state

    state = build_state(
        {"error_modes": "131026=response,131047=webhook", "block_rate": 0.5, "marketing_cap": 2}
    )
    assert state.faults.error_modes == {"131026": "response", "131047": "webhook"}
    assert (state.faults.block_rate, state.faults.marketing_cap) == (0.5, 2)
    assert state.error_mode(131026) == "response" and state.error_mode(131048) == "webhook"
    assert state.error_mode(132000) == "response"


def test_undeliverable_patterns_answer_200_then_fail_by_webhook(post, sim, hooks):
    sim.set_faults(undeliverable=["*0000"])
    bad = wamid(post("919800000000"))
    good = wamid(post("919800000001"))
    sim.webhooks(wait=5)
    assert failed_codes(hooks) == {bad: 131026}
    assert sim.counts()["failed"] == {"131026": 1} and good not in failed_codes(hooks)


def test_errors_outside_any_status_and_account_changes_on_demand(sim, hooks):
    answer = sim.webhook_errors({"code": 131042}, phone_number_id=PNID)
    assert (answer["delivered"], answer["status"]) == (True, 200)
    update = {
        "event": "ACCOUNT_RESTRICTION",
        "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}],
    }
    sim.webhook_change("account_update", update)
    [errors_change, account_change] = changes(hooks)
    assert errors_change["field"] == "messages"
    assert errors_change["value"]["metadata"]["phone_number_id"] == PNID
    title = "Business eligibility payment issue"
    assert errors_change["value"]["errors"] == [
        {
            "code": 131042,
            "title": title,
            "message": title,
            "error_data": {
                "details": "Message failed to send because there were one or more errors "
                "related to your payment method."
            },
        }
    ]
    assert account_change == {"field": "account_update", "value": update}
    with pytest.raises(RuntimeError, match="integer code"):
        sim.webhook_errors({"code": "x"}, phone_number_id=PNID)
