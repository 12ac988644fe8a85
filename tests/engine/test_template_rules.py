"""A template that becomes unusable at Meta pauses its campaigns, however the product learns it."""

import pytest

from campaigns.models import CampaignEvent, CampaignStatus
from templates_sync.services import templates_sync

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", ["PAUSED", "DISABLED", "REJECTED"])
def test_a_sync_that_finds_the_template_unusable_pauses_the_running_campaigns(engine, sim, status):
    running = engine.campaign(count=2)
    paused_before = engine.campaign(count=1, status=CampaignStatus.PAUSED)
    draft = engine.campaign(count=1, status=CampaignStatus.DRAFT)
    sim.upsert_templates(
        {"name": "seasonal_promo", "language": "en_US", "status": status}, notify=False
    )

    result = templates_sync(workspace=engine.workspace, number=engine.numbers[0])

    assert not result.errors
    running.refresh_from_db()
    assert running.status == CampaignStatus.PAUSED
    assert running.pause_reason == f"template seasonal_promo (en_US) became {status} at Meta"
    [event] = CampaignEvent.objects.filter(campaign=running)
    assert (event.from_status, event.to_status, event.user) == ("running", "paused", None)
    for other, was in ((paused_before, CampaignStatus.PAUSED), (draft, CampaignStatus.DRAFT)):
        other.refresh_from_db()
        assert other.status == was
        assert not CampaignEvent.objects.filter(campaign=other).exists()
    assert sim.counts()["total"] == 0


def test_a_sync_that_finds_the_template_approved_again_changes_no_campaign(engine, sim):
    running = engine.campaign(count=1)
    result = templates_sync(workspace=engine.workspace, number=engine.numbers[0])
    assert not result.errors
    running.refresh_from_db()
    assert running.status == CampaignStatus.RUNNING
    assert not CampaignEvent.objects.filter(campaign=running).exists()
