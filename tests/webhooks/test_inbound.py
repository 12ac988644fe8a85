"""Inbound messages: stored with their content, linked to the message they answer, replied."""

from __future__ import annotations

import pytest

from campaigns.models import Suppression, SuppressionLift
from tests.webhooks.conftest import (
    OTHER_PNID,
    at,
    funnel,
    inbound_payload,
    messages_change,
    payload,
)
from webhooks.models import InboundMessage


def only_message() -> InboundMessage:
    [message] = InboundMessage.objects.all()
    return message


def test_a_text_reply_is_stored_linked_by_context_and_counted_as_replied(deliver, world):
    recipient = world.recipient("+919800000001")
    event = deliver(
        inbound_payload(
            {
                "id": "wamid.IN.1",
                "type": "text",
                "text": {"body": "Yes, tell me more"},
                "context": {"from": "15550000001", "id": recipient.wamid},
            }
        )
    )
    message = only_message()
    assert (
        message.workspace_id,
        message.number_id,
        message.message_id,
        message.wa_id,
        message.contact_name,
        message.type,
        message.text,
        message.payload,
        message.media,
        message.context_wamid,
        message.at,
        message.recipient_id,
        message.campaign_id,
        message.event_id,
    ) == (
        world.workspace.pk,
        world.number.pk,
        "wamid.IN.1",
        "919800000001",
        "Asha",
        "text",
        "Yes, tell me more",
        "",
        None,
        recipient.wamid,
        at(100),
        recipient.pk,
        world.campaign.pk,
        event.pk,
    )
    recipient.refresh_from_db()
    assert recipient.replied_at == at(100)
    assert funnel(world.campaign)["replied"] == 1
    assert event.outcome == {"inbound": 1, "replies_linked": 1}


def test_a_quick_reply_button_without_context_links_to_the_latest_message_from_that_number(
    deliver, world
):
    older = world.recipient("+919800000001", sent_at=at(0))
    newer_campaign = world.new_campaign("Winter sale")
    newer = world.recipient("+919800000001", campaign=newer_campaign, sent_at=at(50))
    # Sent later but from another number: not the one answered.
    world.recipient(
        "+919800000001",
        campaign=world.new_campaign("Other number"),
        number=world.other_number,
        sent_at=at(60),
    )
    deliver(
        inbound_payload(
            {
                "id": "wamid.IN.2",
                "type": "button",
                "button": {"payload": "STOP_PROMO", "text": "Stop promotions"},
            }
        )
    )
    message = only_message()
    assert (message.type, message.text, message.payload) == (
        "button",
        "Stop promotions",
        "STOP_PROMO",
    )
    assert (message.recipient_id, message.campaign_id) == (newer.pk, newer_campaign.pk)
    older.refresh_from_db()
    assert older.replied_at is None


@pytest.mark.parametrize(
    ("interactive", "text", "reply_payload"),
    [
        ({"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}}, "Yes", "yes-1"),
        (
            {
                "type": "list_reply",
                "list_reply": {"id": "size-m", "title": "Medium", "description": "M"},
            },
            "Medium",
            "size-m",
        ),
    ],
)
def test_interactive_replies_keep_title_and_id(deliver, world, interactive, text, reply_payload):
    recipient = world.recipient("+919800000001")
    deliver(
        inbound_payload(
            {
                "id": "wamid.IN.3",
                "type": "interactive",
                "interactive": interactive,
                "context": {"id": recipient.wamid},
            }
        )
    )
    message = only_message()
    assert (message.type, message.text, message.payload, message.recipient_id) == (
        "interactive",
        text,
        reply_payload,
        recipient.pk,
    )


def test_media_metadata_is_kept_never_the_file(deliver, world):
    image = {
        "caption": "my order",
        "mime_type": "image/jpeg",
        "sha256": "IKs0UHTy1mSv1fGJmcK1bqOJjx+Wn0vMvGG6cwNNsp0=",
        "id": "1048093683453532",
    }
    deliver(inbound_payload({"id": "wamid.IN.4", "type": "image", "image": image}))
    message = only_message()
    assert (message.type, message.text, message.media) == ("image", "my order", image)
    assert message.raw["image"] == image


def test_a_reaction_links_to_the_message_it_reacts_to(deliver, world):
    recipient = world.recipient("+919800000001")
    deliver(
        inbound_payload(
            {
                "id": "wamid.IN.5",
                "type": "reaction",
                "reaction": {"message_id": recipient.wamid, "emoji": "👍"},
            }
        )
    )
    message = only_message()
    assert (message.type, message.text, message.context_wamid, message.recipient_id) == (
        "reaction",
        "👍",
        recipient.wamid,
        recipient.pk,
    )


def test_unsupported_and_location_messages_are_stored_as_sent(deliver, world):
    unsupported = {
        "id": "wamid.IN.6",
        "type": "unsupported",
        "errors": [
            {"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}
        ],
    }
    location = {
        "id": "wamid.IN.7",
        "type": "location",
        "location": {"latitude": 12.97, "longitude": 77.59, "name": "Store", "address": "MG Road"},
    }
    deliver(inbound_payload(unsupported))
    deliver(inbound_payload(location))
    first, second = InboundMessage.objects.order_by("message_id")
    assert (first.type, first.text, first.raw["errors"][0]["code"]) == ("unsupported", "", 131051)
    assert (second.type, second.text, second.raw["location"]["latitude"]) == (
        "location",
        "Store, MG Road",
        12.97,
    )


def test_a_duplicate_inbound_is_stored_once_and_a_second_reply_is_not_counted_again(deliver, world):
    recipient = world.recipient("+919800000001")
    body = inbound_payload(
        {
            "id": "wamid.IN.8",
            "type": "text",
            "text": {"body": "hi"},
            "context": {"id": recipient.wamid},
        }
    )
    deliver(body)
    again = deliver(body)
    assert again.outcome == {"inbound": 1, "inbound_duplicates": 1}
    later = inbound_payload({"id": "wamid.IN.9", "type": "text", "text": {"body": "and?"}})
    later["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(1735689600 + 500)
    deliver(later)
    assert InboundMessage.objects.count() == 2
    recipient.refresh_from_db()
    assert recipient.replied_at == at(100)
    assert funnel(world.campaign)["replied"] == 1


def test_a_message_to_a_number_we_do_not_have_is_counted_not_stored(deliver, world):
    event = deliver(
        inbound_payload({"id": "wamid.IN.10", "type": "text", "text": {"body": "x"}}, pnid="999")
    )
    assert InboundMessage.objects.count() == 0
    assert (event.status, event.outcome) == ("processed", {"inbound_unknown_number": 1})


def test_a_message_from_nobody_we_messaged_is_stored_unlinked(deliver, world):
    deliver(
        inbound_payload(
            {"id": "wamid.IN.11", "type": "text", "text": {"body": "who?"}}, pnid=OTHER_PNID
        )
    )
    message = only_message()
    assert (message.number_id, message.recipient_id, message.campaign_id) == (
        world.other_number.pk,
        None,
        None,
    )


def test_a_marketing_stop_preference_suppresses_and_a_resume_lifts_it(deliver, world):
    def preference(value: str) -> dict:
        change = messages_change(contacts=[{"profile": {"name": "Asha"}, "wa_id": "919800000001"}])
        change["field"] = "user_preferences"
        change["value"]["user_preferences"] = [
            {
                "wa_id": "919800000001",
                "detail": "User requested to stop marketing messages",
                "category": "marketing_messages",
                "value": value,
                "timestamp": 1735689700,
            }
        ]
        return payload(change)

    event = deliver(preference("stop"))
    [suppression] = Suppression.objects.all()
    assert (
        suppression.workspace_id,
        suppression.phone,
        suppression.source,
        suppression.reason,
    ) == (
        world.workspace.pk,
        "+919800000001",
        "user_preferences",
        "User requested to stop marketing messages",
    )
    assert event.outcome == {"suppressions_added": 1}
    again = deliver(preference("resume"))
    assert again.outcome == {"suppressions_lifted": 1}
    assert Suppression.objects.count() == 0
    [lift] = SuppressionLift.objects.all()
    assert (lift.workspace_id, lift.phone, lift.source, lift.suppressed_source) == (
        world.workspace.pk,
        "+919800000001",
        "user_preferences",
        "user_preferences",
    )
    assert lift.suppressed_at == suppression.created_at
    # A second "resume" has nothing left to lift.
    assert deliver(preference("resume")).outcome == {"preference:resume": 1}
