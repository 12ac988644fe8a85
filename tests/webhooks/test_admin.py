"""Admin: raw events read-only for superusers with a reprocess action; inbound per workspace."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.webhooks.conftest import inbound_payload, process_received, status, statuses_payload
from webhooks.models import InboundMessage, WebhookEvent

CHANGELIST = "/admin/webhooks/webhookevent/"


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")


def test_superusers_browse_events_read_only_and_reprocess_them(client, post, world, superuser):
    recipient = world.recipient("+919800000001")
    post(statuses_payload(status(recipient.wamid, "read", 9)))
    [event] = WebhookEvent.objects.all()
    client.force_login(superuser)

    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert b"Reprocess selected events" in listing.content
    detail = client.get(f"{CHANGELIST}{event.pk}/change/")
    assert detail.status_code == 200
    assert recipient.wamid.encode() in detail.content
    assert b'name="_save"' not in detail.content
    assert client.get(f"{CHANGELIST}add/").status_code == 403

    response = client.post(CHANGELIST, {"action": "reprocess", "_selected_action": [event.pk]})
    assert response.status_code == 302
    event.refresh_from_db()
    recipient.refresh_from_db()
    assert (event.status, recipient.status) == ("processed", "read")


def test_members_see_no_raw_events_but_their_workspaces_inbound_messages(
    client, post, world, owner, outsider
):
    post(inbound_payload({"id": "wamid.IN.1", "type": "text", "text": {"body": "hello"}}))
    process_received()
    [message] = InboundMessage.objects.all()
    client.force_login(owner)
    assert client.get(CHANGELIST).status_code == 403
    assert b"hello" in client.get("/admin/webhooks/inboundmessage/").content
    assert client.get(f"/admin/webhooks/inboundmessage/{message.pk}/change/").status_code == 200
    client.force_login(outsider)
    assert b"hello" not in client.get("/admin/webhooks/inboundmessage/").content
    assert client.get(f"/admin/webhooks/inboundmessage/{message.pk}/change/").status_code == 302
