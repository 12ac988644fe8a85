"""The automatic-reply pipeline, run once per inbound message, and the automation settings.

``inbound_automate`` takes one inbound Message through the steps of issue 13, in
order, and records on it (``Message.automation``) what each step decided and why:

1. dedupe: one run per (workspace, wamid), however often the task is delivered;
2. opt-out / opt-in: a whole-message keyword (or an opt-out quick-reply button)
   suppresses the phone in the workspace and sends the one confirmation, or lifts
   the suppression; an opted-out contact gets nothing more;
3. a conversation a person owns (assigned, handed over, or an agent replied in the
   last ``human_quiet_minutes``) gets no automatic reply;
4. keyword rules, in priority order, each with a cooldown per contact;
5. the LLM agent, when enabled, behind its guards (window, own numbers, caps), with
   the workspace's fallback on an error or timeout.

Every reply goes out through ``conversations.services.reply_send`` (the inbox's fast
path, counted against the number's limiter) with an idempotency key derived from the
inbound wamid, so a redelivered task never sends twice.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, Subquery
from django.utils import timezone

from automation.agent import AgentError, agent_answer
from automation.matching import (
    BUTTON_OPT_OUT_PHRASES,
    fill_variables,
    keyword_of,
    rule_matches,
)
from automation.models import AutomationSettings, Fallback, KeywordRule
from campaigns.models import SuppressionSource
from campaigns.services import suppression_ensure, suppression_lift
from config.redis import get_redis
from conversations.models import (
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
    SentBy,
)
from conversations.selectors import human_owns
from conversations.services import (
    OptedOut,
    ReplyError,
    WindowClosed,
    contact_opted_out,
    conversation_handover,
    message_automation_record,
    reply_deliver,
    reply_send,
)
from numbers.models import Number

logger = logging.getLogger(__name__)

# A run holds its claim this long (past Celery's hard time limit): a worker lost
# mid-run lets a redelivery try again, and the idempotency keys stop a second send.
CLAIM_SECONDS = 180
DONE_SECONDS = 7 * 24 * 3600
CAP_WINDOW = timedelta(minutes=10)
# Inbound kinds that carry words the steps can read.
TEXT_KINDS = frozenset({MessageKind.TEXT, MessageKind.BUTTON, MessageKind.INTERACTIVE})
BUTTON_KINDS = frozenset({MessageKind.BUTTON, MessageKind.INTERACTIVE})


def settings_for(workspace_id: int) -> AutomationSettings:
    """The workspace's automation settings, created with the defaults when missing."""
    found, _ = AutomationSettings.objects.get_or_create(workspace_id=workspace_id)
    return found


class _Run:
    """One pipeline run: the message, its conversation, and the decision being written."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self.conversation: Conversation = message.conversation
        self.contact = self.conversation.contact
        self.settings = settings_for(message.workspace_id)
        self.steps: list[dict[str, Any]] = []
        self.outcome = ""
        self.started = time.monotonic()

    def step(self, name: str, decision: str, **details: Any) -> None:
        self.steps.append({"step": name, "decision": decision, **details})

    def finish(self, outcome: str, **details: Any) -> dict[str, Any]:
        self.outcome = outcome
        record = {
            "outcome": outcome,
            "steps": self.steps,
            "at": timezone.now().isoformat(),
            # The whole run, LLM and sends included.
            "elapsed_ms": round((time.monotonic() - self.started) * 1000),
            **details,
        }
        message_automation_record(message=self.message, decision=record)
        return record


def inbound_automate(*, message_id: int) -> dict[str, Any]:
    """Runs the pipeline for one inbound Message; returns the recorded decision.

    A message already decided (or being decided by another worker) is left alone and
    ``{"outcome": "duplicate"}`` is returned without recording anything.
    """
    message = (
        Message.objects.select_related("conversation__contact", "conversation__number")
        .filter(pk=message_id, direction=Direction.IN)
        .first()
    )
    if message is None:
        return {"outcome": "missing"}
    if message.automation.get("outcome"):
        return {"outcome": "duplicate"}
    redis = get_redis()
    key = f"automation:wamid:{message.workspace_id}:{message.wamid or message.pk}"
    token = secrets.token_hex(8)
    if not redis.set(key, token, nx=True, ex=CLAIM_SECONDS):
        return {"outcome": "duplicate"}
    try:
        record = _pipeline(_Run(message))
    except BaseException:
        # Let a redelivery run it again (the idempotency keys guard the sends).
        if redis.get(key) == token:
            redis.delete(key)
        raise
    redis.set(key, "done", ex=DONE_SECONDS)
    return record


def _pipeline(run: _Run) -> dict[str, Any]:
    message, settings = run.message, run.settings
    run.step("dedupe", "first", wamid=message.wamid)
    words = _words_of(message)

    # 2. Opt-out and opt-in.
    opt = _opt_keyword(words, message.kind, settings)
    if opt is not None:
        return _opt(run, *opt)
    if contact_opted_out(run.contact):
        run.step("opt_out", "contact opted out: no automatic reply")
        return run.finish("opted_out")
    run.step("opt_out", "no opt-out or opt-in keyword")

    # Never answer ourselves: one of the workspace's numbers writing to another.
    if _own_number(run):
        run.step("guard", "the sender is one of the workspace's own numbers")
        return run.finish("own_number")

    # 3. A person owns the conversation.
    if run.conversation.status == ConversationStatus.PENDING:
        run.step("human", "handed over, waiting for a person")
        return run.finish("human_owns")
    if human_owns(run.conversation, settings.human_quiet_minutes):
        reason = (
            "assigned to a person"
            if run.conversation.assigned_to_id
            else f"a person replied in the last {settings.human_quiet_minutes} minutes"
        )
        run.step("human", reason)
        return run.finish("human_owns")
    run.step("human", "no person owns the conversation")

    if not words:
        run.step("rules", f"a {message.kind} message has no text to match")
        return run.finish("no_text")

    # 4. Keyword rules.
    done = _rules(run, words)
    if done is not None:
        return done

    # 5. The LLM agent.
    if not settings.llm_enabled:
        run.step("llm", "the LLM agent is off")
        return run.finish("no_reply")
    return _llm(run)


def _words_of(message: Message) -> list[str]:
    """The texts a step may match: the message's text, and a button's payload."""
    if message.kind not in TEXT_KINDS:
        return []
    found = [
        t for t in (message.text, message.payload if message.kind in BUTTON_KINDS else "") if t
    ]
    return list(dict.fromkeys(t.strip() for t in found if t.strip()))


def _opt_keyword(
    words: list[str], kind: str, settings: AutomationSettings
) -> tuple[str, str, str] | None:
    """("out" | "in", the keyword, its source) when the whole message is one."""
    button = kind in BUTTON_KINDS
    source = SuppressionSource.BUTTON if button else SuppressionSource.KEYWORD
    out_words = list(settings.opt_out_keywords) + (BUTTON_OPT_OUT_PHRASES if button else [])
    for text in words:
        keyword = keyword_of(text, out_words)
        if keyword:
            return "out", keyword, source
    for text in words:
        keyword = keyword_of(text, list(settings.opt_in_keywords))
        if keyword:
            return "in", keyword, source
    return None


def _opt(run: _Run, direction: str, keyword: str, source: str) -> dict[str, Any]:
    contact = run.contact
    if not contact.phone:
        run.step("opt_out", f"{direction} keyword {keyword!r}, but the phone is not known")
        return run.finish("opt_unknown_phone")
    if direction == "in":
        lift = suppression_lift(
            workspace_id=contact.workspace_id,
            phone=contact.phone,
            source=source,
            reason=f"replied {run.message.text or run.message.payload!r}"[:255],
        )
        run.step(
            "opt_in",
            "suppression lifted" if lift else "not suppressed: nothing to lift",
            keyword=keyword,
            source=source,
        )
        return run.finish("opted_in" if lift else "opt_in_not_suppressed")
    added = suppression_ensure(
        workspace_id=contact.workspace_id,
        phone=contact.phone,
        reason=f"replied {run.message.text or run.message.payload!r}"[:255],
        source=source,
    )
    run.step(
        "opt_out",
        "suppressed" if added else "already suppressed",
        keyword=keyword,
        source=source,
    )
    if not added:
        # Told once already: nothing more goes to them.
        return run.finish("opted_out")
    confirmation = run.settings.opt_out_confirmation.strip()
    if not confirmation:
        run.step("confirmation", "no confirmation text set")
        return run.finish("opted_out")
    try:
        reply = _reply(
            conversation=run.conversation,
            sent_by=SentBy.BOT,
            text=confirmation,
            allow_opted_out=True,
            idempotency_key=f"opt-out:{run.message.wamid or run.message.pk}",
        )
    except WindowClosed:
        run.step("confirmation", "not sent: the 24 h window is closed")
        return run.finish("opted_out")
    except ReplyError as error:
        run.step("confirmation", f"not sent: {error.detail}")
        return run.finish("opted_out")
    run.step("confirmation", "sent", reply_id=reply.pk)
    return run.finish("opted_out", reply_id=reply.pk)


def _reply(**kwargs: Any) -> Message:
    """``reply_send``, then the send itself at once in this task (already on the replies
    queue) instead of one more trip through the broker: the claim in ``reply_deliver``
    makes the queued delivery task find it sent and do nothing."""
    reply = reply_send(**kwargs)
    try:
        reply_deliver(reply.pk)
    except Exception:
        # The queued task tries again; the reply stays queued or unknown, never doubled.
        logger.warning("inline delivery of reply %s failed", reply.pk, exc_info=True)
    return reply


def _own_number(run: _Run) -> bool:
    digits = run.contact.phone.lstrip("+")
    if not digits:
        return False
    displays = Number.objects.filter(workspace_id=run.message.workspace_id).values_list(
        "display_phone_number", flat=True
    )
    return any("".join(ch for ch in d if ch.isdigit()) == digits for d in displays)


def _rules(run: _Run, words: list[str]) -> dict[str, Any] | None:
    conversation = run.conversation
    rules = (
        KeywordRule.objects.filter(workspace_id=run.message.workspace_id, active=True)
        .filter(Q(campaign__isnull=True) | Q(campaign_id=conversation.campaign_id))
        .filter(Q(numbers__isnull=True) | Q(numbers=conversation.number_id))
        .select_related("reply_template")
        .distinct()
        .order_by("priority", "pk")
    )
    redis = get_redis()
    for rule in rules:
        if not any(rule_matches(rule.match, rule.pattern, text) for text in words):
            continue
        if rule.cooldown_minutes:
            cooldown = f"automation:cooldown:{rule.pk}:{run.contact.pk}"
            if not redis.set(
                cooldown, run.message.wamid or "1", nx=True, ex=rule.cooldown_minutes * 60
            ):
                run.step("rules", "matched, in its cooldown for this contact", rule=rule.pk)
                continue
        return _rule_reply(run, rule)
    run.step("rules", "no rule matched")
    return None


def _variables(run: _Run) -> dict[str, str]:
    contact = run.contact
    return {
        **{str(k): str(v) for k, v in (contact.attributes or {}).items()},
        "name": contact.name,
        "phone": contact.phone,
    }


def _rule_reply(run: _Run, rule: KeywordRule) -> dict[str, Any]:
    variables = _variables(run)
    missing: list[str] = []
    send: dict[str, Any]
    if rule.reply_template_id:
        parameters = {}
        for key, value in (rule.reply_parameters or {}).items():
            parameters[key], gaps = fill_variables(str(value), variables)
            missing += gaps
        send = {"template": rule.reply_template, "parameters": parameters}
    else:
        text, missing = fill_variables(rule.reply_text, variables)
        send = {"text": text}
    try:
        reply = _reply(
            conversation=run.conversation,
            sent_by=SentBy.BOT,
            idempotency_key=f"rule:{run.message.wamid or run.message.pk}",
            **send,
        )
    except (WindowClosed, OptedOut, ReplyError) as error:
        run.step("rules", f"matched, reply not sent: {error.detail}", rule=rule.pk)
        return run.finish("rule_not_sent", rule=rule.pk)
    details = {"rule": rule.pk, "rule_name": rule.name, "reply_id": reply.pk}
    if missing:
        details["missing_variables"] = sorted(set(missing))
    run.step("rules", "matched, replied", **details)
    return run.finish("rule_replied", **details)


def _llm_guard(run: _Run) -> str | None:
    """Why the agent must not answer now, or None."""
    conversation, settings = run.conversation, run.settings
    if not conversation.window_open():
        return "the 24 h window is closed"
    bot = Q(direction=Direction.OUT, sent_by=SentBy.BOT)
    last_inbound = (
        Message.objects.filter(conversation=conversation, direction=Direction.IN)
        .order_by("-created_at", "-pk")
        .values("created_at")[:1]
    )
    # One query for both caps.
    counts = Message.objects.filter(conversation=conversation).aggregate(
        recent=Count("pk", filter=bot & Q(created_at__gte=timezone.now() - CAP_WINDOW)),
        in_a_row=Count("pk", filter=bot & Q(created_at__gt=Subquery(last_inbound))),
    )
    recent, in_a_row = counts["recent"], counts["in_a_row"]
    if recent >= settings.llm_max_replies_per_10_minutes:
        return (
            f"{recent} bot replies in the last 10 minutes "
            f"(the cap is {settings.llm_max_replies_per_10_minutes})"
        )
    if in_a_row >= settings.llm_max_consecutive_replies:
        return (
            f"{in_a_row} bot replies in a row without a new message "
            f"(the cap is {settings.llm_max_consecutive_replies})"
        )
    return None


def _llm(run: _Run) -> dict[str, Any]:
    settings = run.settings
    refusal = _llm_guard(run)
    if refusal:
        run.step("llm", f"not asked: {refusal}")
        return run.finish("llm_guarded")
    try:
        answer = agent_answer(settings, run.conversation, run.message)
    except AgentError as error:
        run.step(
            "llm", f"failed: {error.reason}", model=settings.llm_model, latency_ms=error.latency_ms
        )
        return _fallback(run, error.reason)
    cost = {"model": answer.model, "latency_ms": answer.latency_ms, "usage": answer.usage}
    if answer.handoff_reason is not None:
        conversation_handover(conversation=run.conversation, reason=answer.handoff_reason, by="bot")
        run.step("llm", "handed over", reason=answer.handoff_reason, **cost)
        return run.finish("handed_over", reason=answer.handoff_reason)
    try:
        reply = _reply(
            conversation=run.conversation,
            sent_by=SentBy.BOT,
            text=answer.text,
            idempotency_key=f"llm:{run.message.wamid or run.message.pk}",
        )
    except (WindowClosed, OptedOut, ReplyError) as error:
        run.step("llm", f"answered, reply not sent: {error.detail}", **cost)
        return run.finish("llm_not_sent")
    message_automation_record(
        message=reply, decision={"bot": "llm", "in_reply_to": run.message.pk, **cost}
    )
    run.step("llm", "replied", reply_id=reply.pk, **cost)
    return run.finish("llm_replied", reply_id=reply.pk, **cost)


def _fallback(run: _Run, reason: str) -> dict[str, Any]:
    settings = run.settings
    if settings.llm_fallback == Fallback.TEXT and settings.llm_fallback_text.strip():
        try:
            reply = _reply(
                conversation=run.conversation,
                sent_by=SentBy.BOT,
                text=settings.llm_fallback_text.strip(),
                idempotency_key=f"fallback:{run.message.wamid or run.message.pk}",
            )
        except (WindowClosed, OptedOut, ReplyError) as error:
            run.step("fallback", f"text not sent: {error.detail}")
            return run.finish("fallback_not_sent")
        run.step("fallback", "sent the fallback text", reply_id=reply.pk)
        return run.finish("fallback_text", reply_id=reply.pk)
    handover = f"The assistant could not answer ({reason}); a person should reply."
    conversation_handover(conversation=run.conversation, reason=handover, by="bot")
    run.step("fallback", "handed over", reason=handover)
    return run.finish("handed_over", reason=handover)
