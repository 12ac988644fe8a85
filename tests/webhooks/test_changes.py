"""Template status, phone number quality and account updates."""

from __future__ import annotations

from campaigns.models import CampaignEvent, CampaignStatus
from numbers.models import NumberStatus
from templates_sync.models import TemplateStatusChange
from tests.webhooks.conftest import DISPLAY, WABA_ID, at, payload


def template_update(event: str, *, reason: str = "NONE", time: int = 60, **extra) -> dict:
    value = {
        "event": event,
        "message_template_id": 300000000000001,
        "message_template_name": "seasonal_promo",
        "message_template_language": "en_US",
        "reason": reason,
        **extra,
    }
    return payload({"field": "message_template_status_update", "value": value}, time=time)


def test_a_paused_template_is_recorded_and_pauses_the_running_campaigns_using_it(deliver, world):
    draft = world.new_campaign("Draft", status=CampaignStatus.DRAFT)
    event = deliver(template_update("PAUSED", reason="LOW_QUALITY"))

    world.template.refresh_from_db()
    assert (world.template.status, world.template.status_changed_at) == ("PAUSED", at(60))
    [change] = TemplateStatusChange.objects.all()
    assert (change.old, change.new, change.at, change.reason, change.source) == (
        "APPROVED",
        "PAUSED",
        at(60),
        "LOW_QUALITY",
        "webhook",
    )
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    assert world.campaign.pause_reason == (
        "template seasonal_promo (en_US) became PAUSED at Meta: LOW_QUALITY"
    )
    [pause] = CampaignEvent.objects.filter(campaign=world.campaign)
    assert (pause.from_status, pause.to_status, pause.user) == ("running", "paused", None)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT
    assert event.outcome == {"template_updated": 1}


def test_rejected_and_disabled_pause_too_and_approved_does_not_resume(deliver, world):
    deliver(template_update("REJECTED", time=60))
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.PAUSED
    event = deliver(template_update("APPROVED", time=70))
    world.campaign.refresh_from_db()
    world.template.refresh_from_db()
    assert (world.template.status, world.campaign.status) == ("APPROVED", CampaignStatus.PAUSED)
    assert event.outcome == {"template_updated": 1}


def test_an_update_older_than_the_known_status_is_ignored(deliver, world):
    world.template.status_changed_at = at(100)
    world.template.save(update_fields=["status_changed_at"])
    event = deliver(template_update("DISABLED", time=60))
    world.template.refresh_from_db()
    assert world.template.status == "APPROVED"
    assert event.outcome == {"template_stale": 1}
    assert TemplateStatusChange.objects.count() == 0


def test_an_unknown_template_is_counted(deliver, world):
    body = template_update("APPROVED")
    body["entry"][0]["id"] = "999"
    assert deliver(body).outcome == {"template_unknown": 1}


def quality(event: str, **value) -> dict:
    return payload(
        {
            "field": "phone_number_quality_update",
            "value": {"display_phone_number": DISPLAY, "event": event, **value},
        },
        time=60,
    )


def test_a_flagged_number_turns_red_with_its_new_tier_and_is_refreshed_after_commit(
    deliver, world, django_capture_on_commit_callbacks, monkeypatch
):
    from numbers import tasks

    refreshed = []
    monkeypatch.setattr(
        tasks.refresh_number, "apply_async", lambda args, **kw: refreshed.append(args)
    )
    with django_capture_on_commit_callbacks(execute=True):
        event = deliver(quality("FLAGGED", current_limit="TIER_250"))
    world.number.refresh_from_db()
    assert (world.number.quality_rating, world.number.messaging_limit_tier) == ("RED", "TIER_250")
    world.other_number.refresh_from_db()
    assert world.other_number.quality_rating == ""
    assert refreshed == [(world.number.pk,)]
    assert event.outcome == {"phone_number_quality_update_applied": 1}


def test_a_throughput_upgrade_raises_the_numbers_rate(deliver, world):
    deliver(
        quality(
            "THROUGHPUT_UPGRADE",
            current_limit="TIER_UNLIMITED",
            max_daily_conversations_per_business="TIER_2K",
        )
    )
    world.number.refresh_from_db()
    assert (
        world.number.throughput_level,
        world.number.max_mps,
        world.number.messaging_limit_tier,
    ) == (
        "HIGH",
        1000,
        "TIER_2K",
    )


def test_a_disabled_account_blocks_every_number_of_the_waba(deliver, world):
    body = payload(
        {
            "field": "account_update",
            "value": {
                "event": "DISABLED_UPDATE",
                "ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2025"},
            },
        },
        waba_id=WABA_ID,
        time=60,
    )
    deliver(body)
    for number in (world.number, world.other_number):
        number.refresh_from_db()
        assert (number.status, number.last_error) == (
            NumberStatus.BLOCKED,
            "Meta disabled the WhatsApp Business Account (April 17, 2025) [2025-01-01T00:01:00+00:00]",
        )


def test_a_policy_violation_is_recorded_without_stopping_the_number(deliver, world):
    deliver(
        payload(
            {
                "field": "account_update",
                "value": {
                    "event": "ACCOUNT_VIOLATION",
                    "violation_info": {"violation_type": "ADULT"},
                },
            },
            time=60,
        )
    )
    world.number.refresh_from_db()
    assert (world.number.status, world.number.last_error) == (
        NumberStatus.ACTIVE,
        "Meta reported a policy violation: ADULT [2025-01-01T00:01:00+00:00]",
    )
