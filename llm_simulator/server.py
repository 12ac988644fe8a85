"""The LLM simulator's aiohttp server: OpenAI Chat Completions plus the /_sim/ control API.

Deterministic by design, so tests can assert exact replies:

- the reply to a conversation is the canned answer of the first keyword (in the
  order configured) found in the last ``user`` message, else the default answer;
- a last user message that mentions a human ("human", "agent", "person",
  "someone real") is handed over: a ``handoff`` tool call when the request
  offers a tool of that name, else the sentinel reply (``HANDOFF_SENTINEL``)
  for models without tools;
- token usage counts whitespace-separated words;
- faults are a queue consumed one per request (``{"status": 500}``,
  ``{"status": 429}``, ``{"hang_s": 5}``) plus an optional ``always_status``;
  ``latency_ms`` delays every answer; ``ignore_tools`` plays a model without tools.

Settings come from the command line (``--latency-ms``, ``--api-key``, ``--answers``)
and change at run time with ``POST /_sim/config``; ``POST /_sim/reset`` restores the
startup ones and forgets the recorded requests.

Every completion request is recorded (``GET /_sim/requests``) with its path,
JSON body and Authorization header, oldest first.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simkit.serve import simulator_run

logger = logging.getLogger("llm_simulator")

# What a model without tools answers to hand over (automation.agent knows it too).
HANDOFF_SENTINEL = "[[HANDOFF]]"
HANDOFF_WORDS = re.compile(r"\b(human|agent|person|someone real|real person)\b", re.IGNORECASE)
HANDOFF_REASON = "The contact asked to talk to a person."

# Keyword -> answer, checked in this order against the last user message (casefolded).
DEFAULT_ANSWERS: list[tuple[str, str]] = [
    ("price", "Our festive offer is 20% off everything until Sunday."),
    ("deliver", "Orders are delivered in 3 to 5 working days."),
    ("shipping", "Shipping is free on orders above Rs 499."),
    ("hours", "We are open from 10 am to 8 pm, Monday to Saturday."),
    ("open", "We are open from 10 am to 8 pm, Monday to Saturday."),
    ("refund", "Refunds reach your account within 7 days of the return."),
    ("order", "Your order is on its way; you will get the tracking link by SMS."),
]
DEFAULT_ANSWER = "Thanks for your message! How can I help you today?"


@dataclass
class SimConfig:
    """What the simulator answers and how; changed at run time by POST /_sim/config."""

    answers: list[tuple[str, str]] = field(default_factory=lambda: list(DEFAULT_ANSWERS))
    default_answer: str = DEFAULT_ANSWER
    latency_ms: float = 0.0
    # Faults applied to the next requests, one each: {"status": 500} or {"hang_s": 3}.
    faults: list[dict[str, Any]] = field(default_factory=list)
    # Every request answered with this HTTP error while set (0 = off).
    always_status: int = 0
    # Required bearer token, when set ("" accepts any or none).
    api_key: str = ""
    # Behave like a model without tool calls: hand over with the sentinel reply.
    ignore_tools: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        """Applies ``changes``; raises ValueError naming the first bad key or value."""
        for key, value in changes.items():
            if key == "answers":
                self.answers = _answers(value)
            elif key == "default_answer":
                if not isinstance(value, str) or not value:
                    raise ValueError("default_answer must be a non-empty string")
                self.default_answer = value
            elif key == "latency_ms":
                self.latency_ms = _non_negative(key, value)
            elif key == "faults":
                if not isinstance(value, list) or not all(_fault_ok(f) for f in value):
                    raise ValueError(
                        'faults must be a list of {"status": 4xx|5xx} or {"hang_s": seconds}'
                    )
                self.faults = [dict(f) for f in value]
            elif key == "always_status":
                if not isinstance(value, int) or not (value == 0 or 400 <= value <= 599):
                    raise ValueError("always_status must be 0 or an HTTP error status")
                self.always_status = value
            elif key == "ignore_tools":
                if not isinstance(value, bool):
                    raise ValueError("ignore_tools must be true or false")
                self.ignore_tools = value
            elif key == "api_key":
                if not isinstance(value, str):
                    raise ValueError("api_key must be a string")
                self.api_key = value
            else:
                raise ValueError(f"unknown setting {key!r}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "answers": [list(pair) for pair in self.answers],
            "default_answer": self.default_answer,
            "latency_ms": self.latency_ms,
            "faults": self.faults,
            "always_status": self.always_status,
            "api_key_set": bool(self.api_key),
            "ignore_tools": self.ignore_tools,
        }


def _answers(value: Any) -> list[tuple[str, str]]:
    pairs = list(value.items()) if isinstance(value, dict) else value
    if not isinstance(pairs, list) or not all(
        isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, str) and x for x in p)
        for p in pairs
    ):
        raise ValueError('answers must be {"keyword": "answer"} or [["keyword", "answer"], ...]')
    return [(k.casefold(), a) for k, a in pairs]


def _non_negative(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a number >= 0")
    return float(value)


def _fault_ok(fault: Any) -> bool:
    if not isinstance(fault, dict) or len(fault) != 1:
        return False
    (key, value), *_ = fault.items()
    if key == "status":
        return isinstance(value, int) and 400 <= value <= 599
    if key == "hang_s":
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return False


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self._startup = copy.deepcopy(config)
        self.config = config
        self.requests: list[dict[str, Any]] = []
        self.started_at = time.monotonic()
        self.seq = 0

    def reset(self) -> None:
        """Back to the startup configuration, with no recorded requests."""
        self.config = copy.deepcopy(self._startup)
        self.requests.clear()


STATE: web.AppKey[SimState] = web.AppKey("state", SimState)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _openai_error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    headers = {"Retry-After": "1"} if status == 429 else None
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _json(body, status, headers)


def _text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _offers_handoff(tools: Any) -> bool:
    if not isinstance(tools, list):
        return False
    return any(
        isinstance(tool, dict)
        and isinstance(tool.get("function"), dict)
        and tool["function"].get("name") == "handoff"
        for tool in tools
    )


def answer_for(config: SimConfig, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(content, handoff reason) for a request: exactly one of them is set."""
    messages = body.get("messages") or []
    last_user = next(
        (
            _text_of(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    if HANDOFF_WORDS.search(last_user):
        return None, HANDOFF_REASON
    folded = last_user.casefold()
    for keyword, answer in config.answers:
        if keyword in folded:
            return answer, None
    return config.default_answer, None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions (also /chat/completions and Azure's deployment path)."""
    state = request.app[STATE]
    config = state.config
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    record = {
        "seq": state.seq + 1,
        "at": time.time(),
        "path": request.path,
        "query": dict(request.query),
        "authorization": request.headers.get("Authorization", ""),
        "api_key_header": request.headers.get("api-key", ""),
        "body": body,
    }
    state.seq += 1
    state.requests.append(record)
    if config.latency_ms:
        await asyncio.sleep(config.latency_ms / 1000.0)
    # Bearer for OpenAI and the compatible servers, an api-key header for Azure.
    if config.api_key and config.api_key not in (
        record["authorization"].removeprefix("Bearer "),
        record["api_key_header"],
    ):
        return _openai_error(401, "Incorrect API key provided.", "invalid_request_error")
    fault = config.faults.pop(0) if config.faults else None
    if fault and "hang_s" in fault:
        record["fault"] = fault
        await asyncio.sleep(float(fault["hang_s"]))
    status = (fault or {}).get("status") or config.always_status
    if status:
        record["fault"] = {"status": status}
        if status == 429:
            return _openai_error(429, "Rate limit reached.", "requests", "rate_limit_exceeded")
        return _openai_error(status, "The server had an error.", "server_error")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return _openai_error(400, "'messages' is a required property", "invalid_request_error")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _openai_error(400, "you must provide a model parameter", "invalid_request_error")

    content, handoff = answer_for(config, body)
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    finish = "stop"
    if handoff is not None:
        if _offers_handoff(body.get("tools")) and not config.ignore_tools:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{record['seq']}",
                    "type": "function",
                    "function": {
                        "name": "handoff",
                        "arguments": json.dumps({"reason": handoff}),
                    },
                }
            ]
            finish = "tool_calls"
        else:
            message["content"] = HANDOFF_SENTINEL
    prompt_tokens = sum(
        _words(_text_of(m.get("content"))) for m in body["messages"] if isinstance(m, dict)
    )
    completion_tokens = _words(message["content"] or "") or 1
    answer = {
        "id": f"chatcmpl-sim-{record['seq']}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "llm-simulator",
    }
    record["answer"] = answer
    return _json(answer)


async def list_models(request: web.Request) -> web.Response:
    return _json(
        {"object": "list", "data": [{"id": "sim-model", "object": "model", "owned_by": "sim"}]}
    )


# -- control API -------------------------------------------------------------------------


async def sim_health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _json(
        {
            "status": "ok",
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - state.started_at, 3),
            "requests": len(state.requests),
        }
    )


async def sim_requests(request: web.Request) -> web.Response:
    """Recorded requests, oldest first; ``since_seq`` gives only the later ones."""
    state = request.app[STATE]
    try:
        since = int(request.query.get("since_seq", "0"))
    except ValueError:
        return _json({"error": "since_seq must be an integer"}, 400)
    found = [r for r in state.requests if r["seq"] > since]
    return _json({"requests": found, "count": len(found)})


async def sim_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return _json({"ok": True})


async def sim_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            changes = await request.json()
        except ValueError:
            return _json({"error": "body is not JSON"}, 400)
        if not isinstance(changes, dict):
            return _json({"error": "body must be an object"}, 400)
        try:
            state.config.update(changes)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
    return _json(state.config.as_dict())


def make_app(state: SimState) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    routes: list[tuple[str, str, Callable[..., Any]]] = [
        ("GET", "/_sim/health", sim_health),
        ("GET", "/_sim/requests", sim_requests),
        ("POST", "/_sim/reset", sim_reset),
        ("GET", "/_sim/config", sim_config),
        ("POST", "/_sim/config", sim_config),
        ("POST", "/v1/chat/completions", chat_completions),
        ("POST", "/chat/completions", chat_completions),
        # Azure OpenAI: /openai/deployments/{deployment}/chat/completions?api-version=...
        ("POST", "/openai/deployments/{deployment}/chat/completions", chat_completions),
        ("GET", "/v1/models", list_models),
        ("GET", "/models", list_models),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's flags, shared by `python -m llm_simulator` and the command."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8901, help="port (0 picks a free one; default 8901)")
    add("--latency-ms", type=float, default=0.0, help="delay before every answer")
    add("--api-key", default="", help="require this bearer token (default: accept any)")
    add(
        "--answers",
        default=None,
        help='JSON file of canned answers: {"keyword": "answer", ...} (default: built in)',
    )
    add("--access-log", action="store_true", help="log every request")


def build_state(options: dict[str, Any]) -> SimState:
    config = SimConfig()
    changes: dict[str, Any] = {
        "latency_ms": options.get("latency_ms") or 0.0,
        "api_key": options.get("api_key") or "",
    }
    if options.get("answers"):
        with open(options["answers"], encoding="utf-8") as fh:
            changes["answers"] = json.load(fh)
    config.update(changes)
    return SimState(config)


def run(options: dict[str, Any]) -> None:
    simulator_run(options, lambda: make_app(build_state(options)), url_path="/v1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m llm_simulator",
        description="Local OpenAI-compatible Chat Completions simulator.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(vars(args))
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
