"""Fixtures for the webhook tests: a running campaign with recipients, signed POSTs, and
builders of Meta's payload shapes (graph-api.md, "Webhooks")."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db.models import Count, Q

from campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus
from numbers.models import Number
from templates_sync.models import Template, TemplateStatus
from tests.factories import make_campaign, make_number, make_recipient, make_template
from webhooks.ingest import webhook_event_process, webhook_events_drain
from webhooks.models import WebhookEvent, WebhookEventStatus

_ACCEPTED = (RecipientStatus.SENT, RecipientStatus.DELIVERED, RecipientStatus.READ)
FUNNEL = {
    "total": Q(),
    "sent": Q(status__in=_ACCEPTED),
    "delivered": Q(delivered_at__isnull=False)
    | Q(status__in=[RecipientStatus.DELIVERED, RecipientStatus.READ]),
    "read": Q(status=RecipientStatus.READ),
    "failed": Q(status=RecipientStatus.FAILED),
    "replied": Q(replied_at__isnull=False),
}


def funnel(campaign: Campaign) -> dict[str, int]:
    """The campaign's funnel as its rows say: accepted by Meta (sent or later), delivered,
    read, failed, replied."""
    return campaign.recipients.aggregate(
        **{name: Count("pk", filter=q) for name, q in FUNNEL.items()}
    )


APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
WABA_ID = "100000000000001"
PNID = "200000000000001"
OTHER_PNID = "200000000000002"
DISPLAY = "15550000001"
URL = "/webhooks/whatsapp/"
# 2025-01-01 00:00:00 UTC and the seconds after it: Meta's timestamps are whole seconds.
T0 = 1735689600


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# How the tests process stored events: "drain" is the production path (batches of status
# events, the rest one by one), "one_by_one" the per-event path the admin's reprocess and
# the batch fallback use. Every test runs both ways and must see the same exact outcome.
PROCESSING = {"mode": "drain"}


@pytest.fixture(autouse=True, params=["drain", "one_by_one"])
def processing(request):
    PROCESSING["mode"] = request.param
    yield request.param
    PROCESSING["mode"] = "drain"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.WHATSAPP_VERIFY_TOKEN = VERIFY_TOKEN
    return settings


@dataclass
class World:
    workspace: Any
    number: Number
    other_number: Number
    template: Template
    campaign: Campaign

    def recipient(
        self,
        phone: str,
        *,
        status: str = RecipientStatus.SENT,
        campaign: Campaign | None = None,
        number: Number | None = None,
        sent_at: datetime | None = None,
        **fields: Any,
    ) -> Recipient:
        """``make_recipient`` with the world's campaign, template and number, sent at(0) by
        default: a sent row has the wamid ``wamid.<digits>`` unless ``wamid=`` says otherwise."""
        return make_recipient(
            campaign=campaign or self.campaign,
            phone=phone,
            template=self.template,
            number=number or self.number,
            status=status,
            sent_at=sent_at or at(0),
            **fields,
        )

    def new_campaign(self, name: str, status: str = CampaignStatus.RUNNING) -> Campaign:
        return make_campaign(
            workspace=self.workspace,
            name=name,
            status=status,
            numbers=[self.number],
            templates=[self.template],
        )


@pytest.fixture
def world(workspace) -> World:
    number = make_number(
        workspace=workspace,
        phone_number_id=PNID,
        waba_id=WABA_ID,
        access_token="token-1",
        display_phone_number="+1 555-000-0001",
        quality_rating="GREEN",
        messaging_limit_tier="TIER_1K",
    )
    other = make_number(
        workspace=workspace,
        label="second",
        phone_number_id=OTHER_PNID,
        waba_id=WABA_ID,
        access_token="token-2",
        display_phone_number="+1 555-000-0002",
        messaging_limit_tier="",
    )
    template = make_template(
        workspace=workspace,
        number=number,
        waba_id=WABA_ID,
        meta_id="300000000000001",
        name="seasonal_promo",
        category="MARKETING",
        status=TemplateStatus.APPROVED,
        components=[],
        synced_at=at(0),
    )
    world = World(workspace, number, other, template, None)  # type: ignore[arg-type]
    world.campaign = world.new_campaign("Autumn sale")
    world.campaign.numbers.add(other)
    return world


# --- payloads ---------------------------------------------------------------------------


def status(
    wamid: str | None,
    state: str,
    seconds: int,
    *,
    wa_id: str = "919800000001",
    callback: str | None = None,
    errors: list[dict] | None = None,
    pricing: bool = True,
) -> dict[str, Any]:
    """One value.statuses[] item as Meta sends it."""
    item: dict[str, Any] = {"status": state, "timestamp": str(T0 + seconds), "recipient_id": wa_id}
    if wamid is not None:
        item["id"] = wamid
    if callback is not None:
        item["biz_opaque_callback_data"] = callback
    if state in ("sent", "delivered") and pricing:
        item["conversation"] = {"id": "c0ffee", "origin": {"type": "marketing"}}
        if state == "sent":
            item["conversation"]["expiration_timestamp"] = str(T0 + seconds + 86400)
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "marketing"}
    if errors is not None:
        item["errors"] = errors
    return item


def messages_change(
    *,
    pnid: str = PNID,
    statuses: list[dict] | None = None,
    messages: list[dict] | None = None,
    contacts: list[dict] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": pnid},
    }
    if contacts is not None:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"field": "messages", "value": value}


def payload(*changes: dict, waba_id: str = WABA_ID, time: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": waba_id, "changes": list(changes)}
    if time is not None:
        entry["time"] = T0 + time
    return {"object": "whatsapp_business_account", "entry": [entry]}


def statuses_payload(*items: dict, pnid: str = PNID) -> dict[str, Any]:
    return payload(messages_change(pnid=pnid, statuses=list(items)))


def inbound_payload(
    message: dict, *, wa_id: str = "919800000001", name: str = "Asha", pnid: str = PNID
) -> dict[str, Any]:
    message = {"from": wa_id, "timestamp": str(T0 + 100), **message}
    return payload(
        messages_change(
            pnid=pnid,
            contacts=[{"profile": {"name": name}, "wa_id": wa_id}],
            messages=[message],
        )
    )


# --- posting and processing ------------------------------------------------------------


@pytest.fixture
def post(client):
    """``post(payload_or_bytes, signature=...)``: a signed POST through the real view."""

    def send(body: Any, *, signature: str | None = "sign", **headers: str):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if signature == "sign":
            signature = sign(raw)
        if signature is not None:
            headers["HTTP_X_HUB_SIGNATURE_256"] = signature
        return client.post(URL, data=raw, content_type="application/json", **headers)

    return send


def process_received() -> list[WebhookEvent]:
    """Process every received event, oldest first, the way PROCESSING says; returns them."""
    ids = list(
        WebhookEvent.objects.filter(status=WebhookEventStatus.RECEIVED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if PROCESSING["mode"] == "one_by_one":
        return [webhook_event_process(event_id=pk) for pk in ids]
    while webhook_events_drain():
        pass
    events = WebhookEvent.objects.in_bulk(ids)
    return [events[pk] for pk in ids]


@pytest.fixture
def deliver(post):
    """POST a signed payload and process it; returns the processed event."""

    def run(body: Any) -> WebhookEvent:
        response = post(body)
        assert response.status_code == 200, response.content
        [event] = process_received()
        return event

    return run
