"""Replies: inside the window, templates outside it, uploads, idempotency, lost answers,
read receipts; with real workers (the ``replies`` queue) and the Graph simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from campaigns.models import Suppression
from config.redis import get_redis
from conversations import services
from conversations.models import Conversation, Message
from conversations.services import reply_deliver
from messaging import ratelimit
from tests.conversations.conftest import APP_SECRET, URL, conversation_of, wait_for
from webhooks.models import PendingStatus, StatusUpdate

PHONE = "+919800000001"
WA_ID = PHONE.lstrip("+")


@pytest.fixture(autouse=True)
def fast_shared_rate():
    get_redis().set(ratelimit.RATE_KEY, "1000")


@pytest.fixture
def live_webhooks(sim, live_server):
    """The simulator posts its webhooks (statuses, inbound) to the live server; the
    worker processes them."""
    sim.set_faults(callback_url=f"{live_server.url}{URL}", app_secret=APP_SECRET)
    return live_server


def reply_url(conversation: Conversation, action: str = "reply") -> str:
    return f"/api/conversations/{conversation.pk}/{action}/"


def sent_to(sim, kind: str | None = None) -> list[dict]:
    found = sim.messages(to=WA_ID)
    return [m for m in found if kind is None or m.get("type") == kind]


@pytest.mark.django_db(transaction=True)
def test_a_text_reply_is_sent_once_for_a_double_click_and_follows_its_statuses_to_read(
    sim, live_webhooks, start_worker, engine, api, agent
):
    start_worker()
    sim.inbound(WA_ID, text="Do you deliver to Pune?", name="Asha")
    conversation = wait_for(
        lambda: Conversation.objects.filter(contact__phone=PHONE).first(), what="conversation"
    )
    client = api(agent)
    body = {"text": "Yes, in two days."}
    first = client.post(reply_url(conversation), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = client.post(reply_url(conversation), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201, first.content
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["sent_by"] == "agent" and first.json()["user"] == agent.pk

    message = Message.objects.get(pk=first.json()["id"])
    wait_for(lambda: Message.objects.get(pk=message.pk).status == "read", what="read status")
    texts = sent_to(sim, "text")
    assert [m["text"] for m in texts] == ["Yes, in two days."]
    message.refresh_from_db()
    assert message.wamid == texts[0]["wamid"]
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 1
    # Its statuses were applied to it, none parked as waiting for a campaign message.
    # (The simulator's webhooks may bring "read" before "delivered": that one then
    # changes nothing.)
    outcomes = dict(
        StatusUpdate.objects.filter(wamid=message.wamid).values_list("status", "outcome")
    )
    assert set(outcomes) == {"sent", "delivered", "read"}
    assert outcomes["read"] == "applied"
    assert set(outcomes.values()) <= {"applied", "unchanged"}
    assert not PendingStatus.objects.filter(wamid=message.wamid).exists()


@pytest.mark.django_db
def test_free_form_outside_the_window_is_a_409_that_says_when_and_sends_nothing(
    inbound, number, api, agent
):
    inbound(WA_ID, text="hi")
    conversation = conversation_of(PHONE)
    closed = timezone.now() - timedelta(hours=1)
    Conversation.objects.filter(pk=conversation.pk).update(window_expires_at=closed)
    response = api(agent).post(reply_url(conversation), {"text": "hello?"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"detail", "window_expired_at"}
    assert body["window_expired_at"].startswith(closed.strftime("%Y-%m-%dT%H:%M:%S"))
    assert "24-hour window closed" in body["detail"]
    assert not Message.objects.filter(direction="out").exists()


@pytest.mark.django_db
def test_a_reply_to_an_opted_out_contact_is_a_409_and_sends_nothing(inbound, number, api, agent):
    inbound(WA_ID, text="STOP")
    conversation = conversation_of(PHONE)
    Suppression.objects.create(workspace=number.workspace, phone=PHONE, source="manual")
    response = api(agent).post(reply_url(conversation), {"text": "bye"}, format="json")
    assert response.status_code == 409
    assert "opted out" in response.json()["detail"]
    assert not Message.objects.filter(direction="out").exists()


@pytest.mark.django_db(transaction=True)
def test_an_approved_template_reopens_a_closed_window(sim, start_worker, engine, api, agent):
    start_worker()
    sim.inbound(WA_ID, text="hi")  # opens the simulator's window; nobody listens
    conversation = Conversation.objects.create(
        workspace=engine.workspace,
        number=engine.numbers[0],
        contact=services.contact_ensure(workspace_id=engine.workspace.pk, wa_id=WA_ID),
        status="resolved",
        window_expires_at=timezone.now() - timedelta(hours=2),
    )
    client = api(agent)
    refused = client.post(
        reply_url(conversation),
        {"template": engine.promo.pk, "parameters": {"body.1": "Asha"}},
        format="json",
    )
    assert refused.status_code == 400 and "body.2" in str(refused.json())
    response = client.post(
        reply_url(conversation),
        {"template": engine.promo.pk, "parameters": {"body.1": "Asha", "body.2": "FALL25"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "template"
    wait_for(lambda: sent_to(sim, "template"), what="template send")
    [sent] = sent_to(sim, "template")
    assert sent["template"]["name"] == "seasonal_promo"
    assert sent["components"] == [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "FALL25"}],
        }
    ]
    wait_for(
        lambda: Message.objects.get(pk=response.json()["id"]).status in ("accepted", "sent"),
        what="accepted",
    )
    conversation.refresh_from_db()
    assert conversation.status == "open"


@pytest.mark.django_db
def test_a_template_that_is_not_approved_is_refused(inbound, engine, api, agent):
    inbound(WA_ID, text="hi")
    conversation = conversation_of(PHONE)
    engine.hello.status = "PAUSED"
    engine.hello.save(update_fields=["status"])
    response = api(agent).post(
        reply_url(conversation), {"template": engine.hello.pk}, format="json"
    )
    assert response.status_code == 400
    assert "not APPROVED" in str(response.json())
    assert not Message.objects.filter(direction="out").exists()


@pytest.mark.django_db(transaction=True)
def test_an_image_is_uploaded_to_the_media_endpoint_and_sent_by_its_id(
    sim, start_worker, engine, inbound, api, agent
):
    start_worker()
    inbound(WA_ID, text="send me the catalogue")
    conversation = conversation_of(PHONE)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    upload = SimpleUploadedFile("catalogue.png", png, content_type="image/png")
    response = api(agent).post(
        reply_url(conversation), {"file": upload, "caption": "Our catalogue"}, format="multipart"
    )
    assert response.status_code == 201, response.content
    media = response.json()["media"]
    assert media["mime_type"] == "image/png" and media["id"]
    wait_for(lambda: sent_to(sim, "image"), what="image send")
    [sent] = sent_to(sim, "image")
    assert sent["payload"]["image"] == {"id": media["id"], "caption": "Our catalogue"}


@pytest.mark.django_db
def test_a_file_type_whatsapp_refuses_is_a_400_before_any_upload(inbound, number, api, agent):
    inbound(WA_ID, text="hi")
    conversation = conversation_of(PHONE)
    gif = SimpleUploadedFile("a.gif", b"GIF89a", content_type="image/gif")
    response = api(agent).post(reply_url(conversation), {"file": gif}, format="multipart")
    assert response.status_code == 400
    assert "JPEG or PNG" in str(response.json())
    assert not Message.objects.exists() or not Message.objects.filter(direction="out").exists()


@pytest.mark.django_db(transaction=True)
def test_a_lost_answer_leaves_the_reply_unknown_and_it_is_never_resent(
    sim, start_worker, engine, inbound, api, agent
):
    start_worker(GRAPH_READ_TIMEOUT="1")
    inbound(WA_ID, text="hi")
    conversation = conversation_of(PHONE)
    sim.set_faults(timeout_rate=1.0, timeout_mode="drop")
    response = api(agent).post(reply_url(conversation), {"text": "hello"}, format="json")
    assert response.status_code == 201
    pk = response.json()["id"]
    wait_for(lambda: sent_to(sim, "text"), what="the send to reach the simulator")
    wait_for(lambda: Message.objects.get(pk=pk).error_title, what="the lost answer")
    message = Message.objects.get(pk=pk)
    assert message.status == "unknown" and message.wamid == ""
    sim.set_faults(timeout_rate=0.0)
    # Delivered again (a redelivered task, a second worker): nothing is sent.
    assert reply_deliver(pk) == "not queued"
    assert len(sent_to(sim, "text")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_throttled_reply_is_retried_until_meta_accepts_it_and_sent_once(
    sim, start_worker, engine, inbound, api, agent
):
    start_worker()
    inbound(WA_ID, text="hi")
    conversation = conversation_of(PHONE)
    # Meta's throughput window refuses the first two attempts (in the send's answer).
    sim.set_faults(errors=[{"code": 130429, "to": WA_ID, "count": 2, "mode": "response"}])
    response = api(agent).post(reply_url(conversation), {"text": "hello"}, format="json")
    assert response.status_code == 201
    pk = response.json()["id"]
    wait_for(lambda: Message.objects.get(pk=pk).status == "accepted", what="the reply accepted")
    assert sim.counts()["rejected"] == {"130429": 2}
    [accepted] = sent_to(sim, "text")
    assert accepted["text"] == "hello"
    message = Message.objects.get(pk=pk)
    assert (message.wamid, message.error_code) == (accepted["wamid"], None)


@pytest.mark.django_db(transaction=True)
def test_meta_saying_the_window_closed_fails_the_reply_and_closes_the_window(
    sim, live_webhooks, start_worker, engine, inbound, api, agent
):
    start_worker()
    inbound(WA_ID, text="hi")
    conversation = conversation_of(PHONE)
    sim.set_faults(clock_offset_s=25 * 3600)  # Meta's clock says the window closed
    response = api(agent).post(reply_url(conversation), {"text": "late"}, format="json")
    assert response.status_code == 201
    pk = response.json()["id"]
    wait_for(lambda: Message.objects.get(pk=pk).status == "failed", what="failed")
    message = Message.objects.get(pk=pk)
    assert message.error_code == 131047
    conversation.refresh_from_db()
    assert not conversation.window_open()
    again = api(agent).post(reply_url(conversation), {"text": "again"}, format="json")
    assert again.status_code == 409


@pytest.mark.django_db(transaction=True)
def test_opening_a_thread_marks_its_last_inbound_read_at_meta_once(
    sim, start_worker, engine, inbound, client, agent
):
    start_worker()
    inbound(WA_ID, text="first")
    last = inbound(WA_ID, text="second")
    conversation = conversation_of(PHONE)
    assert conversation.unread == 2
    client.force_login(agent)
    url = f"/admin/conversations/conversation/inbox/{conversation.pk}/"
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    marks = wait_for(sim.read_marks, what="read mark")
    assert [m["message_id"] for m in marks] == [last["message_id"]]
    conversation.refresh_from_db()
    assert conversation.unread == 0
