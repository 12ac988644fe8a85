"""Fixtures for the automatic replies: the LLM simulator, a workspace wired to it, inbound
messages through the Graph simulator, and a live stack (web + real worker).

Two ways to run the pipeline:

- ``receive(...)``: the Graph simulator builds the inbound webhook (opening the 24 h
  window on its side), the test POSTs it signed to the webhook view and processes it
  in-process; the pipeline and reply sends are then run by the test
  (``automate``), so each step can be asserted;
- ``live``: the simulator POSTs to a live server, a real Celery worker processes the
  webhook, runs the pipeline and delivers the reply; the test waits on the simulator's
  record of what Meta received.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from automation.models import AutomationSettings
from automation.services import inbound_automate, settings_for
from config import procs
from conversations.models import Direction, Message, MessageStatus
from conversations.services import reply_deliver
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS
from llm_simulator.testing import LLMSimulatorControl, LLMSimulatorProcess
from templates_sync.models import Template
from templates_sync.services import templates_sync
from tests.engine.conftest import wait_worker_ready, worker_env
from tests.webhooks.conftest import APP_SECRET, URL, VERIFY_TOKEN, sign
from webhooks.ingest import webhook_events_drain

PNID = DEMO_PHONE_NUMBER_IDS[0]
CUSTOMER = "919812345678"
LLM_KEY = "sk-test-automation-key"


@pytest.fixture(scope="session")
def llm_process() -> Iterator[LLMSimulatorProcess]:
    process = LLMSimulatorProcess().start()
    yield process
    process.stop()


@pytest.fixture
def llm_sim(llm_process) -> Iterator[LLMSimulatorControl]:
    """The LLM simulator, reset before and after the test."""
    llm_process.control.reset()
    yield llm_process.control
    llm_process.control.reset()


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.WHATSAPP_VERIFY_TOKEN = VERIFY_TOKEN
    return settings


@pytest.fixture
def automation(workspace, number, llm_sim, sim) -> AutomationSettings:
    """The workspace's settings with the LLM agent on, pointed at the LLM simulator.

    The Graph simulator's pair rate is off: these tests send a contact several replies
    within seconds, and the pacing of replies is the inbox's concern, tested there."""
    sim.set_faults(pair_rate_seconds=0)
    found = settings_for(workspace.pk)
    found.llm_enabled = True
    found.llm_base_url = llm_sim.openai_base_url
    found.llm_model = "sim-model"
    found.llm_api_key = LLM_KEY
    found.llm_system_prompt = "You are Acme's assistant."
    found.llm_knowledge = "Open 10 am to 8 pm."
    found.save()
    return found


@pytest.fixture
def templates(workspace, number) -> dict[str, Template]:
    result = templates_sync(workspace=workspace, number=number)
    assert not result.errors, result.errors
    return {t.name: t for t in Template.objects.filter(workspace=workspace, language="en_US")}


@pytest.fixture
def receive(client, sim, number) -> Callable[..., Message]:
    """``receive(text, sender=CUSTOMER, **inbound)``: the contact's message arrives through
    the webhook view and is stored; returns the inbound Message (nothing automated yet)."""

    def run(text: str | None = None, *, sender: str = CUSTOMER, **inbound: Any) -> Message:
        answer = sim.inbound(sender, phone_number_id=PNID, text=text, **inbound)
        body = json.dumps(answer["payload"]).encode()
        response = client.post(
            URL, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sign(body)
        )
        assert response.status_code == 200, response.content
        while webhook_events_drain():
            pass
        return Message.objects.get(wamid=answer["message_id"], direction=Direction.IN)

    return run


@pytest.fixture
def automate() -> Callable[[Message], dict[str, Any]]:
    """Run the pipeline on an inbound message, then deliver the replies it queued (what
    the worker does after commit); returns the recorded decision."""

    def run(message: Message) -> dict[str, Any]:
        decision = inbound_automate(message_id=message.pk)
        for reply in Message.objects.filter(
            conversation_id=message.conversation_id,
            direction=Direction.OUT,
            status=MessageStatus.QUEUED,
        ).order_by("pk"):
            reply_deliver(reply.pk)
        message.refresh_from_db()
        return decision

    return run


def sent_texts(sim, to: str = CUSTOMER) -> list[str | None]:
    """The free-form texts Meta accepted for ``to``, oldest first."""
    return [m["text"] for m in sim.messages(to=to) if m["type"] == "text"]


def wait_until(check: Callable[[], Any], *, timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


@dataclass
class Live:
    sim: Any
    worker: procs.ManagedProcess

    def inbound(self, text: str | None = None, *, sender: str = CUSTOMER, **kw: Any) -> str:
        """The contact sends a message (webhook POSTed to the live server); its wamid."""
        answer = self.sim.inbound(sender, phone_number_id=PNID, text=text, **kw)
        assert answer["delivered"], answer
        return answer["message_id"]

    def decided(self, wamid: str, timeout: float = 30) -> Message:
        """The inbound Message once the pipeline recorded its decision."""

        def done():
            message = Message.objects.filter(wamid=wamid, direction=Direction.IN).first()
            return message if message is not None and message.automation.get("outcome") else None

        return wait_until(done, timeout=timeout, what=f"the decision on {wamid}")


@pytest.fixture
def live(sim, live_server, settings, tmp_path, number) -> Iterator[Live]:
    """The Graph simulator posting webhooks to a live server and a real worker on the
    webhooks and replies queues (test database, test Redis)."""
    sim.set_faults(callback_url=f"{live_server.url}{URL}", app_secret=APP_SECRET)
    worker = procs.celery_worker(
        "auto",
        "replies,webhooks,default",
        concurrency=2,
        env=worker_env(sim, settings, WHATSAPP_APP_SECRET=APP_SECRET),
    )
    worker.log_dir = tmp_path
    worker.start()
    try:
        wait_worker_ready(worker)
        yield Live(sim, worker)
    finally:
        worker.stop(timeout=10)
