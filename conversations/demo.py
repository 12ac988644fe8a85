"""The demo's inbox: contacts of a sent campaign write back (questions, button presses),
an agent answers one of them, and the counts of what the inbox holds are returned."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from django.db.models import Count, Sum

from campaigns.models import Campaign, RecipientStatus
from conversations.models import Conversation, Message
from conversations.services import reply_send
from graph_simulator.testing import SimulatorControl

QUESTIONS = (
    "Is this offer valid in my city?",
    "Do you deliver on Sundays?",
    "What sizes do you have?",
    "Can I pay cash on delivery?",
)
BUTTONS = (("Shop now", "SHOP_NOW"), ("Talk to us", "TALK_TO_US"))


def demo_inbox(
    *,
    campaign: Campaign,
    graph_url: str,
    say: Callable[[str], None],
    contacts: int = 12,
    timeout: float = 60,
) -> dict[str, int]:
    """``contacts`` recipients who received ``campaign`` reply through the simulator (a
    question or a quick-reply button, to the campaign's message); waits until the inbox
    threaded them, has an agent answer the first, and returns the inbox's counts."""
    simulator = SimulatorControl(graph_url)
    try:
        chosen = list(
            campaign.recipients.filter(
                status__in=[RecipientStatus.DELIVERED, RecipientStatus.READ, RecipientStatus.SENT]
            )
            .select_related("number")
            .order_by("pk")[:contacts]
        )
        if not chosen:
            say("inbox: no delivered campaign message to reply to")
            return {}
        say(f"inbox: {len(chosen)} contacts write back (questions and button presses)...")
        wamids = []
        for index, recipient in enumerate(chosen):
            sender = recipient.phone.lstrip("+")
            common = {
                "phone_number_id": recipient.number.phone_number_id,
                "context_id": recipient.wamid,
                "name": f"Demo contact {index + 1}",
            }
            if index % 3 == 2:
                title, payload = BUTTONS[index % len(BUTTONS)]
                answer = simulator.inbound(
                    sender, type="button", text=title, payload=payload, **common
                )
            else:
                answer = simulator.inbound(
                    sender, type="text", text=QUESTIONS[index % len(QUESTIONS)], **common
                )
            wamids.append(answer["message_id"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if Message.objects.filter(wamid__in=wamids).count() == len(wamids):
                break
            time.sleep(0.5)
        first = Conversation.objects.filter(
            workspace_id=campaign.workspace_id, contact__phone=chosen[0].phone
        ).first()
        reply = None
        if first is not None:
            reply = reply_send(
                conversation=first,
                text="Thanks for writing! Yes, the offer is valid everywhere we deliver.",
                idempotency_key="demo-inbox-reply",
            )
            while time.monotonic() < deadline:
                reply.refresh_from_db()
                if reply.status not in ("queued", "unknown"):
                    break
                time.sleep(0.2)
        return _counts(campaign, wamids, reply)
    finally:
        simulator.close()


def _counts(campaign: Campaign, wamids: list[str], reply: Message | None) -> dict[str, int]:
    conversations = Conversation.objects.filter(workspace_id=campaign.workspace_id)
    kinds = Counter(Message.objects.filter(wamid__in=wamids).values_list("kind", flat=True))
    return {
        "conversations": conversations.count(),
        "open": conversations.filter(status="open").count(),
        "from_campaign": conversations.filter(campaign=campaign).count(),
        "unread": conversations.aggregate(n=Sum("unread"))["n"] or 0,
        "inbound_threaded": sum(kinds.values()),
        "questions": kinds.get("text", 0),
        "button_presses": kinds.get("button", 0),
        "agent_reply_status": reply.status if reply is not None else "none",
        "messages": Message.objects.filter(conversation__in=conversations).aggregate(n=Count("pk"))[
            "n"
        ],
    }
