"""Property-based: no body, random or Meta-shaped, makes the endpoint or processing fail."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webhooks.conftest import at, process_received, status, statuses_payload
from webhooks.models import WebhookEvent, WebhookEventStatus

pytestmark = pytest.mark.django_db

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
# Meta's shape with random holes and wrong types where values go.
statuses = st.fixed_dictionaries(
    {
        "id": st.one_of(st.just("wamid.919800000001"), st.text(max_size=200), st.integers()),
        "status": st.sampled_from(["sent", "delivered", "read", "failed", "deleted", ""])
        | json_values,
        "timestamp": st.one_of(
            st.integers(min_value=-(10**20), max_value=10**20).map(str), json_values
        ),
        "biz_opaque_callback_data": st.one_of(
            st.integers(min_value=0, max_value=10**30).map(lambda n: f"recipient:{n}"), json_values
        ),
        "errors": json_values,
        "pricing": json_values,
    }
)
messages = st.fixed_dictionaries(
    {
        "from": st.text(max_size=40) | json_values,
        "id": st.text(max_size=140),
        "timestamp": json_values,
        "type": st.sampled_from(["text", "button", "interactive", "image", "reaction", "x"])
        | json_values,
        "text": json_values,
        "interactive": json_values,
        "reaction": json_values,
        "context": json_values,
    }
)
changes = st.fixed_dictionaries(
    {
        "field": st.sampled_from(
            [
                "messages",
                "message_template_status_update",
                "phone_number_quality_update",
                "account_update",
                "user_preferences",
                "other",
            ]
        ),
        "value": st.fixed_dictionaries(
            {
                "metadata": st.just({"phone_number_id": "200000000000001"}) | json_values,
                "statuses": st.lists(statuses, max_size=3) | json_values,
                "messages": st.lists(messages, max_size=2) | json_values,
                "contacts": json_values,
                "event": st.sampled_from(["PAUSED", "FLAGGED", "DISABLED_UPDATE"]) | json_values,
                "message_template_id": json_values,
                "message_template_name": json_values,
                "message_template_language": json_values,
                "display_phone_number": json_values,
                "ban_info": json_values,
                "user_preferences": json_values,
            }
        )
        | json_values,
    }
)
meta_shaped = st.fixed_dictionaries(
    {
        "object": st.just("whatsapp_business_account") | json_values,
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "id": json_values | st.just("100000000000001"),
                    "time": json_values,
                    "changes": st.lists(changes, max_size=3) | json_values,
                }
            ),
            max_size=3,
        )
        | json_values,
    }
)


def _post_and_process(post, body: bytes) -> WebhookEvent:
    response = post(body)
    assert response.status_code == 200
    event = WebhookEvent.objects.latest("pk")
    assert event.body_bytes == body
    [processed] = process_received()
    return processed


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(body=st.binary(max_size=300))
def test_random_bytes_are_200_when_signed_and_403_when_not(post, body):
    assert post(body).status_code == 200
    assert post(body, signature="sha256=" + "0" * 64).status_code == 403
    [event] = process_received()
    assert event.status in {"processed", "flagged"}


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(value=json_values)
def test_random_json_is_stored_and_processed_or_flagged_never_failed(post, value):
    event = _post_and_process(post, json.dumps(value).encode())
    assert event.status in {WebhookEventStatus.PROCESSED, WebhookEventStatus.FLAGGED}


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
@given(value=meta_shaped)
def test_meta_shaped_payloads_with_random_holes_never_fail_processing(post, world, value):
    if not hasattr(world, "sent"):
        world.sent = world.recipient("+919800000001")
    event = _post_and_process(post, json.dumps(value).encode())
    assert (event.status, event.error) != (WebhookEventStatus.FAILED, event.error), event.error


PHONES = itertools.count(10_000_000)


def expected_state(sequence: list[tuple[str, int]]) -> str:
    """The model: the first of each status counts; forward only; failed only after sent."""
    state, seen = "sent", set()
    for name, _ in sequence:
        if name in seen:
            continue
        seen.add(name)
        if name == "failed":
            state = "failed" if state == "sent" else state
        elif state != "failed" and RANKS[name] > RANKS[state]:
            state = name
    return state


RANKS = {"sent": 1, "delivered": 2, "read": 3}


@settings(max_examples=80, deadline=None, suppress_health_check=FIXTURES)
@given(
    sequence=st.lists(
        st.tuples(st.sampled_from(["sent", "delivered", "read", "failed"]), st.integers(0, 20)),
        min_size=1,
        max_size=8,
    )
)
def test_any_order_and_duplication_of_statuses_leaves_a_consistent_message(
    deliver, world, sequence
):
    recipient = world.recipient(f"+9198{next(PHONES):08d}", sent_at=at(5))
    for state, second in sequence:
        errors = [{"code": 131026, "title": "Message undeliverable"}] if state == "failed" else None
        deliver(statuses_payload(status(recipient.wamid, state, second, errors=errors)))
    recipient.refresh_from_db()
    assert recipient.status == expected_state(sequence)
    stamps = [t for t in (recipient.sent_at, recipient.delivered_at, recipient.read_at) if t]
    assert stamps == sorted(stamps)
    assert (recipient.read_at is not None) == (recipient.status == "read")
