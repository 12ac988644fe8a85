"""Meta's quality, category and account signals by webhook, and what the product does."""

from __future__ import annotations

import pytest

from campaigns.models import CampaignStatus
from templates_sync.models import TemplateStatus
from templates_sync.signals import template_category_changed
from tests.factories import make_campaign, make_template
from tests.webhooks.conftest import DISPLAY, WABA_ID, at, inbound_payload, payload

pytestmark = pytest.mark.django_db


def quality(event: str, **value) -> dict:
    return payload(
        {
            "field": "phone_number_quality_update",
            "value": {"display_phone_number": DISPLAY, "event": event, **value},
        },
        time=60,
    )


@pytest.fixture
def utility_campaign(world):
    template = make_template(
        workspace=world.workspace,
        number=world.number,
        waba_id=WABA_ID,
        meta_id="300000000000002",
        name="order_update",
        category="UTILITY",
        status=TemplateStatus.APPROVED,
        components=[],
        synced_at=at(0),
    )
    return make_campaign(
        workspace=world.workspace,
        name="Receipts",
        status=CampaignStatus.RUNNING,
        numbers=[world.number],
        templates=[template],
    )


def test_a_flagged_number_pauses_its_marketing_campaigns_only(deliver, world, utility_campaign):
    deliver(quality("FLAGGED", current_limit="TIER_1K"))
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    assert "dropped to RED" in world.campaign.pause_reason
    utility_campaign.refresh_from_db()
    assert utility_campaign.status == CampaignStatus.RUNNING


def test_tier_not_set_is_no_limit_and_unlimited_throughput_is_not_a_tier(deliver, world):
    deliver(quality("ONBOARDING", current_limit="TIER_NOT_SET"))
    world.number.refresh_from_db()
    assert (world.number.messaging_limit_tier, world.number.business_messaging_limit) == (
        "TIER_1K",
        "",
    )
    deliver(payload({"field": "phone_number_quality_update", "value": {
        "display_phone_number": DISPLAY, "event": "THROUGHPUT_UPGRADE",
        "current_limit": "TIER_UNLIMITED"}}, time=61))  # fmt: skip
    world.number.refresh_from_db()
    assert (world.number.messaging_limit_tier, world.number.throughput_level) == ("TIER_1K", "HIGH")
    assert world.number.max_mps == 1000


def test_an_upgrade_stores_the_portfolios_limit(deliver, world):
    deliver(quality("UPGRADE", current_limit="TIER_10K", old_limit="TIER_1K"))
    world.number.refresh_from_db()
    assert (world.number.messaging_limit_tier, world.number.business_messaging_limit) == (
        "TIER_10K",
        "TIER_10K",
    )


def template_change(field: str, **value) -> dict:
    value = {
        "message_template_id": 300000000000001,
        "message_template_name": "seasonal_promo",
        "message_template_language": "en_US",
        **value,
    }
    return payload({"field": field, "value": value}, time=60)


def test_template_quality_is_recorded(deliver, world):
    event = deliver(
        template_change(
            "message_template_quality_update",
            previous_quality_score="GREEN",
            new_quality_score="YELLOW",
        )
    )
    world.template.refresh_from_db()
    assert (world.template.quality_score, world.template.quality_changed_at) == ("YELLOW", at(60))
    assert event.outcome == {"message_template_quality_update_applied": 1}
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.RUNNING


def test_a_category_change_to_marketing_pauses_the_campaign_for_a_decision(deliver, world):
    world.template.__class__.objects.filter(pk=world.template.pk).update(category="UTILITY")
    sent = []

    def listen(sender, template, old, new, **kwargs):
        sent.append((template.pk, old, new))

    template_category_changed.connect(listen, dispatch_uid="test.category")
    try:
        deliver(
            template_change(
                "template_category_update", previous_category="UTILITY", new_category="MARKETING"
            )
        )
    finally:
        template_category_changed.disconnect(dispatch_uid="test.category")
    world.template.refresh_from_db()
    assert (world.template.category, world.template.previous_category) == ("MARKETING", "UTILITY")
    assert sent == [(world.template.pk, "UTILITY", "MARKETING")]
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    assert "from UTILITY to MARKETING" in world.campaign.pause_reason


def test_an_account_restriction_pauses_every_campaign_of_the_account(deliver, world):
    elsewhere = world.new_campaign("Elsewhere")
    elsewhere.numbers.set([world.other_number])
    event = deliver(
        payload(
            {
                "field": "account_update",
                "value": {
                    "event": "ACCOUNT_RESTRICTION",
                    "restriction_info": [
                        {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}
                    ],
                },
            },
            time=60,
        )
    )
    for campaign in (world.campaign, elsewhere):
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.PAUSED
        assert "RESTRICTED_BIZ_INITIATED_MESSAGING" in campaign.pause_reason
    assert event.outcome["campaigns_paused"] == 2


def test_a_zero_business_capability_pauses_the_account(deliver, world):
    deliver(
        payload(
            {
                "field": "business_capability_update",
                "value": {"max_daily_conversations_per_business": 0},
            },
            time=60,
        )
    )
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED


def test_inbound_messages_count_against_the_numbers_throughput(deliver, world):
    from config.redis import get_redis
    from messaging.ratelimit import number_tat_key

    deliver(inbound_payload({"id": "wamid.in1", "type": "text", "text": {"body": "hi"}}))
    assert get_redis().get(number_tat_key(world.number.pk)) is not None
    assert get_redis().get(number_tat_key(world.other_number.pk)) is None
