"""The LLM agent: the context it is given, one Chat Completions call, what it answered.

Talks to any OpenAI-compatible endpoint through the official ``openai`` SDK with the
workspace's ``base_url`` (OpenAI, Azure OpenAI's v1 endpoint, Ollama, vLLM, LM
Studio). This module is the one place that calls the LLM; every failure comes out
as ``AgentError`` with a reason that never contains the API key.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import openai
from django.views.decorators.debug import sensitive_variables

from automation.models import AutomationSettings
from campaigns.models import Recipient
from conversations.models import Conversation, Direction, Message, MessageKind
from templates_sync.rendering import preview_text

logger = logging.getLogger(__name__)

# What a model without tool calls answers to hand over (the system prompt asks for it).
HANDOFF_SENTINEL = "[[HANDOFF]]"
HISTORY_LIMIT = 20
HANDOFF_TOOL = {
    "type": "function",
    "function": {
        "name": "handoff",
        "description": (
            "Hand the conversation over to a human agent: when the customer asks for a "
            "person, or you cannot answer from the business information."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {
                    "type": "string",
                    "description": "Why a person should take over, for the team.",
                }
            },
            "required": ["reason"],
        },
    },
}
# Azure OpenAI and several local servers want a key even when they ignore it.
NO_KEY = "not-needed"


class AgentError(Exception):
    """The LLM could not answer (timeout, HTTP error, refusal, empty answer)."""

    def __init__(self, reason: str, *, latency_ms: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.latency_ms = latency_ms


@dataclass
class AgentAnswer:
    """A reply text, or a hand-over with its reason; with the call's cost."""

    text: str = ""
    handoff_reason: str | None = None
    model: str = ""
    latency_ms: int = 0
    usage: dict[str, int] = field(default_factory=dict)


def _message_text(message: Message) -> str:
    if message.text:
        return message.text
    if message.kind == MessageKind.BUTTON and message.payload:
        return message.payload
    return f"[{message.kind}]"


def campaign_context(conversation: Conversation) -> dict[str, Any] | None:
    """The campaign the contact is answering: its name, template, the text they received
    and their CSV variables; None when they are not answering one."""
    if conversation.campaign_id is None or not conversation.contact.phone:
        return None
    recipient = (
        Recipient.objects.filter(
            campaign_id=conversation.campaign_id,
            phone=conversation.contact.phone,
            sent_at__isnull=False,
        )
        .select_related("campaign", "template")
        .order_by("-sent_at", "-pk")
        .first()
    )
    if recipient is None:
        return None
    variables = dict(conversation.contact.attributes or {}) or dict(recipient.variables or {})
    return {
        "campaign": recipient.campaign.name,
        "template": recipient.template.name,
        "received_text": preview_text(recipient.template, recipient.variables or {}),
        "variables": {str(k): str(v) for k, v in variables.items()},
    }


def system_prompt(settings: AutomationSettings, conversation: Conversation) -> str:
    """The workspace's prompt and knowledge, the contact and the campaign they answer."""
    contact = conversation.contact
    parts = [settings.llm_system_prompt.strip()]
    if settings.llm_knowledge.strip():
        parts.append("Business information:\n" + settings.llm_knowledge.strip())
    parts.append(f"The customer's name: {contact.name or 'unknown'}.")
    campaign = campaign_context(conversation)
    if campaign is not None:
        lines = [
            f'The customer is answering our campaign "{campaign["campaign"]}" '
            f"(template {campaign['template']}). The message they received:",
            campaign["received_text"],
        ]
        if campaign["variables"]:
            details = ", ".join(f"{k}={v}" for k, v in sorted(campaign["variables"].items()))
            lines.append(f"Their details from our contact list: {details}.")
        parts.append("\n".join(lines))
    parts.append(
        "To hand the conversation over to a person, call the handoff tool with a reason; "
        f"if you cannot call tools, answer exactly {HANDOFF_SENTINEL} and nothing else."
    )
    return "\n\n".join(parts)


def history(conversation: Conversation, upto: Message) -> list[dict[str, str]]:
    """The last HISTORY_LIMIT messages up to ``upto``, oldest first, as chat turns."""
    rows = list(
        conversation.messages.filter(created_at__lte=upto.created_at)
        .exclude(direction=Direction.OUT, status="failed")
        .order_by("-created_at", "-pk")[:HISTORY_LIMIT]
    )
    rows.reverse()
    return [
        {
            "role": "user" if m.direction == Direction.IN else "assistant",
            "content": _message_text(m),
        }
        for m in rows
    ]


def request_messages(
    settings: AutomationSettings, conversation: Conversation, message: Message
) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt(settings, conversation)},
        *history(conversation, message),
    ]


def agent_answer(
    settings: AutomationSettings, conversation: Conversation, message: Message
) -> AgentAnswer:
    """Ask the workspace's model for the reply to ``message``; raises AgentError."""
    client = _client(
        settings.llm_base_url, settings.llm_api_key or NO_KEY, settings.llm_timeout_seconds
    )
    started = time.monotonic()
    try:
        completion = client.chat.completions.create(
            model=settings.llm_model,
            messages=request_messages(settings, conversation, message),
            tools=[HANDOFF_TOOL],
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )
    except openai.APITimeoutError:
        raise AgentError(
            f"the LLM did not answer within {settings.llm_timeout_seconds:g} s",
            latency_ms=_ms(started),
        ) from None
    except openai.APIStatusError as error:
        raise AgentError(
            f"the LLM answered HTTP {error.status_code}", latency_ms=_ms(started)
        ) from None
    except openai.APIError as error:
        raise AgentError(
            f"the LLM could not be reached: {type(error).__name__}", latency_ms=_ms(started)
        ) from None
    latency = _ms(started)
    usage = completion.usage
    answer = AgentAnswer(
        model=completion.model or settings.llm_model,
        latency_ms=latency,
        usage={
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        if usage
        else {},
    )
    if not completion.choices:
        raise AgentError("the LLM answered no choices", latency_ms=latency)
    reply = completion.choices[0].message
    for call in reply.tool_calls or []:
        function = getattr(call, "function", None)
        if function is not None and function.name == "handoff":
            answer.handoff_reason = _handoff_reason(function.arguments)
            return answer
    text = (reply.content or "").strip()
    if text.startswith(HANDOFF_SENTINEL):
        answer.handoff_reason = text[len(HANDOFF_SENTINEL) :].strip(" :-") or (
            "The assistant handed the conversation over."
        )
        return answer
    if not text:
        raise AgentError("the LLM answered an empty message", latency_ms=latency)
    answer.text = text[:4096]
    return answer


@functools.lru_cache(maxsize=64)
@sensitive_variables("api_key")
def _client(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    """One client (and its connection pool) per endpoint, key and timeout, per process:
    a new one per message would pay a TLS handshake on every reply."""
    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        # One attempt: a late answer is worse than the fallback (a person, or a text).
        max_retries=0,
    )


def _handoff_reason(arguments: str) -> str:
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        parsed = {}
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return str(reason or "The assistant handed the conversation over.")[:1000]


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


__all__ = [
    "HANDOFF_SENTINEL",
    "AgentAnswer",
    "AgentError",
    "agent_answer",
    "campaign_context",
    "request_messages",
]
