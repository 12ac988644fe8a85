"""Opt-out and opt-in: keywords after normalisation, buttons, suppression everywhere, the one
confirmation, and nothing more to an opted-out contact."""

from __future__ import annotations

import pytest
from django.utils import timezone

from automation.models import DEFAULT_OPT_OUT_CONFIRMATION
from campaigns.models import (
    CampaignStatus,
    ImportRowError,
    RecipientStatus,
    Suppression,
    SuppressionLift,
)
from conversations.models import Direction, Message, SentBy
from tests.automation.conftest import CUSTOMER, sent_texts
from tests.campaigns.conftest import run_import
from tests.factories import make_campaign, make_recipient

PHONE = f"+{CUSTOMER}"


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "  stop!! ",
        "Stop 🛑",
        "Stop \u270b\ufe0f",  # raised hand + variation selector 16 (a mark, not a symbol)
        "STOP \U0001f44d\U0001f3fd",  # thumbs up + skin tone
        "\uff33\uff34\uff2f\uff30",  # full-width STOP: NFKC makes it plain
        "opt-out",
        "Opt Out",
        "Stop   PROMOTIONS.",
        "unsubscribe",
        "बंद",
        "बंद करो।",
        "रोकें",
    ],
)
def test_an_opt_out_keyword_suppresses_and_confirms_once(
    text, receive, automate, automation, sim, llm_sim
):
    decision = automate(receive(text))

    [suppression] = Suppression.objects.all()
    assert (suppression.workspace_id, suppression.phone, suppression.source) == (
        automation.workspace_id,
        PHONE,
        "keyword",
    )
    assert suppression.reason == f"replied {text!r}"
    assert decision["outcome"] == "opted_out"
    assert [s["decision"] for s in decision["steps"]] == ["first", "suppressed", "sent"]
    assert sent_texts(sim) == [DEFAULT_OPT_OUT_CONFIRMATION]
    [reply] = Message.objects.filter(direction=Direction.OUT)
    assert (reply.sent_by, reply.text, reply.status) == (
        SentBy.BOT,
        DEFAULT_OPT_OUT_CONFIRMATION,
        "accepted",
    )
    assert llm_sim.requests() == []


def test_only_the_whole_message_is_a_keyword(receive, automate, automation, sim):
    decision = automate(receive("please don't stop the offers"))
    assert Suppression.objects.count() == 0
    assert decision["outcome"] == "llm_replied"


def test_the_workspaces_own_keywords_replace_the_defaults(receive, automate, automation, sim):
    automation.opt_out_keywords = ["NAHI CHAHIYE"]
    automation.opt_out_confirmation = "Theek hai, ab koi message nahi."
    automation.save()
    assert automate(receive("STOP"))["outcome"] == "llm_replied"
    assert Suppression.objects.count() == 0
    assert automate(receive("Nahi chahiye!"))["outcome"] == "opted_out"
    assert Suppression.objects.get().source == "keyword"
    assert sent_texts(sim)[-1] == "Theek hai, ab koi message nahi."


@pytest.mark.parametrize(
    ("text", "payload"),
    [("Stop updates", "STOP_UPDATES"), ("Stop promotions", "marketing-stop"), ("No", "STOP")],
)
def test_an_opt_out_quick_reply_button_counts_by_text_or_payload(
    text, payload, receive, automate, automation, sim
):
    message = receive(text, type="button", payload=payload)
    assert message.kind == "button"
    decision = automate(message)
    assert decision["outcome"] == "opted_out"
    assert Suppression.objects.get().source == "button"
    assert sent_texts(sim) == [DEFAULT_OPT_OUT_CONFIRMATION]


def test_a_button_that_is_not_an_opt_out_goes_on(receive, automate, automation):
    decision = automate(receive("Track", type="button", payload="TRACK_ORDER"))
    assert Suppression.objects.count() == 0
    assert decision["outcome"] == "llm_replied"


def test_the_suppression_cancels_unsent_rows_in_every_campaign_of_the_workspace(
    receive, automate, automation, templates, number, other_workspace
):
    template = templates["seasonal_promo"]

    def campaign(name, status):
        return make_campaign(
            workspace=automation.workspace,
            name=name,
            numbers=[number],
            templates=[template],
            status=status,
        )

    running = campaign("Running", CampaignStatus.RUNNING)
    paused = campaign("Paused", CampaignStatus.PAUSED)
    scheduled = campaign("Scheduled", CampaignStatus.SCHEDULED)
    waiting = [
        make_recipient(campaign=running, phone=PHONE),
        make_recipient(campaign=paused, phone=PHONE, status=RecipientStatus.RETRY_WAIT),
        make_recipient(campaign=scheduled, phone=PHONE),
    ]
    already = make_recipient(
        campaign=campaign("Earlier", CampaignStatus.RUNNING),
        phone=PHONE,
        status=RecipientStatus.SENT,
        wamid="wamid.SENT",
    )
    someone_else = make_recipient(campaign=running, phone="+919800000099")

    automate(receive("STOP"))

    for row in waiting:
        row.refresh_from_db()
        assert (row.status, row.error_title, row.error_details) == (
            RecipientStatus.CANCELLED,
            "Opted out",
            "replied 'STOP'",
        )
    already.refresh_from_db()
    someone_else.refresh_from_db()
    assert (already.status, someone_else.status) == (RecipientStatus.SENT, RecipientStatus.PENDING)

    # A later import reports the contact as suppressed, row by row.
    draft = campaign("Next", CampaignStatus.DRAFT)
    job = run_import(draft, "phone,1,2\n9812345678,Asha,A1\n9800000098,Ravi,R2\n")
    assert (job.accepted, job.suppressed) == (1, 1)
    assert list(ImportRowError.objects.filter(job=job).values_list("row", "kind", "reason")) == [
        (2, "suppressed", "opted out: replied 'STOP'")
    ]


def test_an_opted_out_contact_gets_nothing_more(receive, automate, automation, sim, llm_sim):
    automate(receive("STOP"))
    again = automate(receive("stop"))
    assert again["outcome"] == "opted_out"
    assert again["steps"][1]["decision"] == "already suppressed"
    question = automate(receive("what is the price?"))
    assert question["outcome"] == "opted_out"
    assert question["steps"][-1]["decision"] == "contact opted out: no automatic reply"
    # The one confirmation, nothing else.
    assert sent_texts(sim) == [DEFAULT_OPT_OUT_CONFIRMATION]
    assert llm_sim.requests() == []


def test_no_confirmation_outside_the_window(receive, automate, automation, sim):
    message = receive("STOP")
    message.conversation.window_expires_at = timezone.now()
    message.conversation.save(update_fields=["window_expires_at"])
    decision = automate(message)
    assert decision["outcome"] == "opted_out"
    assert decision["steps"][-1]["decision"] == "not sent: the 24 h window is closed"
    assert Suppression.objects.count() == 1
    assert sent_texts(sim) == []


def test_an_empty_confirmation_text_sends_none(receive, automate, automation, sim):
    automation.opt_out_confirmation = ""
    automation.save()
    decision = automate(receive("STOP"))
    assert decision["steps"][-1]["decision"] == "no confirmation text set"
    assert sent_texts(sim) == []


def test_opting_back_in_lifts_the_suppression_and_is_recorded(
    receive, automate, automation, sim, llm_sim
):
    automate(receive("STOP"))
    suppression = Suppression.objects.get()
    decision = automate(receive("Start"))
    assert decision["outcome"] == "opted_in"
    assert Suppression.objects.count() == 0
    [lift] = SuppressionLift.objects.all()
    assert (lift.phone, lift.source, lift.reason, lift.suppressed_source) == (
        PHONE,
        "keyword",
        "replied 'Start'",
        "keyword",
    )
    assert lift.suppressed_at == suppression.created_at
    # Back in: questions are answered again.
    assert automate(receive("what is the price?"))["outcome"] == "llm_replied"
    assert sent_texts(sim) == [
        DEFAULT_OPT_OUT_CONFIRMATION,
        "Our festive offer is 20% off everything until Sunday.",
    ]


def test_an_opt_in_keyword_from_a_contact_never_suppressed_changes_nothing(
    receive, automate, automation
):
    decision = automate(receive("SUBSCRIBE"))
    assert decision["outcome"] == "opt_in_not_suppressed"
    assert SuppressionLift.objects.count() == 0


def test_stop_in_a_conversation_a_person_owns_still_suppresses(
    receive, automate, automation, owner, sim
):
    first = receive("hello")
    conversation = first.conversation
    conversation.assigned_to = owner
    conversation.save(update_fields=["assigned_to"])
    assert automate(receive("STOP"))["outcome"] == "opted_out"
    assert Suppression.objects.count() == 1
    assert sent_texts(sim) == [DEFAULT_OPT_OUT_CONFIRMATION]


def test_a_message_is_decided_once(receive, automate, automation, sim):
    message = receive("STOP")
    first = automate(message)
    assert automate(message) == {"outcome": "duplicate"}
    message.refresh_from_db()
    assert message.automation == first
    assert sent_texts(sim) == [DEFAULT_OPT_OUT_CONFIRMATION]
