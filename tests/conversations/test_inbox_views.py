"""The inbox's admin views: list, thread, polling, replies, actions; agents included."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Message, Note
from tests.conversations.conftest import conversation_of

PHONE = "+919800000001"
BASE = "/admin/conversations/conversation/inbox/"


@pytest.fixture
def thread(inbound, engine):
    inbound(PHONE.lstrip("+"), text="Is it in stock?", name="Asha")
    return conversation_of(PHONE)


@pytest.mark.django_db
def test_an_agent_sees_the_list_the_thread_and_the_contact_panel(thread, client, agent):
    client.force_login(agent)
    page = client.get(BASE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Asha" in html and 'href="/admin/conversations/conversation/inbox/' in html
    page = client.get(f"{BASE}{thread.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Is it in stock?" in html
    assert "Window open" in html and "closes in" in html
    assert 'id="reply-text"' in html and "Subscribed" in html
    assert 'hx-trigger="every 2s, wac-poll from:body"' in html


@pytest.mark.django_db
def test_the_poll_brings_new_messages_and_changed_statuses_only(inbound, thread, client, agent):
    client.force_login(agent)
    html = client.get(f"{BASE}{thread.pk}/").content.decode()
    poll = re.search(r'id="thread-poll" hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")
    quiet = client.get(poll).content.decode()
    assert "msg-" not in quiet.split('id="thread-header"')[0]
    assert "beforeend:#messages" not in quiet
    inbound(PHONE.lstrip("+"), text="Hello??")
    fresh = client.get(poll).content.decode()
    assert "beforeend:#messages" in fresh and "Hello??" in fresh
    assert "Is it in stock?" not in fresh


@pytest.mark.django_db
def test_a_reply_from_the_inbox_is_queued_once_per_key(thread, client, agent):
    client.force_login(agent)
    data = {"text": "Yes, 12 left", "idempotency_key": "abc"}
    for _ in range(2):
        response = client.post(f"{BASE}{thread.pk}/reply/", data, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and response.content.strip() == b""
        assert response["HX-Trigger"] == "wac-poll"
    [reply] = Message.objects.filter(direction="out")
    assert (reply.text, reply.user, reply.status) == ("Yes, 12 left", agent, "queued")


@pytest.mark.django_db
def test_a_closed_window_offers_the_template_picker_with_a_preview(thread, client, agent, engine):
    Conversation.objects.filter(pk=thread.pk).update(
        window_expires_at=timezone.now() - timedelta(hours=1)
    )
    client.force_login(agent)
    html = client.get(f"{BASE}{thread.pk}/").content.decode()
    assert "Window closed" in html and 'name="template"' in html
    assert 'id="reply-text"' not in html
    assert "seasonal_promo" in html
    fields = client.get(
        f"{BASE}{thread.pk}/template/", {"template": engine.promo.pk, "param:body.1": "Asha"}
    ).content.decode()
    assert 'name="param:body.1"' in fields and 'name="param:body.2"' in fields
    assert "wac-preview" in fields and "Asha" in fields
    refused = client.post(f"{BASE}{thread.pk}/reply/", {"text": "hi"}, HTTP_HX_REQUEST="true")
    assert b"24-hour window closed" in refused.content
    assert not Message.objects.filter(direction="out").exists()


@pytest.mark.django_db
def test_actions_assign_note_resolve_reopen(thread, client, agent):
    client.force_login(agent)
    url = f"{BASE}{thread.pk}/action/"
    client.post(url, {"action": "assign", "user": "me"})
    client.post(url, {"action": "note", "text": "Called back"})
    client.post(url, {"action": "resolve"})
    thread.refresh_from_db()
    assert (thread.assigned_to, thread.status) == (agent, "resolved")
    assert Note.objects.get().text == "Called back"
    client.post(url, {"action": "reopen"})
    thread.refresh_from_db()
    assert thread.status == "open"


@pytest.mark.django_db
def test_another_workspaces_thread_is_a_404_in_the_inbox(thread, client, outsider):
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)
    assert client.get(f"{BASE}{thread.pk}/").status_code == 404
    assert client.get(f"{BASE}{thread.pk}/poll/").status_code == 404
    assert client.post(f"{BASE}{thread.pk}/reply/", {"text": "x"}).status_code == 404
    assert "Asha" not in client.get(BASE).content.decode()


@pytest.mark.django_db
def test_the_list_filters_by_campaign_mine_and_search(inbound, thread, client, agent, engine):
    from tests.factories import make_campaign

    campaign = make_campaign(workspace=engine.workspace, numbers=engine.numbers, templates=[])
    inbound("919800000009", text="other", name="Ravi")
    Conversation.objects.filter(pk=thread.pk).update(campaign=campaign, assigned_to=agent)
    client.force_login(agent)
    by_campaign = client.get(BASE, {"campaign": campaign.pk}).content.decode()
    assert "Asha" in by_campaign and "Ravi" not in by_campaign
    assert f'<option value="{campaign.pk}" selected>' in by_campaign
    mine = client.get(BASE, {"assigned": "me"}).content.decode()
    assert "Asha" in mine and "Ravi" not in mine
    found = client.get(BASE, {"q": "9800000009"}).content.decode()
    assert "Ravi" in found and "Asha" not in found
