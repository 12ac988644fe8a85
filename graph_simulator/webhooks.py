"""Signed webhook delivery from the simulator: status updates and inbound messages."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from .state import FAIL_TEXTS, wa_id_for

if TYPE_CHECKING:
    from .state import MessageRecord, SimState

logger = logging.getLogger("graph_simulator.webhooks")

# A conversation (Meta's old pricing unit) lasts 24 hours from its first message.
CONVERSATION_SECONDS = 24 * 3600
# What an inbound message of each media kind is, unless the control says otherwise.
_DEFAULT_MIME = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/ogg; codecs=opus",
    "document": "application/pdf",
    "sticker": "image/webp",
}
INBOUND_KINDS = (
    "text",
    "stop",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "unsupported",
)


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 header value Meta sends for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookDispatcher:
    """Queues webhook events by due time and POSTs them in batches, off the send path.

    An event is (kind, data): ("status", (record, status)), ("inbound", (phone_number_id,
    value)) or ("change", (waba_id, field, value)). Deliveries are retried a few times.
    """

    def __init__(self, state: SimState) -> None:
        self.state = state
        self._heap: list[tuple[float, int, str, Any]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None
        # True while the runner holds a popped batch not yet handed to a delivery task.
        self._holding = False
        self.reset_stats()

    def reset_stats(self) -> None:
        self.stats: dict[str, Any] = {
            "posts_ok": 0,
            "posts_failed": 0,
            "attempts_failed": 0,
            "events_delivered": 0,
            "last_error": None,
        }

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def clear(self) -> None:
        """Forget queued events and cancel deliveries in flight (used by reset)."""
        self._heap.clear()
        for task in list(self._tasks):
            task.cancel()
        self.reset_stats()
        self._update_idle()

    # -- scheduling ----------------------------------------------------------------------

    def push(self, due: float, kind: str, data: Any) -> None:
        order = next(self._order)
        heapq.heappush(self._heap, (due, order, kind, data))
        self._idle.clear()
        if self._heap[0][1] == order:  # a new earliest event: the runner must re-plan
            self._wake.set()

    def poke(self) -> None:
        """Make the runner look at its queue again (settings changed)."""
        self._wake.set()
        self._update_idle()

    @property
    def pending(self) -> int:
        return len(self._heap)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def schedule_message(self, record: MessageRecord) -> None:
        """Queue the status updates (and maybe a reply) that Meta would send for it."""
        faults = self.state.faults
        if not faults.callback_url:
            return
        rng = self.state.rng
        delay = faults.webhook_delay_ms / 1000.0
        now = time.monotonic()
        events: list[tuple[float, str, Any]]
        if record.fail_code is not None:
            events = [(now + delay, "status", (record, "failed"))]
        else:
            events = [
                (now + delay, "status", (record, "sent")),
                (now + 2 * delay, "status", (record, "delivered")),
            ]
            if faults.read_rate >= 1.0 or rng.random() < faults.read_rate:
                events.append((now + 3 * delay, "status", (record, "read")))
            if faults.reply_rate and rng.random() < faults.reply_rate:
                value = inbound_value(
                    self.state,
                    phone_number_id=record.phone_number_id,
                    sender=record.wa_id,
                    kind="text",
                    text=faults.reply_text,
                    context_id=record.wamid,
                )
                events.append((now + 4 * delay, "inbound", (record.phone_number_id, value)))
        for due, kind, data in events:
            self.push(due, kind, data)
            if faults.webhook_duplicates and rng.random() < faults.webhook_duplicates:
                self.push(due, kind, data)

    # -- delivery ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            faults = self.state.faults
            if not self._heap or faults.webhooks_paused:
                self._update_idle()
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._heap[0][0] - time.monotonic()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            now = time.monotonic()
            batch = []
            while self._heap and self._heap[0][0] <= now and len(batch) < faults.webhook_batch:
                _, _, kind, data = heapq.heappop(self._heap)
                batch.append((kind, data))
            url = faults.callback_url
            if not url:
                continue
            if faults.webhook_shuffle:
                self.state.rng.shuffle(batch)
            body = json.dumps(build_payload(self.state, batch)).encode()
            self._holding = True
            try:
                # Bound the deliveries in flight so a slow receiver cannot pile up tasks.
                while len(self._tasks) >= faults.webhook_concurrency:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                task = asyncio.create_task(self._deliver(url, faults.app_secret, body, len(batch)))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
            finally:
                self._holding = False

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._update_idle()

    def _update_idle(self) -> None:
        if (
            not self._tasks
            and not self._holding
            and (not self._heap or self.state.faults.webhooks_paused)
        ):
            self._idle.set()
        else:
            self._idle.clear()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued (or delivery is paused) and nothing is in flight."""
        self._update_idle()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _deliver(self, url: str, secret: str, body: bytes, events: int) -> None:
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, body)}
        retries = self.state.faults.webhook_retries
        for attempt in range(retries + 1):
            try:
                assert self._session is not None
                async with self._session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status < 300:
                        self.stats["posts_ok"] += 1
                        self.stats["events_delivered"] += events
                        return
                    error = f"HTTP {response.status}"
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.stats["attempts_failed"] += 1
            self.stats["last_error"] = error
            if attempt < retries:
                await asyncio.sleep(0.2 * 2**attempt)
        self.stats["posts_failed"] += 1
        logger.warning("webhook to %s given up after %d attempts: %s", url, retries + 1, error)

    async def post_now(self, body: dict[str, Any]) -> tuple[int | None, str | None]:
        """POST one payload at once (for the control API); return (status, error)."""
        faults = self.state.faults
        if not faults.callback_url:
            return None, "no callback_url configured"
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(faults.app_secret, raw),
        }
        try:
            assert self._session is not None
            async with self._session.post(faults.callback_url, data=raw, headers=headers) as resp:
                await resp.read()
                return resp.status, None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"


def _metadata(state: SimState, phone_number_id: str) -> dict[str, str]:
    number = state.numbers.get(phone_number_id)
    display = number.display if number else phone_number_id
    return {
        "display_phone_number": "".join(c for c in display if c.isdigit()),
        "phone_number_id": phone_number_id,
    }


def status_item(record: MessageRecord, status: str) -> dict[str, Any]:
    """One entry of value.statuses[] as Meta sends it."""
    now = int(time.time())
    item: dict[str, Any] = {
        "id": record.wamid,
        "status": status,
        "timestamp": str(now),
        "recipient_id": record.wa_id,
    }
    if record.callback_data is not None:
        item["biz_opaque_callback_data"] = record.callback_data
    if record.user_id is not None and status != "failed":
        # Business-scoped user id; Meta leaves it out of a failed status sent to a phone.
        item["recipient_user_id"] = record.user_id
    if status in ("sent", "delivered"):
        conversation: dict[str, Any] = {
            "id": hashlib.sha1(  # noqa: S324 - an id, not a secret
                f"{record.phone_number_id}:{record.wa_id}:{record.category}".encode()
            ).hexdigest()[:32],
            "origin": {"type": record.category},
        }
        if status == "sent":
            conversation["expiration_timestamp"] = str(
                int(record.accepted_wall) + CONVERSATION_SECONDS
            )
        item["conversation"] = conversation
        item["pricing"] = {
            "billable": record.category != "service",
            "pricing_model": "PMP",
            "category": record.category,
        }
    elif status == "failed":
        code = record.fail_code or 131026
        title, details = FAIL_TEXTS.get(code, ("Message failed", "Message failed"))
        item["errors"] = [
            {
                "code": code,
                "title": title,
                "message": title,
                "error_data": {"details": details},
            }
        ]
    return item


def build_payload(state: SimState, batch: list[tuple[str, Any]]) -> dict[str, Any]:
    """Group a batch of events into one webhook body: entries per WABA, changes per number."""
    entries: dict[str, list[dict[str, Any]]] = {}
    changes: dict[tuple[str, str, str], dict[str, Any]] = {}
    for kind, data in batch:
        if kind == "change":
            waba_id, field, value = data
            entries.setdefault(waba_id, []).append({"field": field, "value": value})
            continue
        if kind == "status":
            record, status = data
            waba_id, pnid = record.waba_id, record.phone_number_id
        else:  # inbound
            pnid, value = data
            number = state.numbers.get(pnid)
            waba_id = number.waba_id if number else ""
        key = (waba_id, "messages", pnid)
        change = changes.get(key)
        if change is None:
            change = {
                "field": "messages",
                "value": {"messaging_product": "whatsapp", "metadata": _metadata(state, pnid)},
            }
            changes[key] = change
            entries.setdefault(waba_id, []).append(change)
        target = change["value"]
        if kind == "status":
            target.setdefault("statuses", []).append(status_item(record, status))
        else:
            target.setdefault("contacts", []).extend(value["contacts"])
            target.setdefault("messages", []).extend(value["messages"])
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": items} for waba_id, items in entries.items()],
    }


def inbound_value(
    state: SimState,
    *,
    phone_number_id: str,
    sender: str,
    kind: str = "text",
    text: str | None = None,
    payload: str | None = None,
    context_id: str | None = None,
    name: str | None = None,
    message_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """value.contacts/messages for a user's message of any kind Meta sends.

    `kind` is one of INBOUND_KINDS. `text` is the text body, a caption, a button's or
    reply's title or a reaction's emoji; `payload` a button payload or reply id. Extras:
    `interactive_type` (button_reply | list_reply), `description`, `filename`,
    `mime_type`, `content` (bytes of an inbound media file, stored so GET /{media-id}
    serves it), `voice`, `animated`, `latitude`, `longitude`, `address`, `url`,
    `contacts` (Meta's contact cards), `reaction_to` (the wamid reacted to),
    `unsupported_type`, `username`, `hide_phone` (a username user: no wa_id/from),
    `timestamp`.
    """
    if kind not in INBOUND_KINDS:
        raise ValueError(f"unknown inbound kind {kind!r}; known: {', '.join(INBOUND_KINDS)}")
    sender = wa_id_for(sender, state.faults.wa_id_rewrite)
    number = state.numbers.get(phone_number_id)
    waba_id = number.waba_id if number else ""
    state.seq += 1
    wamid = message_id or f"wamid.IN.{state.seq}.{sender}"
    timestamp = extra.get("timestamp") or int(state.now())
    message: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": str(timestamp)}
    if kind in ("text", "stop"):
        message["type"] = "text"
        message["text"] = {"body": "STOP" if kind == "stop" and text is None else (text or "")}
    elif kind == "button":
        message["type"] = "button"
        message["button"] = {"payload": payload or text or "", "text": text or payload or ""}
    elif kind == "interactive":
        reply_type = str(extra.get("interactive_type") or "button_reply")
        if reply_type not in ("button_reply", "list_reply"):
            raise ValueError("interactive_type must be button_reply or list_reply")
        reply: dict[str, Any] = {"id": payload or "", "title": text or ""}
        if reply_type == "list_reply" and extra.get("description"):
            reply["description"] = str(extra["description"])
        message["type"] = "interactive"
        message["interactive"] = {"type": reply_type, reply_type: reply}
    elif kind in _DEFAULT_MIME:
        mime = str(extra.get("mime_type") or _DEFAULT_MIME[kind])
        content = extra.get("content")
        if content is None:
            content = f"simulated {kind} {wamid}".encode()
        media = state.media_add(phone_number_id, mime, content, str(extra.get("filename") or ""))
        item: dict[str, Any] = {"mime_type": mime, "sha256": media.sha256, "id": media.id}
        if kind in ("image", "video", "document") and text:
            item["caption"] = text
        if kind == "document":
            item["filename"] = str(extra.get("filename") or "document.pdf")
        if kind == "audio":
            item["voice"] = bool(extra.get("voice", True))
        if kind == "sticker":
            item["animated"] = bool(extra.get("animated", False))
        message["type"] = kind
        message[kind] = item
    elif kind == "location":
        try:
            location: dict[str, Any] = {
                "latitude": float(extra.get("latitude", 0.0)),
                "longitude": float(extra.get("longitude", 0.0)),
            }
        except (TypeError, ValueError):
            raise ValueError("latitude and longitude must be numbers") from None
        for key in ("address", "url"):
            if extra.get(key):
                location[key] = str(extra[key])
        if text:
            location["name"] = text
        message["type"] = "location"
        message["location"] = location
    elif kind == "contacts":
        cards = extra.get("contacts") or [
            {
                "name": {"formatted_name": text or "Sim Friend", "first_name": text or "Sim"},
                "phones": [{"phone": "+1 555 0100", "wa_id": "15550100", "type": "CELL"}],
            }
        ]
        if not isinstance(cards, list) or not all(isinstance(c, dict) for c in cards):
            raise ValueError("contacts must be a list of contact cards")
        message["type"] = "contacts"
        message["contacts"] = cards
    elif kind == "reaction":
        target = extra.get("reaction_to") or context_id
        if not target:
            raise ValueError("a reaction needs reaction_to (the wamid reacted to)")
        message["type"] = "reaction"
        # An empty emoji is Meta's "reaction removed".
        message["reaction"] = {"message_id": str(target), "emoji": text or ""}
        context_id = None
    else:  # unsupported
        message["type"] = "unsupported"
        message["unsupported"] = {"type": str(extra.get("unsupported_type") or "unknown")}
        message["errors"] = [
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."},
            }
        ]
    if context_id:
        display = number.display if number else phone_number_id
        message["context"] = {"from": "".join(c for c in display if c.isdigit()), "id": context_id}
    contact: dict[str, Any] = {"profile": {"name": name or "Sim User"}, "wa_id": sender}
    if state.faults.bsuid:
        user_id = state.user_id_for(waba_id, sender)
        contact["user_id"] = user_id
        message["from_user_id"] = user_id
    if extra.get("username"):
        contact["profile"]["username"] = str(extra["username"])
    if extra.get("hide_phone"):
        # A username user whose phone Meta withholds: only the business-scoped id is left.
        contact.pop("wa_id")
        message.pop("from")
    # Any user message opens the 24 h customer-service window for free-form replies.
    state.service_windows[(phone_number_id, sender)] = state.now()
    return {"contacts": [contact], "messages": [message]}
