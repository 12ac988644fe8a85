"""What Meta reports about a number and the holds the product sets: FLAGGED and
RATE_LIMITED are not sendable, a block the product set stays until a person lifts it,
coexistence numbers and the portfolio's messaging limit are read."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from config.redis import get_redis
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from messaging.graph import PHONE_NUMBER_FIELDS, GraphError
from messaging.ratelimit import inbound_take, number_tat_key
from numbers.models import NumberStatus
from numbers.services import (
    _apply_info,
    number_block,
    number_record_graph_error,
    number_test_connection,
)
from tests.factories import make_number

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(workspace, sim):
    return make_number(
        workspace=workspace,
        phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )


def test_a_number_meta_flags_cannot_send(demo, sim):
    sim.set_quality("RED", phone_number_id=demo.phone_number_id)
    number_test_connection(number=demo)
    demo.refresh_from_db()
    assert (demo.meta_status, demo.status, demo.is_usable) == ("FLAGGED", "flagged", False)


@pytest.mark.parametrize(
    ("meta", "status"), [("RATE_LIMITED", "rate_limited"), ("FLAGGED", "flagged")]
)
def test_held_statuses_at_meta_are_not_active(demo, meta, status):
    _apply_info(demo, {"status": meta})
    assert (demo.status, demo.is_usable) == (status, False)


def test_the_refresh_reads_the_portfolio_limit_and_coexistence(demo, sim):
    assert "is_on_biz_app" in PHONE_NUMBER_FIELDS.split(",")
    assert "whatsapp_business_manager_messaging_limit" in PHONE_NUMBER_FIELDS.split(",")
    sim.set_messaging_limit("TIER_2K", waba_id=DEMO_WABA_ID)
    number_test_connection(number=demo)
    demo.refresh_from_db()
    assert (demo.business_messaging_limit, demo.messaging_limit) == ("TIER_2K", "TIER_2K")
    _apply_info(demo, {"status": "CONNECTED", "is_on_biz_app": True})
    assert demo.max_mps == 20
    _apply_info(demo, {"whatsapp_business_manager_messaging_limit": "TIER_NOT_SET"})
    assert demo.business_messaging_limit == ""


def test_a_368_block_survives_the_refresh_until_a_person_clears_it(demo, sim, api, owner):
    number_record_graph_error(number=demo, error=GraphError("blocked", code=368, http_status=400))
    demo.refresh_from_db()
    assert (demo.status, demo.block_code) == (NumberStatus.BLOCKED, 368)
    number_test_connection(number=demo)  # Meta says CONNECTED
    demo.refresh_from_db()
    assert (demo.meta_status, demo.status) == ("CONNECTED", NumberStatus.BLOCKED)

    answer = api(owner).post(f"/api/numbers/{demo.pk}/clear-block/")
    assert answer.status_code == 200, answer.content
    assert (answer.json()["status"], answer.json()["block_code"]) == ("active", None)
    demo.refresh_from_db()
    assert demo.is_usable


def test_a_131048_hold_cannot_be_cleared_within_its_cooldown(demo, api, owner):
    assert number_block(number_id=demo.pk, code=131048, reason="spam rate")
    assert not number_block(number_id=demo.pk, code=131048, reason="again")
    answer = api(owner).post(f"/api/numbers/{demo.pk}/clear-block/")
    assert answer.status_code == 409
    assert "can be resumed from" in answer.json()["detail"]
    demo.refresh_from_db()
    assert (demo.status, demo.block_code) == (NumberStatus.RATE_LIMITED, 131048)
    demo.__class__.objects.filter(pk=demo.pk).update(
        blocked_at=timezone.now() - timedelta(hours=1, seconds=5)
    )
    assert api(owner).post(f"/api/numbers/{demo.pk}/clear-block/").status_code == 200
    demo.refresh_from_db()
    assert demo.status == NumberStatus.ACTIVE


def test_inbound_messages_take_slots_of_the_numbers_throughput(demo):
    redis = get_redis()
    assert redis.get(number_tat_key(demo.pk)) is None
    inbound_take({demo.pk: (10.0, 20)})
    ahead = float(redis.get(number_tat_key(demo.pk))) - time.time()
    # 20 inbound at 10/s: the number's next send slot is about 2 s away.
    assert 1.5 < ahead <= 2.0


def test_the_admin_clear_block_action_lifts_a_hold(client, owner, demo):
    from django.urls import reverse

    from tests.conftest import PASSWORD

    number_block(number_id=demo.pk, code=368, reason="policy block")
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(
        reverse("admin:numbers_number_changelist"),
        {"action": "clear_block", "_selected_action": [demo.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "block lifted, now Active" in response.content.decode()
    demo.refresh_from_db()
    assert (demo.status, demo.block_code) == (NumberStatus.ACTIVE, None)
