"""Reading Meta's webhook JSON into plain values: no database, no models, only the payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from messaging.callbacks import recipient_id_from
from webhooks.report import Report

# Bigger than any timestamp Meta sends (year 2100): rejects garbage before datetime does.
_MAX_EPOCH = 4_102_444_800
_MAX_BIGINT = 2**63 - 1
_MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
_MEDIA_FIELDS = ("id", "mime_type", "sha256", "caption", "filename", "voice", "animated", "url")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _without_nul(value: Any) -> Any:
    """``value`` with NUL characters dropped from every string (PostgreSQL stores none)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def parse_json(body: bytes, report: Report) -> Any:
    """The JSON in ``body`` without NUL characters, or None (a problem reported) when it is
    malformed, too deep, or uses NaN/Infinity."""
    try:
        return _without_nul(json.loads(body, parse_constant=_reject_constant))
    except (ValueError, RecursionError) as error:
        report.problem(f"malformed JSON: {str(error)[:200]}")
        return None


def as_text(value: Any, max_length: int) -> str | None:
    """``value`` as a string that fits the column, or None (numbers are accepted as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and len(value) <= max_length:
        return value
    return None


def as_time(value: Any) -> datetime | None:
    """Meta's epoch seconds (a string or a number) as an aware datetime, or None."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= _MAX_EPOCH:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any, what: str, report: Report) -> list:
    """``value`` when it is a list, else [] (a problem reported unless it is missing)."""
    if value is None:
        return []
    if not isinstance(value, list):
        report.problem(f"{what} is not a list")
        return []
    return value


def callback_recipient_id(callback_data: str) -> int | None:
    """Our recipient id in biz_opaque_callback_data, or None when it holds none that fits."""
    recipient_id = recipient_id_from(callback_data) if callback_data.isascii() else None
    if recipient_id is None or not 0 < recipient_id <= _MAX_BIGINT:
        return None
    return recipient_id


def status_fields(
    item: Any, *, pnid: str, received_at: datetime, report: Report
) -> dict[str, Any] | None:
    """The StatusUpdate fields of one value.statuses[] item, or None (a problem reported)
    when it is not an object or names no status or message. A bad timestamp is reported
    and replaced by ``received_at``."""
    if not isinstance(item, dict):
        report.problem("a status is not an object")
        return None
    status = as_text(item.get("status"), 16)
    wamid = as_text(item.get("id"), 128) or ""
    callback_data = as_text(item.get("biz_opaque_callback_data"), 512) or ""
    callback_id = callback_recipient_id(callback_data)
    key = wamid or (f"recipient:{callback_id}" if callback_id else "")
    if not status or not key:
        report.problem("a status without a status or a message id")
        return None
    at = as_time(item.get("timestamp"))
    if at is None:
        report.problem(f"status {status} of {key}: bad timestamp, used the receive time")
        at = received_at
    errors = item.get("errors")
    return {
        "message_key": key,
        "status": status,
        "wamid": wamid,
        "phone_number_id": pnid,
        "wa_id": as_text(item.get("recipient_id"), 32) or "",
        "callback_data": callback_data,
        "at": at,
        "conversation": as_dict(item.get("conversation")) or None,
        "pricing": as_dict(item.get("pricing")) or None,
        "errors": errors if isinstance(errors, list) else None,
    }


def first_error(errors: Any) -> dict[str, Any]:
    """``{"code", "title", "details"}`` of the first of a status's errors (code None when it
    is not an int that fits the column)."""
    error = as_dict(errors[0]) if isinstance(errors, list) and errors else {}
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, int) or abs(code) >= 2**31:
        code = None
    details = as_dict(error.get("error_data")).get("details")
    return {
        "code": code,
        "title": str(error.get("title") or error.get("message") or "")[:255],
        "details": str(details or error.get("message") or ""),
    }


def message_fields(kind: str, item: dict) -> dict[str, Any]:
    """text, payload, media and context_wamid of one inbound message, by its type."""
    body = as_dict(item.get(kind))
    text = payload = ""
    media = None
    context = as_text(as_dict(item.get("context")).get("id"), 128) or ""
    if kind == "text":
        text = str(body.get("body") or "")
    elif kind == "button":
        text, payload = str(body.get("text") or ""), str(body.get("payload") or "")
    elif kind == "interactive":
        reply = as_dict(body.get(str(body.get("type") or "")))
        text = str(reply.get("title") or reply.get("body") or "")
        payload = str(reply.get("id") or reply.get("response_json") or "")
    elif kind in _MEDIA_TYPES:
        media = {key: body[key] for key in _MEDIA_FIELDS if key in body}
        text = str(body.get("caption") or "")
    elif kind == "location":
        text = ", ".join(str(body[key]) for key in ("name", "address") if body.get(key))
    elif kind == "reaction":
        text = str(body.get("emoji") or "")
        context = as_text(body.get("message_id"), 128) or context
    return {"text": text, "payload": payload, "media": media, "context_wamid": context}
