"""The inbox's admin views (htmx): the conversation list, a thread, the contact panel.

Thin: parse the request, call a selector or a service, render. The thread polls
``poll/?after=<last message id>&since=<time>`` every 2 s: new messages are appended,
changed ones (statuses, automation decisions) redrawn in place, so nothing reloads
and the reply box keeps its focus and its text.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages as flash
from django.contrib.admin import site as admin_site
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Membership
from accounts.tenancy import scope
from campaigns.models import Campaign
from config.inputs import is_ascii_digits
from conversations import selectors, services
from conversations.models import Conversation, ConversationStatus, Direction
from messaging.graph import error_explanation
from templates_sync.models import Template, TemplateStatus
from templates_sync.preview import template_preview
from templates_sync.rendering import required_parameters

STATUS_TONES = {
    "queued": "muted",
    "unknown": "warn",
    "accepted": "ok",
    "sent": "ok",
    "delivered": "ok",
    "read": "ok",
    "failed": "bad",
    "received": "muted",
}


def _conversations(request: HttpRequest):
    rows = Conversation.objects.select_related("contact", "number", "assigned_to", "campaign")
    return rows if request.user.is_superuser else scope(rows, request.user)


def _conversation(request: HttpRequest, pk: int) -> Conversation:
    conversation = _conversations(request).filter(pk=pk).first()
    if conversation is None:
        raise Http404("No such conversation")
    return conversation


def _filters(request: HttpRequest) -> selectors.ConversationFilters:
    params = request.GET
    campaign = params.get("campaign", "")
    assigned = params.get("assigned", "")
    status = params.get("status", "")
    return selectors.ConversationFilters(
        status=status if status in ConversationStatus.values else "",
        assigned=assigned if assigned in ("me", "none") else "",
        window_open=params.get("window") == "open",
        campaign_id=int(campaign) if is_ascii_digits(campaign) else None,
        q=params.get("q", "")[:100],
    )


def _list_context(request: HttpRequest) -> dict:
    filters = _filters(request)
    rows = selectors.conversations_filter(_conversations(request), filters, request.user)
    page = Paginator(rows.order_by("-last_message_at", "-pk"), 50).get_page(request.GET.get("page"))
    now = timezone.now()
    campaigns = (
        Campaign.objects.filter(
            pk__in=_conversations(request).exclude(campaign=None).values("campaign")
        )
        .order_by("-pk")
        .only("pk", "name")[:50]
    )
    return {
        "page": page,
        "filters": filters,
        "campaigns": campaigns,
        "query": request.GET.urlencode(),
        "now": now,
        "items": [{"c": c, "window_open": c.window_open(now)} for c in page],
    }


def inbox(request: HttpRequest) -> HttpResponse:
    context = {
        **admin_site.each_context(request),
        "title": "Inbox",
        **_list_context(request),
        "selected": None,
    }
    return render(request, "conversations/inbox.html", context)


def inbox_list(request: HttpRequest) -> HttpResponse:
    """The list alone, for its own polling (new conversations, unread counts)."""
    context = {**_list_context(request), "selected": _selected(request)}
    return render(request, "conversations/_list.html", context)


def _selected(request: HttpRequest) -> int | None:
    value = request.GET.get("selected", "")
    return int(value) if is_ascii_digits(value) else None


def _message_rows(messages) -> list[dict]:
    rows = []
    for message in messages:
        status = selectors.message_status(message)
        code, title = selectors.message_error(message)
        rows.append(
            {
                "m": message,
                "status": status,
                "tone": STATUS_TONES.get(status, "muted"),
                "error_code": code,
                "error": error_explanation(code, title) if (code or title) else "",
                "outgoing": message.direction == Direction.OUT,
            }
        )
    return rows


def _window(conversation: Conversation, now: datetime) -> dict:
    expires = conversation.window_expires_at
    if expires is None:
        return {"open": False, "expires_at": None, "left": ""}
    seconds = int((expires - now).total_seconds())
    if seconds <= 0:
        return {"open": False, "expires_at": expires, "left": ""}
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return {
        "open": True,
        "expires_at": expires,
        "left": f"{hours} h {minutes:02d} min" if hours else f"{minutes} min",
        "seconds": seconds,
    }


def _templates(conversation: Conversation):
    return Template.objects.filter(
        workspace_id=conversation.workspace_id,
        waba_id=conversation.number.waba_id,
        status=TemplateStatus.APPROVED,
        removed_at__isnull=True,
    ).order_by("name", "language")


def _thread_context(request: HttpRequest, conversation: Conversation) -> dict:
    now = timezone.now()
    services.conversation_campaign_sync(conversation)
    messages = list(selectors.conversation_messages(conversation))
    contact = conversation.contact
    return {
        "conversation": conversation,
        "contact": contact,
        "rows": _message_rows(messages),
        "after": messages[-1].pk if messages else 0,
        "since": now.isoformat(),
        "window": _window(conversation, now),
        "notes": list(conversation.notes.select_related("user")),
        "suppression": selectors.contact_opted_out(contact),
        "history": selectors.contact_campaign_history(contact),
        "members": Membership.objects.filter(workspace_id=conversation.workspace_id)
        .select_related("user")
        .order_by("user__username"),
        "templates": _templates(conversation),
    }


def thread(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    # Opening the thread reads it: unread goes to 0 and Meta hears "read".
    services.conversation_open(conversation=conversation, user=request.user)
    context = {
        **admin_site.each_context(request),
        "title": f"Conversation with {conversation.contact}",
        **_list_context(request),
        "selected": conversation.pk,
        **_thread_context(request, conversation),
    }
    return render(request, "conversations/inbox.html", context)


def thread_poll(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    after = request.GET.get("after", "")
    since = parse_datetime(request.GET.get("since", "")) or timezone.now()
    now = timezone.now()
    after_id = int(after) if is_ascii_digits(after) else 0
    new = list(selectors.conversation_messages(conversation, after=after_id))
    changed = [m for m in selectors.messages_changed(conversation, since) if m.pk <= after_id]
    if new and conversation.unread:
        # The agent is looking at the thread: what arrives is read.
        services.conversation_open(conversation=conversation, user=request.user)
    context = {
        "conversation": conversation,
        "new_rows": _message_rows(new),
        "changed_rows": _message_rows(changed),
        "after": new[-1].pk if new else after_id,
        "since": now.isoformat(),
        "window": _window(conversation, now),
        "templates": _templates(conversation),
    }
    # The composer turns into the template picker (or back) only when the window flips,
    # so a reply being typed is never wiped.
    context["window_changed"] = request.GET.get("open") != (
        "1" if context["window"]["open"] else "0"
    )
    return render(request, "conversations/_poll.html", context)


def thread_reply(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    conversation = _conversation(request, pk)
    data = request.POST
    upload = None
    if request.FILES.get("file"):
        handle = request.FILES["file"]
        upload = services.Upload(handle.name, handle.read(), handle.content_type or "")
    template = data.get("template", "")
    parameters = {
        key.removeprefix("param:"): value for key, value in data.items() if key.startswith("param:")
    }
    error = ""
    try:
        services.reply_send(
            conversation=conversation,
            user=request.user,
            text=data.get("text") or None if not template and upload is None else None,
            template=int(template) if is_ascii_digits(template) else None,
            parameters=parameters,
            upload=upload,
            caption=data.get("caption", "") if upload is not None else "",
            idempotency_key=data.get("idempotency_key") or None,
        )
    except services.ReplyError as exc:
        error = exc.detail
    if not request.htmx:
        if error:
            flash.error(request, error)
        return redirect(reverse("admin:conversations_thread", args=[conversation.pk]))
    response = render(request, "conversations/_reply_result.html", {"error": error})
    if not error:
        # The thread's poll picks the new message up at once.
        response["HX-Trigger"] = "wac-poll"
    return response


def thread_template(request: HttpRequest, pk: int) -> HttpResponse:
    """The template picker's fields and preview for the chosen template."""
    conversation = _conversation(request, pk)
    chosen = request.GET.get("template", "")
    template = (
        _templates(conversation).filter(pk=int(chosen)).first() if is_ascii_digits(chosen) else None
    )
    values = {
        key.removeprefix("param:"): value
        for key, value in request.GET.items()
        if key.startswith("param:")
    }
    context = {
        "conversation": conversation,
        "template": template,
        "parameters": [
            {"key": key, "value": values.get(key, "")}
            for key in (required_parameters(template) if template else [])
        ],
        "preview": template_preview(template, values) if template else None,
    }
    return render(request, "conversations/_template_fields.html", context)


def thread_action(request: HttpRequest, pk: int) -> HttpResponse:
    """Assign, resolve, reopen or add a note (POST ``action``)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    conversation = _conversation(request, pk)
    action = request.POST.get("action", "")
    try:
        if action == "assign":
            user = request.POST.get("user", "")
            if user == "me":
                user_id = request.user.pk
            else:
                user_id = int(user) if is_ascii_digits(user) else None
            services.conversation_assign(
                conversation=conversation, user_id=user_id, by=request.user
            )
        elif action == "resolve":
            services.conversation_resolve(conversation=conversation)
        elif action == "reopen":
            services.conversation_reopen(conversation=conversation)
        elif action == "note":
            services.note_add(
                conversation=conversation, text=request.POST.get("text", ""), user=request.user
            )
        else:
            raise services.ReplyError(f"Unknown action {action!r}.")
    except services.ReplyError as exc:
        flash.error(request, exc.detail)
    return redirect(reverse("admin:conversations_thread", args=[conversation.pk]))


def thread_typing(request: HttpRequest, pk: int) -> HttpResponse:
    """The agent types: the contact sees a typing indicator (at most every 20 s)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    conversation = _conversation(request, pk)
    if conversation.window_open():
        services.conversation_typing(conversation=conversation)
    return HttpResponse(status=204)
