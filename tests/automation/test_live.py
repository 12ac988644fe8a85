"""End to end with real processes: the Graph simulator posts the contact's messages to a live
server, a real Celery worker runs the pipeline and sends the replies, the LLM simulator
answers; the test reads what Meta (the Graph simulator) accepted."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from automation.models import DEFAULT_OPT_OUT_CONFIRMATION
from campaigns.models import Suppression
from conversations.models import Conversation, Note
from tests.automation.conftest import sent_texts, wait_until
from tests.factories import make_campaign, make_recipient

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_question_is_answered_a_stop_is_honoured_and_a_human_is_called(
    live, automation, sim, llm_sim
):
    asker, stopper, caller = "919811111111", "919822222222", "919833333333"

    question = live.inbound("What is the price?", sender=asker)
    stop = live.inbound("Stop!", sender=stopper)
    human = live.inbound("I want to talk to a human", sender=caller)

    assert live.decided(question).automation["outcome"] == "llm_replied"
    assert live.decided(stop).automation["outcome"] == "opted_out"
    assert live.decided(human).automation["outcome"] == "handed_over"

    wait_until(lambda: sent_texts(sim, to=asker) and sent_texts(sim, to=stopper), what="replies")
    assert sent_texts(sim, to=asker) == ["Our festive offer is 20% off everything until Sunday."]
    assert sent_texts(sim, to=stopper) == [DEFAULT_OPT_OUT_CONFIRMATION]
    assert sent_texts(sim, to=caller) == []
    assert list(Suppression.objects.values_list("phone", "source")) == [(f"+{stopper}", "keyword")]
    handed = Conversation.objects.get(contact__phone=f"+{caller}")
    assert handed.status == "pending"
    assert Note.objects.get(conversation=handed).text == "The contact asked to talk to a person."

    # The opted-out contact asks again: nothing more goes out, the LLM is not asked.
    asked = len(llm_sim.requests())
    again = live.inbound("what is the price?", sender=stopper)
    assert live.decided(again).automation["outcome"] == "opted_out"
    assert sent_texts(sim, to=stopper) == [DEFAULT_OPT_OUT_CONFIRMATION]
    assert len(llm_sim.requests()) == asked


def test_the_demo_replies_command_prints_the_counts(
    live, automation, templates, number, sim, llm_sim
):
    campaign = make_campaign(
        workspace=automation.workspace,
        numbers=[number],
        templates=[templates["seasonal_promo"]],
        status="completed",
    )
    for i in range(7):
        make_recipient(
            campaign=campaign,
            phone=f"+9198444{i:05d}",
            status="delivered",
            sent_at=timezone.now(),
            variables={"body.1": "Asha", "body.2": "FALL25"},
        )
    out = StringIO()
    call_command(
        "demo_replies",
        campaign.pk,
        graph_url=sim.base_url,
        llm_url=llm_sim.openai_base_url,
        stdout=out,
    )
    assert (
        "auto-replies: 3 opted out (3 suppressed, 3 confirmations sent), 3 answered by the bot, "
        "1 handed over to a person, 6 bot replies accepted by Meta"
    ) in out.getvalue()
