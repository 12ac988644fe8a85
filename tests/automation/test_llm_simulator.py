"""The LLM simulator: an OpenAI-compatible endpoint the official SDK talks to, deterministic."""

from __future__ import annotations

import time

import openai
import pytest
import requests

from llm_simulator.server import DEFAULT_ANSWER, HANDOFF_SENTINEL

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "handoff",
            "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def client(llm_sim):
    return openai.OpenAI(api_key="sk-x", base_url=llm_sim.openai_base_url, max_retries=0)


def ask(client, text, **kwargs):
    return client.chat.completions.create(
        model="sim-model", messages=[{"role": "user", "content": text}], **kwargs
    )


def test_it_answers_by_keyword_and_counts_words_as_tokens(client, llm_sim):
    answer = ask(client, "What is the PRICE of the blue kurta?")
    assert answer.choices[0].message.content == (
        "Our festive offer is 20% off everything until Sunday."
    )
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "sim-model"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (8, 9)
    assert ask(client, "hello there").choices[0].message.content == DEFAULT_ANSWER


def test_it_uses_the_answers_it_is_given(client, llm_sim):
    llm_sim.configure(answers={"parking": "Parking is at the back."})
    assert ask(client, "Is there parking?").choices[0].message.content == "Parking is at the back."
    assert ask(client, "price?").choices[0].message.content == DEFAULT_ANSWER


def test_a_request_for_a_human_is_a_handoff_tool_call_or_the_sentinel(client, llm_sim):
    with_tools = ask(client, "I want to talk to a human", tools=TOOLS)
    [call] = with_tools.choices[0].message.tool_calls
    assert (call.function.name, call.function.arguments) == (
        "handoff",
        '{"reason": "The contact asked to talk to a person."}',
    )
    assert with_tools.choices[0].finish_reason == "tool_calls"
    assert ask(client, "get me an agent").choices[0].message.content == HANDOFF_SENTINEL
    llm_sim.configure(ignore_tools=True)
    assert ask(client, "a real person please", tools=TOOLS).choices[0].message.content == (
        HANDOFF_SENTINEL
    )


def test_faults_are_served_in_order_then_it_answers_again(client, llm_sim):
    llm_sim.configure(faults=[{"status": 500}, {"status": 429}, {"hang_s": 1.5}])
    with pytest.raises(openai.InternalServerError):
        ask(client, "hi")
    with pytest.raises(openai.RateLimitError):
        ask(client, "hi")
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(client, "hi", timeout=0.3)
    assert time.monotonic() - started < 1.4
    assert ask(client, "hi").choices[0].message.content == DEFAULT_ANSWER
    llm_sim.configure(always_status=503)
    with pytest.raises(openai.APIStatusError) as error:
        ask(client, "hi")
    assert error.value.status_code == 503


def test_latency_delays_every_answer(client, llm_sim):
    llm_sim.configure(latency_ms=300)
    started = time.monotonic()
    ask(client, "hi")
    assert time.monotonic() - started >= 0.3


def test_every_request_is_recorded_with_its_body_and_credentials(client, llm_sim):
    ask(client, "price?", temperature=0.2)
    [record] = llm_sim.requests()
    assert record["path"] == "/v1/chat/completions"
    assert record["authorization"] == "Bearer sk-x"
    assert record["body"] == {
        "model": "sim-model",
        "messages": [{"role": "user", "content": "price?"}],
        "temperature": 0.2,
    }
    assert llm_sim.requests(since_seq=record["seq"]) == []
    llm_sim.reset()
    assert llm_sim.requests() == []


def test_a_required_key_refuses_other_keys(client, llm_sim):
    llm_sim.configure(api_key="sk-right")
    with pytest.raises(openai.AuthenticationError):
        ask(client, "hi")
    right = openai.OpenAI(api_key="sk-right", base_url=llm_sim.openai_base_url, max_retries=0)
    assert ask(right, "hi").choices[0].message.content == DEFAULT_ANSWER


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"faults": [{"status": 200}]}, "faults must be a list"),
        ({"latency_ms": -1}, "latency_ms must be a number >= 0"),
        ({"answers": {"": "x"}}, "answers must be"),
        ({"nonsense": 1}, "unknown setting 'nonsense'"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(llm_sim, changes, error):
    response = requests.post(f"{llm_sim.base_url}/_sim/config", json=changes, timeout=5)
    assert response.status_code == 400
    assert error in response.json()["error"]


def test_a_request_without_messages_is_a_400_like_openais(llm_sim):
    response = requests.post(
        f"{llm_sim.openai_base_url}/chat/completions", json={"model": "m"}, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
