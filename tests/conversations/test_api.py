"""The conversations API: fields, filters, search, actions, isolation and roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Message, Note
from tests.conversations.conftest import conversation_of

PHONE = "+919800000001"
OTHER = "+919800000002"


@pytest.fixture
def two(inbound, engine):
    inbound(PHONE.lstrip("+"), text="hello", name="Asha Rao")
    inbound(OTHER.lstrip("+"), text="price?", name="Vikram")
    return conversation_of(PHONE), conversation_of(OTHER)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


@pytest.mark.django_db
def test_conversation_fields_are_those_of_api_md(two, api, agent):
    asha, _ = two
    response = api(agent).get(f"/api/conversations/{asha.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "number",
        "contact",
        "status",
        "assigned_to",
        "unread",
        "window_expires_at",
        "window_open",
        "last_message_at",
        "last_message_preview",
        "campaign",
    }
    assert body["contact"] == {"id": asha.contact_id, "phone": PHONE, "name": "Asha Rao"}
    assert (body["status"], body["unread"], body["window_open"]) == ("open", 1, True)
    messages = api(agent).get(f"/api/conversations/{asha.pk}/messages/").json()["results"]
    assert set(messages[0]) == {
        "id",
        "direction",
        "kind",
        "text",
        "media",
        "payload",
        "wamid",
        "status",
        "error_code",
        "error_title",
        "sent_by",
        "user",
        "created_at",
        "automation",
    }
    contact = api(agent).get(f"/api/contacts/{asha.contact_id}/").json()
    assert set(contact) == {
        "id",
        "phone",
        "wa_id",
        "name",
        "attributes",
        "opted_out",
        "first_seen_at",
        "last_inbound_at",
    }
    assert contact["opted_out"] is False


@pytest.mark.django_db
def test_messages_after_an_id_are_only_the_new_ones(inbound, two, api, agent):
    asha, _ = two
    client = api(agent)
    [first] = client.get(f"/api/conversations/{asha.pk}/messages/").json()["results"]
    inbound(PHONE.lstrip("+"), text="are you there?")
    newer = client.get(f"/api/conversations/{asha.pk}/messages/?after={first['id']}").json()
    assert [m["text"] for m in newer["results"]] == ["are you there?"]
    assert client.get(f"/api/conversations/{asha.pk}/messages/?after=x").status_code == 400


@pytest.mark.django_db
def test_filters_and_search_by_phone_with_or_without_plus_or_name(two, api, agent, owner):
    asha, vikram = two
    client = api(agent)
    base = "/api/conversations/"
    assert ids(client.get(base)) == sorted([asha.pk, vikram.pk])
    assert ids(client.get(base, {"q": "+91 98000 00001"})) == [asha.pk]
    assert ids(client.get(base, {"q": "919800000001"})) == [asha.pk]
    assert ids(client.get(base, {"q": "vik"})) == [vikram.pk]
    client.post(f"{base}{asha.pk}/assign/", {"user": agent.pk}, format="json")
    assert ids(client.get(base, {"assigned": "me"})) == [asha.pk]
    assert ids(client.get(base, {"assigned": "none"})) == [vikram.pk]
    assert ids(client.get(base, {"assigned": str(agent.pk)})) == [asha.pk]
    assert ids(api(owner).get(base, {"assigned": "me"})) == []
    Conversation.objects.filter(pk=vikram.pk).update(
        window_expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert ids(client.get(base, {"window": "open"})) == [asha.pk]
    client.post(f"{base}{vikram.pk}/resolve/")
    assert ids(client.get(base, {"status": "resolved"})) == [vikram.pk]
    assert ids(client.get(base, {"status": "open"})) == [asha.pk]
    assert client.get(base, {"status": "closed"}).status_code == 400
    assert client.get(base, {"campaign": "abc"}).status_code == 400
    contacts = client.get("/api/contacts/", {"q": "+919800000002"}).json()["results"]
    assert [c["phone"] for c in contacts] == [OTHER]


@pytest.mark.django_db
def test_an_agent_assigns_resolves_reopens_and_notes(two, api, agent, owner):
    asha, _ = two
    client = api(agent)
    base = f"/api/conversations/{asha.pk}/"
    assert (
        client.post(f"{base}assign/", {"user": owner.pk}, format="json").json()["assigned_to"]
        == owner.pk
    )
    assert (
        client.post(f"{base}assign/", {"user": None}, format="json").json()["assigned_to"] is None
    )
    assert client.post(f"{base}resolve/").json()["status"] == "resolved"
    assert client.post(f"{base}reopen/").json()["status"] == "open"
    note = client.post(f"{base}notes/", {"text": "VIP, answer first"}, format="json")
    assert note.status_code == 201
    assert Note.objects.get().text == "VIP, answer first"
    assert Note.objects.get().user == agent


@pytest.mark.django_db
def test_assigning_to_someone_outside_the_workspace_is_refused(two, api, agent, outsider):
    asha, _ = two
    response = api(agent).post(
        f"/api/conversations/{asha.pk}/assign/", {"user": outsider.pk}, format="json"
    )
    assert response.status_code == 400
    asha.refresh_from_db()
    assert asha.assigned_to is None


@pytest.mark.django_db
def test_another_workspaces_conversation_is_a_404_for_every_call(two, api, outsider):
    asha, _ = two
    client = api(outsider)
    base = f"/api/conversations/{asha.pk}/"
    assert client.get(base).status_code == 404
    assert client.get(f"{base}messages/").status_code == 404
    assert client.post(f"{base}reply/", {"text": "hi"}, format="json").status_code == 404
    assert client.post(f"{base}assign/", {"user": None}, format="json").status_code == 404
    assert client.post(f"{base}resolve/").status_code == 404
    assert client.post(f"{base}notes/", {"text": "x"}, format="json").status_code == 404
    assert client.get(f"/api/contacts/{asha.contact_id}/").status_code == 404
    assert client.get("/api/conversations/").json()["results"] == []
    assert client.get("/api/contacts/").json()["results"] == []
    assert not Message.objects.filter(direction="out").exists()
    asha.refresh_from_db()
    assert asha.status == "open"


@pytest.mark.django_db
def test_an_agent_may_not_change_numbers_or_templates(two, api, agent, engine):
    client = api(agent)
    number = engine.numbers[0]
    assert (
        client.patch(f"/api/numbers/{number.pk}/", {"label": "x"}, format="json").status_code == 403
    )
    number.refresh_from_db()
    assert number.label != "x"
    assert client.post("/api/templates/sync/").status_code == 403
