"""The LLM agent: the exact request (prompt, knowledge, campaign context, history), the exact
reply sent to Meta, hand-over, fallbacks and guards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automation.agent import HANDOFF_TOOL
from conversations.models import Conversation, Direction, Message, MessageKind, Note, SentBy
from conversations.signals import handed_over
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS
from tests.automation.conftest import CUSTOMER, LLM_KEY, sent_texts
from tests.factories import make_campaign, make_number, make_recipient

PHONE = f"+{CUSTOMER}"
PRICE_ANSWER = "Our festive offer is 20% off everything until Sunday."
HANDOFF_LINE = (
    "To hand the conversation over to a person, call the handoff tool with a reason; "
    "if you cannot call tools, answer exactly [[HANDOFF]] and nothing else."
)


@pytest.fixture
def handovers():
    seen = []

    def receiver(sender, conversation, reason, **kwargs):
        seen.append((conversation.pk, reason))

    handed_over.connect(receiver, dispatch_uid="test-handovers")
    yield seen
    handed_over.disconnect(dispatch_uid="test-handovers")


def test_the_request_carries_the_prompt_knowledge_campaign_and_history(
    receive, automate, automation, templates, number, sim, llm_sim
):
    template = templates["seasonal_promo"]
    campaign = make_campaign(
        workspace=automation.workspace,
        name="Diwali",
        numbers=[number],
        templates=[template],
        status="running",
        variable_mapping={str(template.pk): {"body.1": "first_name", "body.2": "code"}},
    )
    make_recipient(
        campaign=campaign,
        phone=PHONE,
        template=template,
        number=number,
        status="delivered",
        wamid="wamid.CAMPAIGN.1",
        sent_at=timezone.now() - timedelta(minutes=5),
        variables={"body.1": "Asha", "body.2": "FALL25"},
    )
    message = receive("What is the price?", context_id="wamid.CAMPAIGN.1", name="Asha K")

    decision = automate(message)

    [request] = llm_sim.requests()
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == f"Bearer {LLM_KEY}"
    assert request["body"] == {
        "model": "sim-model",
        "messages": [
            {
                "role": "system",
                "content": "You are Acme's assistant.\n\n"
                "Business information:\nOpen 10 am to 8 pm.\n\n"
                "The customer's name: Asha K.\n\n"
                'The customer is answering our campaign "Diwali" (template seasonal_promo). '
                "The message they received:\n"
                "Hi Asha, use code FALL25 for 20% off this week.\n"
                "Their details from our contact list: code=FALL25, first_name=Asha.\n\n"
                + HANDOFF_LINE,
            },
            {"role": "assistant", "content": "Hi Asha, use code FALL25 for 20% off this week."},
            {"role": "user", "content": "What is the price?"},
        ],
        "tools": [HANDOFF_TOOL],
        "temperature": 0.3,
        "max_tokens": 300,
    }
    [sent] = [m for m in sim.messages(to=CUSTOMER) if m["type"] == "text"]
    assert sent["phone_number_id"] == DEMO_PHONE_NUMBER_IDS[0]
    assert sent["payload"]["text"]["body"] == PRICE_ANSWER
    assert decision["outcome"] == "llm_replied"
    reply = Message.objects.get(pk=decision["reply_id"])
    assert (reply.sent_by, reply.text, reply.wamid) == (SentBy.BOT, PRICE_ANSWER, sent["wamid"])
    usage = request["answer"]["usage"]
    assert reply.automation["model"] == "sim-model"
    assert reply.automation["usage"] == usage
    assert reply.automation["in_reply_to"] == message.pk
    assert isinstance(reply.automation["latency_ms"], int)
    assert decision["usage"] == usage


def test_the_history_is_the_last_20_messages(receive, automate, automation, llm_sim):
    first = receive("hello")
    conversation = first.conversation
    base = timezone.now() - timedelta(hours=1)
    Message.objects.filter(pk=first.pk).update(created_at=base)
    for i in range(24):
        Message.objects.create(
            workspace_id=conversation.workspace_id,
            conversation=conversation,
            direction=Direction.IN if i % 2 == 0 else Direction.OUT,
            kind=MessageKind.TEXT,
            text=f"turn {i}",
            status="received" if i % 2 == 0 else "delivered",
            sent_by=SentBy.CONTACT if i % 2 == 0 else SentBy.AGENT,
            created_at=base + timedelta(minutes=i + 1),
        )
    automate(receive("price?"))
    [request] = llm_sim.requests()
    turns = request["body"]["messages"][1:]
    assert len(turns) == 20
    assert turns[0] == {"role": "assistant", "content": "turn 5"}
    assert turns[-2:] == [
        {"role": "assistant", "content": "turn 23"},
        {"role": "user", "content": "price?"},
    ]


def test_asking_for_a_human_hands_over_and_sends_nothing(
    receive, automate, automation, sim, handovers
):
    message = receive("Can I talk to a human please?")
    decision = automate(message)
    assert decision["outcome"] == "handed_over"
    assert decision["reason"] == "The contact asked to talk to a person."
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert (conversation.status, conversation.assigned_to_id) == ("pending", None)
    [note] = Note.objects.filter(conversation=conversation)
    assert (note.by, note.text) == ("bot", "The contact asked to talk to a person.")
    assert handovers == [(conversation.pk, "The contact asked to talk to a person.")]
    assert sent_texts(sim) == []
    # Waiting for a person: the bot stays quiet.
    later = automate(receive("hello?"))
    assert later["outcome"] == "human_owns"
    assert sent_texts(sim) == []


def test_a_model_without_tools_hands_over_with_the_sentinel(
    receive, automate, automation, llm_sim, sim, handovers
):
    llm_sim.configure(ignore_tools=True)
    decision = automate(receive("get me an agent"))
    assert decision["outcome"] == "handed_over"
    assert len(handovers) == 1
    assert sent_texts(sim) == []


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 500}, "the LLM answered HTTP 500"),
        ({"status": 429}, "the LLM answered HTTP 429"),
        ({"hang_s": 3}, "the LLM did not answer within 1 s"),
    ],
)
def test_an_llm_failure_hands_over_by_default(
    fault, reason, receive, automate, automation, llm_sim, sim, handovers
):
    automation.llm_timeout_seconds = 1
    automation.save()
    llm_sim.configure(faults=[fault])
    message = receive("price?")
    decision = automate(message)
    expected = f"The assistant could not answer ({reason}); a person should reply."
    assert decision["outcome"] == "handed_over"
    assert decision["steps"][-2]["decision"] == f"failed: {reason}"
    assert handovers == [(message.conversation_id, expected)]
    assert sent_texts(sim) == []
    # One attempt only: the SDK's own retries are off.
    assert len(llm_sim.requests()) == 1


def test_an_llm_failure_sends_the_fallback_text_when_chosen(
    receive, automate, automation, llm_sim, sim, handovers
):
    automation.llm_fallback = "text"
    automation.llm_fallback_text = "Thanks! Our team will answer you shortly."
    automation.save()
    llm_sim.configure(faults=[{"status": 503}])
    decision = automate(receive("price?"))
    assert decision["outcome"] == "fallback_text"
    assert sent_texts(sim) == ["Thanks! Our team will answer you shortly."]
    assert handovers == []


def test_no_llm_when_it_is_off(receive, automate, automation, llm_sim, sim):
    automation.llm_enabled = False
    automation.save()
    decision = automate(receive("price?"))
    assert decision["outcome"] == "no_reply"
    assert llm_sim.requests() == []
    assert sent_texts(sim) == []


def test_no_reply_outside_the_window(receive, automate, automation, llm_sim, sim):
    message = receive("price?")
    Conversation.objects.filter(pk=message.conversation_id).update(
        window_expires_at=timezone.now() - timedelta(seconds=1)
    )
    decision = automate(message)
    assert decision["outcome"] == "llm_guarded"
    assert decision["steps"][-1]["decision"] == "not asked: the 24 h window is closed"
    assert llm_sim.requests() == []


def test_no_reply_to_one_of_the_workspaces_own_numbers(receive, automate, automation, llm_sim, sim):
    make_number(
        workspace=automation.workspace,
        label="second",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        display_phone_number="+1 555-000-0002",
    )
    decision = automate(receive("price?", sender="15550000002"))
    assert decision["outcome"] == "own_number"
    assert llm_sim.requests() == []
    assert sent_texts(sim, to="15550000002") == []


def test_at_most_n_bot_replies_per_conversation_in_10_minutes(
    receive, automate, automation, llm_sim, sim
):
    automation.llm_max_replies_per_10_minutes = 2
    automation.save()
    outcomes = [automate(receive(text))["outcome"] for text in ("price?", "hours?", "refund?")]
    assert outcomes == ["llm_replied", "llm_replied", "llm_guarded"]
    assert len(llm_sim.requests()) == 2
    assert len(sent_texts(sim)) == 2


def test_at_most_k_bot_replies_in_a_row_without_a_new_message(
    receive, automate, automation, llm_sim
):
    automation.llm_max_consecutive_replies = 1
    automation.save()
    message = receive("price?")
    # A bot reply already went out after this message (e.g. a rule and the agent both).
    Message.objects.create(
        workspace_id=message.workspace_id,
        conversation_id=message.conversation_id,
        direction=Direction.OUT,
        kind=MessageKind.TEXT,
        text="earlier",
        status="delivered",
        sent_by=SentBy.BOT,
        created_at=message.created_at + timedelta(seconds=1),
    )
    decision = automate(message)
    assert decision["outcome"] == "llm_guarded"
    assert decision["steps"][-1]["decision"] == (
        "not asked: 1 bot replies in a row without a new message (the cap is 1)"
    )
    assert llm_sim.requests() == []


def test_an_assigned_conversation_gets_no_automatic_reply(
    receive, automate, automation, owner, llm_sim, sim
):
    first = receive("hello")
    Conversation.objects.filter(pk=first.conversation_id).update(assigned_to=owner)
    decision = automate(receive("price?"))
    assert decision["outcome"] == "human_owns"
    assert decision["steps"][-1]["decision"] == "assigned to a person"
    assert llm_sim.requests() == []
    assert sent_texts(sim) == []


def test_the_bot_is_quiet_while_a_person_replied_recently(
    receive, automate, automation, agent, llm_sim, sim
):
    first = receive("hello")
    reply = Message.objects.create(
        workspace_id=first.workspace_id,
        conversation_id=first.conversation_id,
        direction=Direction.OUT,
        kind=MessageKind.TEXT,
        text="Hi, Arjun here",
        status="delivered",
        sent_by=SentBy.AGENT,
        user=agent,
        created_at=timezone.now() - timedelta(minutes=29),
    )
    decision = automate(receive("price?"))
    assert decision["outcome"] == "human_owns"
    assert decision["steps"][-1]["decision"] == "a person replied in the last 30 minutes"
    Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(minutes=31))
    assert automate(receive("price?"))["outcome"] == "llm_replied"
    assert len(llm_sim.requests()) == 1


def test_a_message_without_text_is_not_sent_to_the_llm(receive, automate, automation, llm_sim):
    decision = automate(receive(type="location", latitude=19.07, longitude=72.87))
    assert decision["outcome"] == "no_text"
    assert llm_sim.requests() == []
