"""Reading Meta's webhook JSON into plain values: no database, no models, only the payload."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from messaging.callbacks import recipient_id_from
from webhooks.report import Report

# Bigger than any timestamp Meta sends (year 2100): rejects garbage before datetime does.
_MAX_EPOCH = 4_102_444_800
# Meta's times outside this window are not believed (the product did not exist before it;
# a clock cannot be a day ahead of the POST carrying it): the arrival time is used instead.
EARLIEST_PLAUSIBLE = datetime(2020, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)
# A lone (unpaired) UTF-16 surrogate: valid as a JSON escape ("\ud800"), but no UTF-8 text
# can hold it, so PostgreSQL refuses it in text and jsonb alike.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_BIGINT = 2**63 - 1
_MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
_MEDIA_FIELDS = ("id", "mime_type", "sha256", "caption", "filename", "voice", "animated", "url")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def storable_text(value: str) -> tuple[str, bool]:
    """``value`` as PostgreSQL can store it: NUL characters dropped, lone surrogates
    replaced by U+FFFD; and whether a surrogate was replaced."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if _LONE_SURROGATE.search(value) is None:
        return value, False
    return _LONE_SURROGATE.sub("\ufffd", value), True


def _storable(value: Any, replaced: list[int]) -> Any:
    """``value`` with every string made storable; counts the strings whose surrogates were
    replaced in ``replaced[0]``."""
    if isinstance(value, str):
        text, changed = storable_text(value)
        replaced[0] += changed
        return text
    if isinstance(value, list):
        return [_storable(item, replaced) for item in value]
    if isinstance(value, dict):
        return {_storable(key, replaced): _storable(item, replaced) for key, item in value.items()}
    return value


def parse_json(body: bytes, report: Report) -> Any:
    """The JSON in ``body`` with every string storable (see ``storable_text``), or None (a
    problem reported) when it is malformed, too deep, or uses NaN/Infinity. The strings
    whose lone surrogates were replaced are counted as ``surrogates_replaced`` in the
    event's outcome: not a problem, since user text (a name, a message cut mid-emoji) can
    carry one, and everything else in the event applies as usual."""
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        report.problem(f"malformed JSON: {str(error)[:200]}")
        return None
    if b"\\u" not in body and b"\xed" not in body and b"\x00" not in body[:4]:
        # UTF-8 JSON holds a NUL or a lone surrogate only as a \u escape, or a surrogate as
        # CESU-8 bytes (0xED ...): without either there is nothing to clean.
        return payload
    replaced = [0]
    payload = _storable(payload, replaced)
    report.counts["surrogates_replaced"] += replaced[0]
    return payload


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


def plausible_time(at: datetime, *, received_at: datetime) -> str:
    """Why Meta's time ``at`` cannot be believed for an event that arrived at
    ``received_at`` ('' when it can): before EARLIEST_PLAUSIBLE, or more than MAX_AHEAD
    after the arrival."""
    if at < EARLIEST_PLAUSIBLE:
        return f"before {EARLIEST_PLAUSIBLE:%Y-%m-%d}"
    if at > received_at + MAX_AHEAD:
        return "more than a day after it arrived"
    return ""


def believable_time(value: Any, *, received_at: datetime, report: Report) -> datetime | None:
    """Meta's time ``value`` (see ``as_time``) when it can be believed, else None: when it
    is missing or malformed, and when it is outside the plausible window (then counted as
    ``timestamps_clamped``); the caller uses the arrival time instead."""
    at = as_time(value)
    if at is not None and plausible_time(at, received_at=received_at):
        report.counts["timestamps_clamped"] += 1
        return None
    return at


def event_time(
    value: Any, *, received_at: datetime, report: Report, what: str
) -> tuple[datetime, str]:
    """Meta's time of ``what`` and a note ('' unless replaced). A missing or malformed
    time is a reported problem and one outside the plausible window is counted as
    ``timestamps_clamped`` (the note says why); both are replaced by ``received_at``."""
    at = as_time(value)
    if at is None:
        report.problem(f"{what}: bad timestamp, used the receive time")
        return received_at, ""
    if why := plausible_time(at, received_at=received_at):
        report.counts["timestamps_clamped"] += 1
        return received_at, time_note(at, why)
    return at, ""


def time_note(at: datetime, why: str) -> str:
    """The StatusUpdate note of a time replaced by the arrival time (TIME_NOTE_PREFIX first,
    so the outcome's own note can follow it)."""
    return f"{TIME_NOTE_PREFIX}{at:%Y-%m-%dT%H:%M:%SZ} is {why}: used the arrival time"


TIME_NOTE_PREFIX = "time "


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
    and replaced by ``received_at``; so is one outside the plausible window (counted as
    ``timestamps_clamped``, and said in the note)."""
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
    at, note = event_time(
        item.get("timestamp"),
        received_at=received_at,
        report=report,
        what=f"status {status} of {key}",
    )
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
        "note": note,
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
