"""The Graph API simulator's aiohttp server: Graph endpoints plus the /_sim/ control API."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import BodyPartReader, web

from simkit.serve import simulator_run

from .seed import load_seed
from .state import (
    FAIL_TEXTS,
    MEDIA_KINDS,
    QUALITY_ORDER,
    TIER_LIMITS,
    Faults,
    SimError,
    SimState,
    Template,
    Token,
    media_kind,
    parse_latency,
)
from .webhooks import WebhookDispatcher, build_payload, inbound_value

# The largest media Meta takes (documents, 100 MB).
MAX_MEDIA_BYTES = max(limit for _, limit in MEDIA_KINDS.values())

logger = logging.getLogger("graph_simulator")

STATE: web.AppKey[SimState] = web.AppKey("state", SimState)
DISPATCHER: web.AppKey[WebhookDispatcher] = web.AppKey("dispatcher", WebhookDispatcher)

_JSON = "application/json"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, content_type=_JSON)


def _error(state: SimState, exc: SimError) -> web.Response:
    state.rejected[exc.code] += 1
    response = _json(exc.body(state.fbtrace_id()), exc.http_status)
    if exc.code == 190:
        response.headers["WWW-Authenticate"] = 'OAuth "Facebook Platform" "invalid_token"'
    return response


async def _latency(state: SimState) -> None:
    lo, hi = state.faults.latency_ms
    if hi > 0:
        delay = lo if lo == hi else state.rng.uniform(lo, hi)
        await asyncio.sleep(delay / 1000.0)


# -- Graph endpoints ---------------------------------------------------------------------


async def send_message(request: web.Request) -> web.StreamResponse:
    """POST /{version}/{phone-number-id}/messages: validate, accept, queue webhooks."""
    state = request.app[STATE]
    faults = state.faults
    if faults.latency_ms[1]:
        await _latency(state)
    try:
        token = state.check_token(
            request.headers.get("Authorization"), request.query.get("access_token")
        )
        number = state.number_for(token, request.match_info["node"])
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            raise SimError(100, "Request body is not valid JSON") from None
        if isinstance(body, dict) and body.get("status") == "read":
            return _mark_read(state, number.id, body)
        if faults.transient_rate and state.rng.random() < faults.transient_rate:
            raise SimError(131000, "Something went wrong", http_status=faults.transient_status)
        forced_code = None
        if state.error_rules:
            to = body.get("to") if isinstance(body, dict) else None
            forced = state.forced_error(number.id, to if isinstance(to, str) else None)
            if forced is not None:
                error, rule = forced
                if state.error_mode(error.code, rule) == "response":
                    raise error
                forced_code = error.code
        now = time.monotonic()
        state.check_throughput(number, now)
        wa_id, template = state.validate_send(number, body)
        state.check_pair_rate(number, wa_id, now)
        fail_code = forced_code
        if fail_code is None:
            fail_code = state.recipient_outcome(number, wa_id, template, body)
            if fail_code is not None and state.error_mode(fail_code) == "response":
                raise SimError(fail_code, FAIL_TEXTS.get(fail_code, ("", None))[1])
    except SimError as exc:
        return _error(state, exc)

    record = state.accept(number, body, raw, wa_id, template, now, fail_code)
    dispatcher = request.app[DISPATCHER]
    dispatcher.schedule_message(record)
    _flush_changes(state, dispatcher)
    message: dict[str, Any] = {"id": record.wamid}
    if template is not None and faults.message_status:
        message["message_status"] = faults.message_status
    contact: dict[str, Any] = {"input": record.to, "wa_id": wa_id}
    if record.user_id is not None:
        contact["user_id"] = record.user_id
    answer = {
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [message],
    }
    if faults.timeout_rate and state.rng.random() < faults.timeout_rate:
        # Accepted, but the caller never hears it: the "outcome unknown" case.
        record.timed_out = True
        if faults.timeout_mode == "drop":
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        await asyncio.sleep(faults.timeout_hold_s)
    return _json(answer)


def _flush_changes(state: SimState, dispatcher: WebhookDispatcher) -> None:
    """Queue the account-level webhooks (quality, template status) the state produced."""
    if not state.changes:
        return
    if state.faults.callback_url:
        for change in state.changes:
            dispatcher.push(time.monotonic(), "change", change)
    state.changes.clear()


def _mark_read(state: SimState, phone_number_id: str, body: dict[str, Any]) -> web.Response:
    """Mark an inbound message read, optionally showing a typing indicator (Meta: 25 s)."""
    message_id = body.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise SimError(131008, "message_id is required")
    typing = body.get("typing_indicator")
    if typing is not None and (not isinstance(typing, dict) or typing.get("type") != "text"):
        raise SimError(131009, 'typing_indicator must be {"type": "text"}')
    mark: dict[str, Any] = {
        "phone_number_id": phone_number_id,
        "message_id": message_id,
        "at": time.time(),
        "typing": typing is not None,
    }
    state.read_marks.append(mark)
    return _json({"success": True})


async def upload_media(request: web.Request) -> web.Response:
    """POST /{version}/{phone-number-id}/media (multipart: messaging_product, type, file)."""
    state = request.app[STATE]
    await _latency(state)
    try:
        token = state.check_token(
            request.headers.get("Authorization"), request.query.get("access_token")
        )
        number = state.number_for(token, request.match_info["node"])
        if not request.content_type.startswith("multipart/"):
            raise SimError(100, "Upload the file as multipart/form-data")
        fields: dict[str, str] = {}
        data: bytes | None = None
        file_type = filename = ""
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise SimError(100, "nested multipart is not supported")
            if part.name == "file":
                file_type = part.headers.get("Content-Type", "")
                filename = part.filename or ""
                chunks, size = [], 0
                while chunk := await part.read_chunk(1 << 16):
                    size += len(chunk)
                    if size > MAX_MEDIA_BYTES:
                        raise SimError(131053, "Media file size too big.")
                    chunks.append(chunk)
                data = b"".join(chunks)
            elif part.name:
                fields[part.name] = (await part.text())[:1000]
        if fields.get("messaging_product") != "whatsapp":
            raise SimError(100, "The parameter messaging_product is required.")
        if data is None:
            raise SimError(100, "The parameter file is required.")
        mime = fields.get("type") or file_type
        kind = media_kind(mime)
        if kind is None:
            raise SimError(100, f"Param file must be a file of a supported type, not {mime!r}")
        if len(data) > MEDIA_KINDS[kind][1]:
            raise SimError(
                131053,
                f"Media file size too big. Max file size for {kind}: {MEDIA_KINDS[kind][1]} bytes",
            )
        if not data:
            raise SimError(131053, "The media file is empty.")
        media = state.media_add(number.id, mime, data, filename)
        return _json({"id": media.id})
    except SimError as exc:
        return _error(state, exc)


async def delete_node(request: web.Request) -> web.Response:
    """DELETE /{version}/{media-id}: forget an uploaded media file."""
    state = request.app[STATE]
    try:
        state.check_token(request.headers.get("Authorization"), request.query.get("access_token"))
        node = request.match_info["node"]
        if state.media.pop(node, None) is None:
            raise state.unknown_object(node)
        return _json({"success": True})
    except SimError as exc:
        return _error(state, exc)


async def sim_media_download(request: web.Request) -> web.StreamResponse:
    """The media `url` of GET /{media-id}: the bytes, with the bearer token as Meta wants."""
    state = request.app[STATE]
    try:
        state.check_token(request.headers.get("Authorization"), request.query.get("access_token"))
    except SimError as exc:
        return _error(state, exc)
    media = state.media.get(request.match_info["media_id"])
    if media is None:
        return _json({"error": "unknown media id"}, 404)
    return web.Response(body=media.data, content_type=media.mime_type.split(";")[0].strip())


def _fields(request: web.Request) -> set[str] | None:
    raw = request.query.get("fields")
    if not raw:
        return None
    # "throughput{level}" asks for a sub-field; the simulator returns the whole object.
    names = set()
    depth = 0
    current = ""
    for char in raw:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            names.add(current.strip())
            current = ""
        elif depth == 0:
            current += char
    names.add(current.strip())
    return {n for n in names if n}


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"sim:{index}".encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("sim:"):
            raise ValueError
        return int(text[4:])
    except ValueError:
        raise SimError(100, f"Invalid cursor: {cursor}") from None


def _page(
    request: web.Request, items: list[dict[str, Any]], default_limit: int, max_limit: int
) -> web.Response:
    """Graph-style cursor paging: data, paging.cursors.before/after, paging.next/previous."""
    try:
        limit = int(request.query.get("limit", default_limit))
    except ValueError:
        raise SimError(100, "limit must be an integer") from None
    limit = max(1, min(limit, max_limit))
    start = 0
    if "after" in request.query:
        start = _uncursor(request.query["after"]) + 1
    elif "before" in request.query:
        start = max(0, _uncursor(request.query["before"]) - limit)
    data = items[start : start + limit]
    if not data:
        return _json({"data": []})
    first, last = start, start + len(data) - 1
    paging: dict[str, Any] = {"cursors": {"before": _cursor(first), "after": _cursor(last)}}
    base = {k: v for k, v in request.query.items() if k not in ("after", "before")}
    if last + 1 < len(items):
        paging["next"] = str(request.url.with_query({**base, "after": _cursor(last)}))
    if first > 0:
        paging["previous"] = str(request.url.with_query({**base, "before": _cursor(first)}))
    return _json({"data": data, "paging": paging})


async def get_node(request: web.Request) -> web.Response:
    """GET /{version}/{id}: a phone number, a WABA or a template."""
    state = request.app[STATE]
    await _latency(state)
    node = request.match_info["node"]
    try:
        token = state.check_token(
            request.headers.get("Authorization"), request.query.get("access_token")
        )
        fields = _fields(request)
        if node in state.numbers:
            number = state.number_for(token, node)
            data = number.public(fields)
            if fields and "whatsapp_business_manager_messaging_limit" in fields:
                business = state.business_of(number.waba_id)
                data["whatsapp_business_manager_messaging_limit"] = state.tier_of(business)
            return _json(data)
        media = state.media.get(node)
        if media is not None:
            return _json(media.public(f"{request.scheme}://{request.host}"))
        if node in state.wabas and (token.wabas is None or node in token.wabas):
            waba = state.wabas[node]
            return _json({k: v for k, v in waba.items() if not fields or k in fields or k == "id"})
        template = state.templates_by_id.get(node)
        if template is not None and (token.wabas is None or template.key[0] in token.wabas):
            return _json(template.public(fields))
        raise state.unknown_object(node)
    except SimError as exc:
        return _error(state, exc)


def _waba_for(state: SimState, request: web.Request) -> str:
    token = state.check_token(
        request.headers.get("Authorization"), request.query.get("access_token")
    )
    waba_id = request.match_info["node"]
    if waba_id not in state.wabas or (token.wabas is not None and waba_id not in token.wabas):
        raise state.unknown_object(waba_id)
    return waba_id


async def list_phone_numbers(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _latency(state)
    try:
        waba_id = _waba_for(state, request)
        fields = _fields(request)
        items = [n.public(fields) for n in state.numbers.values() if n.waba_id == waba_id]
        return _page(request, items, 25, 100)
    except SimError as exc:
        return _error(state, exc)


async def list_templates(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _latency(state)
    try:
        waba_id = _waba_for(state, request)
        fields = _fields(request)
        query = request.query
        wanted: list[tuple[str, set[str]]] = [
            (key, {v.strip() for v in query[key].split(",")})
            for key in ("name", "status", "category", "language")
            if query.get(key)
        ]
        items = []
        for template in state.templates.values():
            if template.key[0] != waba_id:
                continue
            data = template.public()
            if all(str(data.get(key)) in values for key, values in wanted):
                items.append(template.public(fields))
        return _page(request, items, 25, 1000)
    except SimError as exc:
        return _error(state, exc)


# -- control API -------------------------------------------------------------------------


async def sim_health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    dispatcher = request.app[DISPATCHER]
    return _json(
        {
            "status": "ok",
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - state.started_at, 3),
            "messages": state.total,
            "webhooks": {"pending": dispatcher.pending, "in_flight": dispatcher.in_flight},
        }
    )


async def sim_messages(request: web.Request) -> web.Response:
    try:
        messages = request.app[STATE].find_messages(dict(request.query))
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"messages": messages, "count": len(messages)})


async def sim_counts(request: web.Request) -> web.Response:
    duplicates_only = request.query.get("duplicates_only") in ("1", "true", "yes")
    return _json(request.app[STATE].counts(duplicates_only))


async def sim_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    request.app[DISPATCHER].clear()
    return _json({"ok": True})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "body is not JSON"}', content_type=_JSON) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be an object"}', content_type=_JSON)
    return body


async def sim_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        changes = await _json_body(request)
        try:
            state.faults.update(changes)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        state.compile_faults()
        request.app[DISPATCHER].poke()
    return _json(state.faults.as_dict())


# Optional /_sim/inbound keys passed on to inbound_value (see its docstring).
_INBOUND_EXTRAS = (
    "interactive_type",
    "description",
    "filename",
    "mime_type",
    "voice",
    "animated",
    "latitude",
    "longitude",
    "address",
    "url",
    "contacts",
    "reaction_to",
    "unsupported_type",
    "username",
    "hide_phone",
    "timestamp",
)


async def sim_inbound(request: web.Request) -> web.Response:
    """Make a user's message arrive: the webhook is POSTed before this answers."""
    state = request.app[STATE]
    body = await _json_body(request)
    sender = str(body.get("from", "")).lstrip("+")
    pnid = str(body.get("phone_number_id") or next(iter(state.numbers), ""))
    if not sender or pnid not in state.numbers:
        return _json({"error": "need 'from' and a known 'phone_number_id'"}, 400)
    extra = {key: body[key] for key in _INBOUND_EXTRAS if key in body}
    if "content_base64" in body:
        try:
            extra["content"] = base64.b64decode(str(body["content_base64"]), validate=True)
        except ValueError:
            return _json({"error": "content_base64 is not base64"}, 400)
    try:
        value = inbound_value(
            state,
            phone_number_id=pnid,
            sender=sender,
            kind=str(body.get("type", "text")),
            text=body.get("text"),
            payload=body.get("payload"),
            context_id=body.get("context_id"),
            name=body.get("name"),
            message_id=body.get("message_id"),
            **extra,
        )
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    payload = build_payload(state, [("inbound", (pnid, value))])
    status, error = await request.app[DISPATCHER].post_now(payload)
    return _json(
        {
            "message_id": value["messages"][0]["id"],
            "delivered": status is not None and status < 300,
            "status": status,
            "error": error,
            "payload": payload,
        }
    )


async def sim_templates(request: web.Request) -> web.Response:
    """Add or update templates; a status change sends message_template_status_update."""
    state = request.app[STATE]
    body = await _json_body(request)
    items = body.get("templates", [body] if "name" in body else [])
    waba_id = str(body.get("waba_id") or next(iter(state.wabas)))
    notify = body.get("notify", True)
    done: list[Template] = []
    try:
        for item in items:
            template, old_status = state.upsert_template(waba_id, dict(item))
            done.append(template)
            if notify and old_status is not None and old_status != template.status:
                value = {
                    "event": template.status,
                    "message_template_id": template.data["id"],
                    "message_template_name": template.key[1],
                    "message_template_language": template.key[2],
                    "reason": item.get("reason"),
                }
                if state.faults.callback_url:
                    request.app[DISPATCHER].push(
                        time.monotonic(),
                        "change",
                        (waba_id, "message_template_status_update", value),
                    )
    except (ValueError, KeyError, TypeError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"templates": [t.public() for t in done]})


async def sim_tokens(request: web.Request) -> web.Response:
    """{"token": T, "action": "add" | "expire" | "restore" | "revoke", "wabas": [...]}"""
    state = request.app[STATE]
    body = await _json_body(request)
    token = body.get("token")
    action = body.get("action", "add")
    if not isinstance(token, str) or not token:
        return _json({"error": "need a 'token'"}, 400)
    if action == "add":
        state.tokens[token] = Token(body.get("wabas"))
    elif action in ("expire", "restore"):
        if token not in state.tokens:
            return _json({"error": "unknown token"}, 404)
        state.tokens[token].expired = action == "expire"
    elif action == "revoke":
        state.tokens.pop(token, None)
    else:
        return _json({"error": f"unknown action {action!r}"}, 400)
    return _json({"ok": True, "tokens": len(state.tokens)})


async def sim_numbers(request: web.Request) -> web.Response:
    """Update a phone number's fields (quality_rating, mps, status, ...)."""
    state = request.app[STATE]
    body = await _json_body(request)
    number = state.numbers.get(str(body.get("id", "")))
    if number is None:
        return _json({"error": "unknown phone number id"}, 404)
    changes = {k: v for k, v in body.items() if k != "id"}
    if "mps" in changes:
        try:
            number.mps = int(changes.pop("mps"))
        except (TypeError, ValueError):
            return _json({"error": "mps must be an integer"}, 400)
    number.data.update(changes)
    return _json({**number.public(), "mps": number.mps})


async def sim_quality(request: web.Request) -> web.Response:
    """Set a number's or a template's quality now, with the webhooks Meta sends.

    {"phone_number_id": ID, "quality": "GREEN|YELLOW|RED"} or
    {"template": NAME, "language": CODE, "waba_id"?: ID, "quality": ...}.
    """
    state = request.app[STATE]
    body = await _json_body(request)
    quality = str(body.get("quality", "")).upper()
    if quality not in QUALITY_ORDER:
        return _json({"error": f"quality must be one of {QUALITY_ORDER}"}, 400)
    if "phone_number_id" in body:
        number = state.numbers.get(str(body["phone_number_id"]))
        if number is None:
            return _json({"error": "unknown phone number id"}, 404)
        state.number_quality_set(number, quality)
        result: dict[str, Any] = number.public()
    else:
        waba_id = str(body.get("waba_id") or next(iter(state.wabas)))
        template = state.templates.get(
            (waba_id, str(body.get("template")), str(body.get("language", "en_US")))
        )
        if template is None:
            return _json({"error": "unknown template"}, 404)
        state.template_quality_set(template, quality)
        result = template.public()
    _flush_changes(state, request.app[DISPATCHER])
    return _json(result)


async def sim_business(request: web.Request) -> web.Response:
    """Set a business portfolio's messaging limit: {"waba_id": ID, "messaging_limit": TIER}.

    Sends phone_number_quality_update (event UPGRADE/DOWNGRADE) for each of its numbers.
    """
    state = request.app[STATE]
    body = await _json_body(request)
    waba_id = str(body.get("waba_id") or next(iter(state.wabas)))
    tier = str(body.get("messaging_limit", ""))
    if waba_id not in state.wabas:
        return _json({"error": "unknown WABA"}, 404)
    if tier not in TIER_LIMITS:
        return _json({"error": f"messaging_limit must be one of {sorted(TIER_LIMITS)}"}, 400)
    business = state.business_of(waba_id)
    old = state.tier_of(business)
    for wid, waba in state.wabas.items():
        if state.business_of(wid) == business:
            waba["business"] = {**(waba.get("business") or {}), "messaging_limit": tier}
    if old != tier:
        old_limit, new_limit = TIER_LIMITS[old], TIER_LIMITS[tier]
        up = new_limit is None or (old_limit is not None and new_limit > old_limit)
        for number in state.numbers.values():
            if state.business_of(number.waba_id) == business:
                state.changes.append(
                    (
                        number.waba_id,
                        "phone_number_quality_update",
                        {
                            "display_phone_number": "".join(
                                c for c in number.display if c.isdigit()
                            ),
                            "event": "UPGRADE" if up else "DOWNGRADE",
                            "current_limit": tier,
                            "old_limit": old,
                            "max_daily_conversations_per_business": tier,
                        },
                    )
                )
        _flush_changes(state, request.app[DISPATCHER])
    return _json({"business_id": business, **state.tier_usage()[business]})


async def sim_webhook_change(request: web.Request) -> web.Response:
    """POST any change Meta sends now: {"field": F, "value": {...}, "waba_id"?: ID}
    (account_update, business_capability_update, template_category_update, ...), or
    {"errors": [{"code", "title"?, "details"?}], "phone_number_id": ID}: a `messages`
    change whose value carries `errors` outside any status. Answers like /_sim/inbound."""
    state = request.app[STATE]
    body = await _json_body(request)
    if "errors" in body:
        pnid = str(body.get("phone_number_id") or next(iter(state.numbers), ""))
        number = state.numbers.get(pnid)
        errors = body["errors"]
        if number is None or not isinstance(errors, list) or not errors:
            return _json({"error": "need a known phone_number_id and a list of errors"}, 400)
        items = []
        for error in errors:
            if not isinstance(error, dict) or not isinstance(error.get("code"), int):
                return _json({"error": "each error needs an integer code"}, 400)
            title, details = FAIL_TEXTS.get(error["code"], ("Error", "Error"))
            title = str(error.get("title") or title)
            items.append(
                {
                    "code": error["code"],
                    "title": title,
                    "message": title,
                    "error_data": {"details": str(error.get("details") or details)},
                }
            )
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "".join(c for c in number.display if c.isdigit()),
                "phone_number_id": pnid,
            },
            "errors": items,
        }
        change = {"field": "messages", "value": value}
        waba_id = number.waba_id
    else:
        field, value = body.get("field"), body.get("value")
        waba_id = str(body.get("waba_id") or next(iter(state.wabas)))
        if not isinstance(field, str) or not field or not isinstance(value, dict):
            return _json({"error": "need a 'field' and an object 'value'"}, 400)
        change = {"field": field, "value": value}
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [change]}],
    }
    status, error = await request.app[DISPATCHER].post_now(payload)
    return _json(
        {
            "delivered": status is not None and status < 300,
            "status": status,
            "error": error,
            "payload": payload,
        }
    )


async def sim_webhooks(request: web.Request) -> web.Response:
    dispatcher = request.app[DISPATCHER]
    idle = True
    if "wait" in request.query:
        idle = await dispatcher.wait_idle(float(request.query["wait"]))
    return _json(
        {
            **dispatcher.stats,
            "pending": dispatcher.pending,
            "in_flight": dispatcher.in_flight,
            "idle": idle,
        }
    )


async def sim_read_marks(request: web.Request) -> web.Response:
    return _json({"read_marks": request.app[STATE].read_marks})


# -- app and process ---------------------------------------------------------------------


def make_app(state: SimState) -> web.Application:
    # 1 MB is Meta's own limit for a request body of this API and plenty for a send.
    app = web.Application(client_max_size=1024 * 1024)
    app[STATE] = state
    dispatcher = WebhookDispatcher(state)
    app[DISPATCHER] = dispatcher

    async def lifecycle(app: web.Application) -> Any:
        await dispatcher.start()
        yield
        await dispatcher.stop()

    app.cleanup_ctx.append(lifecycle)
    control: list[tuple[str, str, Callable[..., Any]]] = [
        ("GET", "/_sim/health", sim_health),
        ("GET", "/_sim/messages", sim_messages),
        ("GET", "/_sim/counts", sim_counts),
        ("POST", "/_sim/reset", sim_reset),
        ("GET", "/_sim/faults", sim_faults),
        ("POST", "/_sim/faults", sim_faults),
        ("POST", "/_sim/inbound", sim_inbound),
        ("POST", "/_sim/templates", sim_templates),
        ("POST", "/_sim/tokens", sim_tokens),
        ("POST", "/_sim/numbers", sim_numbers),
        ("GET", "/_sim/webhooks", sim_webhooks),
        ("GET", "/_sim/read_marks", sim_read_marks),
        ("POST", "/_sim/quality", sim_quality),
        ("POST", "/_sim/business", sim_business),
        ("POST", "/_sim/webhook", sim_webhook_change),
        ("GET", "/_sim/media/{media_id}", sim_media_download),
    ]
    for method, path, handler in control:
        app.router.add_route(method, path, handler)
    app.router.add_post("/{version}/{node}/messages", send_message)
    app.router.add_post("/{version}/{node}/media", upload_media)
    app.router.add_delete("/{version}/{node}", delete_node)
    app.router.add_get("/{version}/{node}/phone_numbers", list_phone_numbers)
    app.router.add_get("/{version}/{node}/message_templates", list_templates)
    app.router.add_get("/{version}/{node}", get_node)
    return app


# Command-line flags that map onto Faults fields (the rest configure the process).
_FAULT_FLAGS = (
    "mps",
    "throttle_status",
    "pair_rate_seconds",
    "pair_burst",
    "latency_ms",
    "transient_rate",
    "transient_status",
    "timeout_rate",
    "timeout_mode",
    "timeout_hold_s",
    "undeliverable",
    "fail_after_accept",
    "message_status",
    "enforce_window",
    "callback_url",
    "app_secret",
    "webhook_delay_ms",
    "webhook_batch",
    "webhook_duplicates",
    "webhook_shuffle",
    "webhook_concurrency",
    "read_rate",
    "reply_rate",
    "reply_text",
    "error_modes",
    "block_rate",
    "marketing_cap",
    "tier_error_code",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's flags, shared by `python -m graph_simulator` and the command."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8900, help="port (0 picks a free one; default 8900)")
    add("--seed", default=None, help="seed JSON file (default: built-in demo data)")
    add("--keep-messages", type=int, default=1_000_000, help="accepted messages kept")
    add("--random-seed", type=int, default=None, help="make fault rolls repeatable")
    add("--access-log", action="store_true", help="log every request (slows it down)")
    add("--callback-url", default=None, help="where status/inbound webhooks are POSTed")
    add("--app-secret", default=None, help="signs webhooks (default: $WHATSAPP_APP_SECRET)")
    add("--mps", type=int, default=None, help="messages/s per number (0 = no limit)")
    add("--throttle-status", type=int, choices=(400, 429), default=None)
    add("--pair-rate-seconds", type=float, default=None, help="131056 window (0 = off)")
    add("--pair-burst", type=int, default=None, help="sends per recipient per window")
    add("--latency-ms", type=parse_latency, default=None, help="A or A-B milliseconds")
    add("--transient-rate", type=float, default=None, help="share answered 131000")
    add("--transient-status", type=int, default=None, help="HTTP status of 131000")
    add("--timeout-rate", type=float, default=None, help="share accepted then not answered")
    add("--timeout-mode", choices=("hang", "drop"), default=None)
    add("--timeout-hold-s", type=float, default=None, help="how long a 'hang' lasts")
    add("--undeliverable", default=None, help="patterns refused with 131026: 999*,*0000")
    add("--fail-after-accept", default=None, help="patterns accepted then failed (131026)")
    add("--message-status", default=None, help="message_status answered (default accepted)")
    add(
        "--no-enforce-window",
        dest="enforce_window",
        action="store_const",
        const=False,
        default=None,
        help="let free-form text through without a 24 h window",
    )
    add("--webhook-delay-ms", type=float, default=None, help="delay between status steps")
    add("--webhook-batch", type=int, default=None, help="statuses per webhook POST")
    add("--webhook-duplicates", type=float, default=None, help="share of events sent twice")
    add("--webhook-shuffle", action="store_const", const=True, default=None)
    add("--webhook-concurrency", type=int, default=None, help="webhook POSTs in flight")
    add("--read-rate", type=float, default=None, help="share of messages that get 'read'")
    add("--reply-rate", type=float, default=None, help="share that get a text reply")
    add("--reply-text", default=None)
    add("--error-modes", default=None, help="how codes arrive: 131026=response,131047=webhook")
    add("--block-rate", type=float, default=None, help="share of marketing sends blocked")
    add("--marketing-cap", type=int, default=None, help="marketing templates per user per 24 h")
    add("--tier-error-code", type=int, default=None, help="code past the tier (131048)")


def build_state(options: dict[str, Any]) -> SimState:
    """Seed data, then the seed's faults, then the flags given on the command line."""
    seed = load_seed(options.get("seed"))
    faults = Faults(app_secret=os.environ.get("WHATSAPP_APP_SECRET", ""))
    if seed.get("faults"):
        faults.update(seed["faults"])
    given = {k: options[k] for k in _FAULT_FLAGS if options.get(k) is not None}
    faults.update(given)
    return SimState(
        seed,
        faults,
        keep_messages=options.get("keep_messages", 1_000_000),
        random_seed=options.get("random_seed"),
    )


def run(options: dict[str, Any]) -> None:
    simulator_run(options, lambda: make_app(build_state(options)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m graph_simulator", description="Local WhatsApp Graph API simulator."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(vars(args))
    except ValueError as exc:
        parser.error(str(exc))
