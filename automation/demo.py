"""The automatic replies part of ``manage.py demo``: contacts answer the demo campaign.

Some reply STOP (suppressed, confirmed once), some ask questions (answered by the LLM
agent through the local LLM simulator), one asks for a person (handed over). The
contacts' messages go through the Graph simulator's inbound webhooks, so the whole
product path runs: webhook, inbox, pipeline, reply through the number's limiter.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from automation.services import settings_for
from campaigns.models import Campaign, RecipientStatus, Suppression
from conversations.models import Direction, Message, SentBy
from graph_simulator.testing import SimulatorControl

# (what the contact writes, what the demo expects to happen)
SCRIPT = [
    ("STOP", "opted_out"),
    ("बंद करो", "opted_out"),
    ("Stop promotions", "opted_out"),
    ("What is the price?", "llm_replied"),
    ("When will my order be delivered?", "llm_replied"),
    ("Are you open on Sunday? What are your hours?", "llm_replied"),
    ("Can I talk to a human please?", "handed_over"),
]
KNOWLEDGE = (
    "Festive offer: 20% off everything until Sunday. Delivery in 3 to 5 working days. "
    "Open 10 am to 8 pm, Monday to Saturday."
)


def demo_replies(
    *,
    campaign: Campaign,
    graph_url: str,
    llm_url: str,
    say: Callable[[str], None],
    timeout: float = 60,
) -> dict[str, int]:
    """Plays SCRIPT with the campaign's first contacts; returns the outcomes counted."""
    workspace_id = campaign.workspace_id
    settings = settings_for(workspace_id)
    settings.llm_enabled = True
    settings.llm_base_url = llm_url
    settings.llm_model = "demo-model"
    settings.llm_knowledge = KNOWLEDGE
    settings.save()
    say(f"auto-replies: LLM agent on, through {llm_url}")
    recipients = list(
        campaign.recipients.filter(
            status__in=[RecipientStatus.SENT, RecipientStatus.DELIVERED, RecipientStatus.READ]
        )
        .select_related("number")
        .order_by("pk")[: len(SCRIPT)]
    )
    if len(recipients) < len(SCRIPT):
        say("auto-replies: not enough contacts reached to play the replies")
        return {}
    graph = SimulatorControl(graph_url)
    wamids = []
    for recipient, (text, _) in zip(recipients, SCRIPT, strict=True):
        answer = graph.inbound(
            recipient.phone.lstrip("+"),
            phone_number_id=recipient.number.phone_number_id,
            text=text,
            context_id=recipient.wamid,
        )
        wamids.append(answer["message_id"])
        say(f"  {recipient.phone} writes {text!r}")
    deadline = time.monotonic() + timeout
    decided: dict[str, str] = {}
    while time.monotonic() < deadline and len(decided) < len(wamids):
        for message in Message.objects.filter(
            workspace_id=workspace_id, direction=Direction.IN, wamid__in=wamids
        ):
            if message.automation.get("outcome"):
                decided[message.wamid] = message.automation["outcome"]
        time.sleep(0.3)
    _wait_sent(workspace_id, deadline)
    outcomes = Counter(decided.values())
    phones = [r.phone for r in recipients]
    counts = {
        "opted_out": outcomes["opted_out"],
        "suppressed": Suppression.objects.filter(
            workspace_id=workspace_id, phone__in=phones
        ).count(),
        "answered_by_bot": outcomes["llm_replied"],
        "handed_over": outcomes["handed_over"],
        "undecided": len(wamids) - len(decided),
        "confirmations": Message.objects.filter(
            workspace_id=workspace_id,
            conversation__contact__phone__in=phones,
            sent_by=SentBy.BOT,
            idempotency_key__startswith="opt-out:",
            wamid__gt="",
        ).count(),
        "bot_replies_accepted": Message.objects.filter(
            workspace_id=workspace_id,
            conversation__contact__phone__in=phones,
            direction=Direction.OUT,
            sent_by=SentBy.BOT,
            wamid__gt="",
        ).count(),
    }
    for (text, expected), wamid in zip(SCRIPT, wamids, strict=True):
        got = decided.get(wamid, "undecided")
        mark = "ok" if got == expected else f"expected {expected}"
        say(f"  {text!r}: {got} ({mark})")
    return counts


def _wait_sent(workspace_id: int, deadline: float) -> None:
    """Until the bot replies have Meta's answer (a wamid) or the time is up."""
    while time.monotonic() < deadline:
        if (
            not Message.objects.filter(
                workspace_id=workspace_id, direction=Direction.OUT, sent_by=SentBy.BOT, wamid=""
            )
            .exclude(status="failed")
            .exists()
        ):
            return
        time.sleep(0.3)
