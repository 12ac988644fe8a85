"""Run the Graph API simulator in a child process for tests and benchmarks, and drive it."""

from __future__ import annotations

import base64
from typing import Any

from simkit.process import ControlClient, SimulatorChild


class SimulatorControl(ControlClient):
    """Thin client for the simulator's /_sim/ control API."""

    label = "simulator"

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        """Accepted messages, oldest first; filters: to, phone_number_id, template,
        callback_data, wamid, since_seq, limit."""
        return self._call("GET", "messages", params=filters)["messages"]

    def counts(self, *, duplicates_only: bool = False) -> dict[str, Any]:
        params = {"duplicates_only": "1"} if duplicates_only else None
        return self._call("GET", "counts", params=params)

    def reset(self) -> None:
        """Back to the startup state: seed data, startup faults, no messages, no webhooks."""
        self._call("POST", "reset")

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Change limits, faults or webhook settings (see Faults); returns them all."""
        return self._call("POST", "faults", json=settings)

    def inbound(
        self,
        sender: str,
        *,
        phone_number_id: str | None = None,
        type: str = "text",
        text: str | None = None,
        payload: str | None = None,
        context_id: str | None = None,
        name: str | None = None,
        message_id: str | None = None,
        content: bytes | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Deliver a user's message webhook now; returns message_id, delivered, payload.

        `type` is any kind Meta sends (see graph_simulator.webhooks.INBOUND_KINDS);
        `extra` takes inbound_value's extras (interactive_type, filename, latitude, ...);
        `content` is the bytes of an inbound media file.
        """
        body = {
            "from": sender,
            "phone_number_id": phone_number_id,
            "type": type,
            "text": text,
            "payload": payload,
            "context_id": context_id,
            "name": name,
            "message_id": message_id,
            **extra,
        }
        if content is not None:
            body["content_base64"] = base64.b64encode(content).decode()
        return self._call("POST", "inbound", json={k: v for k, v in body.items() if v is not None})

    def upsert_templates(
        self, *templates: dict[str, Any], waba_id: str | None = None, notify: bool = True
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"templates": list(templates), "notify": notify}
        if waba_id:
            body["waba_id"] = waba_id
        return self._call("POST", "templates", json=body)["templates"]

    def token(self, token: str, action: str = "add", wabas: list[str] | None = None) -> None:
        """action: add, expire, restore or revoke."""
        self._call("POST", "tokens", json={"token": token, "action": action, "wabas": wabas})

    def update_number(self, phone_number_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", "numbers", json={"id": phone_number_id, **fields})

    def webhooks(self, *, wait: float | None = None) -> dict[str, Any]:
        """Webhook delivery stats; with `wait`, first wait (seconds) until nothing is queued."""
        params = {"wait": str(wait)} if wait is not None else None
        return self._call("GET", "webhooks", params=params)

    def read_marks(self) -> list[dict[str, Any]]:
        """Mark-as-read calls received: phone_number_id, message_id, at, typing."""
        return self._call("GET", "read_marks")["read_marks"]

    def set_quality(
        self,
        quality: str,
        *,
        phone_number_id: str | None = None,
        template: str | None = None,
        language: str = "en_US",
        waba_id: str | None = None,
    ) -> dict[str, Any]:
        """Set a number's (or a template's) quality now; Meta's webhooks follow."""
        if phone_number_id is not None:
            body: dict[str, Any] = {"phone_number_id": phone_number_id, "quality": quality}
        else:
            body = {"template": template, "language": language, "quality": quality}
            if waba_id:
                body["waba_id"] = waba_id
        return self._call("POST", "quality", json=body)

    def webhook_change(
        self, field: str, value: dict[str, Any], *, waba_id: str | None = None
    ) -> dict[str, Any]:
        """Deliver any account-level change now (account_update, template_category_update,
        business_capability_update, ...); returns delivered, status, payload."""
        body: dict[str, Any] = {"field": field, "value": value}
        if waba_id:
            body["waba_id"] = waba_id
        return self._call("POST", "webhook", json=body)

    def webhook_errors(
        self, *errors: dict[str, Any], phone_number_id: str | None = None
    ) -> dict[str, Any]:
        """Deliver a `messages` change carrying `value.errors` (no status) now."""
        body: dict[str, Any] = {"errors": list(errors)}
        if phone_number_id:
            body["phone_number_id"] = phone_number_id
        return self._call("POST", "webhook", json=body)

    def set_messaging_limit(self, tier: str, *, waba_id: str | None = None) -> dict[str, Any]:
        """Set the business portfolio's messaging limit (TIER_250 ... TIER_UNLIMITED)."""
        body: dict[str, Any] = {"messaging_limit": tier}
        if waba_id:
            body["waba_id"] = waba_id
        return self._call("POST", "business", json=body)


class SimulatorProcess(SimulatorChild[SimulatorControl]):
    """The simulator in a child process on a free loopback port.

    >>> with SimulatorProcess("--mps", "0") as sim:
    ...     settings.WHATSAPP_GRAPH_URL = sim.base_url
    ...     sim.control.messages()
    """

    module = "graph_simulator"
    label = "simulator"
    log_prefix = "graph-simulator-"
    control_class = SimulatorControl
