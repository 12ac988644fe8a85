"""Inbound messages of every type thread into one conversation per (number, contact)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Contact, Conversation, Message
from conversations.services import phone_of
from conversations.signals import inbound_created
from tests.conversations.conftest import conversation_of, timeline
from webhooks.models import InboundMessage, WebhookEvent

PHONE = "+919800000001"


@pytest.mark.django_db
def test_every_inbound_type_threads_into_one_conversation_with_its_window(inbound, number):
    kinds = [
        {"type": "text", "text": "Is the sale still on?"},
        {"type": "image", "text": "my receipt"},
        {"type": "video"},
        {"type": "audio"},
        {"type": "document", "filename": "invoice.pdf"},
        {"type": "sticker"},
        {"type": "location", "latitude": 12.97, "longitude": 77.59},
        {"type": "contacts"},
        {"type": "interactive", "text": "Yes please", "payload": "yes"},
        {"type": "button", "text": "Stop promotions", "payload": "STOP"},
        {"type": "reaction", "text": "👍", "reaction_to": "wamid.OUT.1"},
        {"type": "unsupported"},
    ]
    for kw in kinds:
        inbound(PHONE.lstrip("+"), name="Asha", **kw)
    conversation = conversation_of(PHONE)
    messages = list(conversation.messages.order_by("created_at", "pk"))
    assert [m.kind for m in messages] == [kw["type"] for kw in kinds]
    assert {m.direction for m in messages} == {"in"}
    assert {m.sent_by for m in messages} == {"contact"}
    assert messages[0].text == "Is the sale still on?"
    assert messages[8].payload == "yes" and messages[9].payload == "STOP"
    assert messages[6].media["latitude"] == 12.97
    assert conversation.unread == len(kinds)
    assert conversation.status == "open"
    last = max(m.created_at for m in messages)
    assert conversation.window_expires_at == last + timedelta(hours=24)
    assert conversation.window_open()
    contact = conversation.contact
    assert (contact.phone, contact.wa_id, contact.name) == (PHONE, PHONE.lstrip("+"), "Asha")
    assert contact.last_inbound_at == last
    assert Conversation.objects.count() == 1 and Contact.objects.count() == 1


@pytest.mark.django_db
def test_a_duplicate_and_an_out_of_order_delivery_make_one_message_each_in_place(inbound, number):
    first = inbound(PHONE.lstrip("+"), text="first", process=False)
    second = inbound(PHONE.lstrip("+"), text="second", process=False)
    # Meta delivers the later one first, then both again.
    late = copy.deepcopy(first["payload"])
    inbound(redeliver=second["payload"])
    inbound(redeliver=late)
    inbound(redeliver=first["payload"])
    inbound(redeliver=second["payload"])
    conversation = conversation_of(PHONE)
    assert [t[2] for t in timeline(conversation)] == ["first", "second"]
    assert conversation.unread == 2
    assert conversation.last_message_preview == "second"


@pytest.mark.django_db
def test_a_new_inbound_reopens_a_resolved_conversation_and_signals_once(inbound, number):
    seen = []

    def receiver(sender, message, **kwargs):
        seen.append(message.wamid)

    inbound_created.connect(receiver)
    try:
        answer = inbound(PHONE.lstrip("+"), text="hi")
        Conversation.objects.update(status="resolved")
        inbound(redeliver=answer["payload"])  # a redelivery changes nothing
        assert conversation_of(PHONE).status == "resolved"
        again = inbound(PHONE.lstrip("+"), text="hello again")
    finally:
        inbound_created.disconnect(receiver)
    assert seen == [answer["message_id"], again["message_id"]]
    assert conversation_of(PHONE).status == "open"


@pytest.mark.django_db
def test_each_number_has_its_own_conversation_with_the_contact(inbound, engine):
    a, b = engine.numbers
    inbound(PHONE.lstrip("+"), phone_number_id=a.phone_number_id, text="to a")
    inbound(PHONE.lstrip("+"), phone_number_id=b.phone_number_id, text="to b")
    assert Contact.objects.count() == 1
    assert sorted(Conversation.objects.values_list("number_id", flat=True)) == [a.pk, b.pk]
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_a_reply_to_a_campaign_threads_after_its_template_with_the_csv_attributes(
    inbound, engine, api, agent
):
    from campaigns.models import CampaignStatus
    from tests.factories import make_campaign, make_recipient

    number = engine.numbers[0]
    campaign = make_campaign(
        workspace=engine.workspace,
        numbers=[number],
        templates=[engine.promo],
        status=CampaignStatus.RUNNING,
        variable_mapping={str(engine.promo.pk): {"body.1": "first_name", "body.2": "code"}},
    )
    recipient = make_recipient(
        campaign=campaign,
        phone=PHONE,
        status="delivered",
        variables={"body.1": "Asha", "body.2": "FALL25"},
        sent_at=timezone.now() - timedelta(minutes=5),
    )
    inbound(PHONE.lstrip("+"), text="Does FALL25 work online?", context_id=recipient.wamid)
    conversation = conversation_of(PHONE)
    assert conversation.campaign_id == campaign.pk
    rows = timeline(conversation)
    assert [r[:2] for r in rows] == [("out", "template"), ("in", "text")]
    assert "Asha" in rows[0][2] and "FALL25" in rows[0][2]
    assert conversation.contact.attributes == {"first_name": "Asha", "code": "FALL25"}
    template_message = Message.objects.get(kind="template")
    assert template_message.recipient_id == recipient.pk and template_message.sent_by == "campaign"
    # Its status is the recipient's, read from there.
    recipient.status = "read"
    recipient.save(update_fields=["status"])
    listed = api(agent).get(f"/api/conversations/{conversation.pk}/messages/").json()["results"]
    assert [(m["kind"], m["status"]) for m in listed] == [
        ("template", "read"),
        ("text", "received"),
    ]
    assert listed[0]["wamid"] == recipient.wamid
    assert api(agent).get("/api/conversations/", {"campaign": campaign.pk}).json()["count"] == 1
    recipient.refresh_from_db()
    assert recipient.replied_at is not None


@pytest.mark.django_db
def test_a_user_id_without_a_phone_is_a_contact_merged_once_the_phone_is_known(
    inbound, sim, number
):
    sim.inbound(PHONE.lstrip("+"), text="warm up")  # the simulator learns the user's id
    hidden = inbound(PHONE.lstrip("+"), text="from a username", hide_phone=True)
    value = hidden["payload"]["entry"][0]["changes"][0]["value"]
    user_id = value["messages"][0]["from_user_id"]
    assert "from" not in value["messages"][0]
    contact = Contact.objects.get()
    assert (contact.phone, contact.bsuid) == ("", user_id)
    # Now a message with both: the same person, one contact, one conversation.
    inbound(PHONE.lstrip("+"), text="with my phone")
    contact = Contact.objects.get()
    assert (contact.phone, contact.bsuid) == (PHONE, user_id)
    conversation = Conversation.objects.get()
    assert [t[2] for t in timeline(conversation)] == ["from a username", "with my phone"]


@pytest.mark.django_db
def test_a_message_from_no_whatsapp_id_is_kept_but_not_threaded_and_its_event_goes_on(
    sim, inbound, number
):
    answer = sim.inbound(PHONE.lstrip("+"), text="hello")
    payload = copy.deepcopy(answer["payload"])
    value = payload["entry"][0]["changes"][0]["value"]
    stray = copy.deepcopy(value["messages"][0])
    stray.update({"id": "wamid.STRAY", "from": "not-a-phone"})
    stray.pop("from_user_id", None)
    value["messages"].insert(0, stray)
    inbound(redeliver=payload)

    [event] = WebhookEvent.objects.all()
    assert event.status == "processed"
    assert set(InboundMessage.objects.values_list("message_id", flat=True)) == {
        "wamid.STRAY",
        answer["message_id"],
    }
    assert timeline(conversation_of(PHONE)) == [("in", "text", "hello")]
    assert Contact.objects.count() == 1 and Message.objects.count() == 1
    assert event.error == ""


@pytest.mark.parametrize(
    ("wa_id", "phone"),
    [
        ("919800000001", "+919800000001"),
        ("+919800000001", "+919800000001"),
        (
            "\uff19\uff11\uff19\uff18\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff11",
            "",
        ),  # full-width
        ("91980000²", ""),
        ("123456", ""),
        ("1234567890123456", ""),
        ("not-a-phone", ""),
    ],
)
def test_only_ascii_digit_whatsapp_ids_of_7_to_15_digits_are_phones(wa_id, phone):
    assert phone_of(wa_id) == phone
