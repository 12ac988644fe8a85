"""Fixtures for the inbox: the demo numbers and templates (synced from the simulator),
inbound messages made by the simulator and delivered through the real webhook view,
and real workers (``start_worker``, with the ``replies`` queue)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from conversations.models import Conversation, Message
from tests.engine.conftest import engine, start_worker, worker_env  # noqa: F401
from tests.webhooks.conftest import APP_SECRET, URL, process_received, sign

__all__ = ["APP_SECRET", "URL", "wait_for"]


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.WHATSAPP_VERIFY_TOKEN = "test-verify-token"
    return settings


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def post_webhook(client):
    """POST a payload, signed, through the real webhook view (stored, not processed)."""

    def send(payload: dict) -> None:
        raw = json.dumps(payload).encode()
        response = client.post(
            URL, data=raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sign(raw)
        )
        assert response.status_code == 200, response.content

    return send


@pytest.fixture
def inbound(sim, post_webhook):
    """``inbound(sender, **kw)``: the simulator builds a user's message (any type, and
    opens its 24 h window), our webhook view stores it and it is processed here; returns
    the simulator's answer (``message_id``, ``payload``). ``process=False`` only stores it;
    ``redeliver=`` posts a payload again as it is."""

    def send(sender: str = "919800000001", *, process: bool = True, redeliver=None, **kw):
        answer = sim.inbound(sender, **kw) if redeliver is None else {"payload": redeliver}
        post_webhook(answer["payload"])
        if process:
            process_received()
        return answer

    return send


@pytest.fixture
def number(engine):  # noqa: F811 - the engine fixture, imported above
    return engine.numbers[0]


def conversation_of(phone: str) -> Conversation:
    return Conversation.objects.select_related("contact").get(contact__phone=phone)


def timeline(conversation: Conversation) -> list[tuple[str, str, str]]:
    return [
        (m.direction, m.kind, m.text)
        for m in Message.objects.filter(conversation=conversation).order_by("created_at", "pk")
    ]
