"""Pre-flight: each problem a person can act on, the estimate, and the scheduled start."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from campaigns.preflight import campaign_preflight
from campaigns.tasks import start_due_campaigns
from tests.campaigns.conftest import run_import
from tests.factories import make_number

pytestmark = pytest.mark.django_db

CSV = "phone,1,2\n9812345678,Asha,A1\n9812345679,Ravi,R2\n9812345680,Meena,M3\n"


def test_a_ready_campaign_passes_with_an_estimate(campaign, number):
    run_import(campaign, CSV)
    result = campaign_preflight(campaign=campaign, check_meta=False)
    # min(80 msg/s of the one number, the starting rate 60) -> 3 contacts take 1 s.
    assert result.as_dict() == {
        "ok": True,
        "problems": [],
        "warnings": [],
        "audience": 3,
        "estimated_seconds": 1,
    }


def test_every_problem_is_listed(campaign, number, template, workspace):
    run_import(campaign, CSV)
    number.status = "token_expired"
    number.last_error = "(#190) token expired"
    number.save()
    template.status = "PAUSED"
    template.save()
    Recipient.objects.filter(phone="+919812345679").update(variables={"body.1": "Ravi"})
    result = campaign_preflight(campaign=campaign, check_meta=False)
    assert result.problems == [
        "number main (+91 98765 00001) is token expired: (#190) token expired; paste a new "
        "access token",
        "template 'order_update' (en_US) is PAUSED at Meta: only APPROVED templates can be "
        "sent; replace it in the campaign",
        "1 contacts cannot fill template 'order_update', e.g. row 3 (+919812345679): body.2: "
        "missing value",
    ]
    assert (result.ok, result.estimated_seconds) == (False, None)


def test_audience_beyond_the_tier_headroom_is_a_problem(workspace, template):
    from tests.factories import make_campaign

    number = make_number(workspace=workspace, messaging_limit_tier="TIER_250")
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    rows = "".join(f"98123{i:05d},N,X\n" for i in range(251))
    run_import(campaign, "phone,1,2\n" + rows)
    result = campaign_preflight(campaign=campaign, check_meta=False)
    assert result.problems == [
        "WABA 100000000000001 may start conversations with 250 people per 24 h (TIER_250); "
        "0 were messaged in the last 24 h, so 250 remain and this campaign has 251: split the "
        "list or wait"
    ]
    assert result.estimated_seconds == 5


def test_an_empty_campaign_is_not_ready(campaign):
    result = campaign_preflight(campaign=campaign, check_meta=False)
    assert result.problems == ["no contacts are waiting to be sent: import a CSV of contacts"]


def test_due_scheduled_campaigns_start_or_fail_their_preflight(
    campaign, workspace, number, template, monkeypatch
):
    from campaigns.services import lifecycle
    from tests.factories import make_campaign

    # The rule is the service's; Meta's side of the pre-flight is tested elsewhere.
    monkeypatch.setattr(
        lifecycle,
        "campaign_preflight",
        lambda campaign: campaign_preflight(campaign=campaign, check_meta=False),
    )
    run_import(campaign, CSV)
    empty = make_campaign(workspace=workspace, numbers=[number], templates=[template], name="empty")
    later = make_campaign(workspace=workspace, numbers=[number], templates=[template], name="later")
    past = timezone.now() - dt.timedelta(minutes=1)
    Campaign.objects.filter(pk__in=[campaign.pk, empty.pk]).update(
        status="scheduled", scheduled_at=past
    )
    Campaign.objects.filter(pk=later.pk).update(
        status="scheduled", scheduled_at=timezone.now() + dt.timedelta(hours=1)
    )
    assert start_due_campaigns() == 1
    statuses = dict(Campaign.objects.values_list("name", "status"))
    assert statuses == {"Diwali": "running", "empty": "failed", "later": "scheduled"}
    assert empty.events.get().reason == (
        "pre-flight failed at the scheduled time: no contacts are waiting to be sent: import "
        "a CSV of contacts"
    )


def test_a_manual_start_runs_the_preflight_and_a_problem_is_a_409_listing_it(
    campaign, number, api, owner
):
    run_import(campaign, CSV)
    Recipient.objects.filter(phone="+919812345679").update(variables={"body.1": "Ravi"})
    answer = api(owner).post(f"/api/campaigns/{campaign.pk}/start/", {}, format="json")
    assert answer.status_code == 409
    assert answer.json()["detail"] == (
        "pre-flight found problems: 1 contacts cannot fill template 'order_update', e.g. "
        "row 3 (+919812345679): body.2: missing value"
    )
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_the_budget_is_the_portfolios_limit_before_the_numbers_old_tier(workspace, template):
    from tests.factories import make_campaign

    number = make_number(
        workspace=workspace, messaging_limit_tier="TIER_10K", business_messaging_limit="TIER_250"
    )
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    rows = "".join(f"98123{i:05d},N,X\n" for i in range(251))
    run_import(campaign, "phone,1,2\n" + rows)
    result = campaign_preflight(campaign=campaign, check_meta=False)
    assert result.problems == [
        "WABA 100000000000001 may start conversations with 250 people per 24 h (TIER_250); "
        "0 were messaged in the last 24 h, so 250 remain and this campaign has 251: split the "
        "list or wait"
    ]
    # On a resume the engine holds the excess: a warning, not a problem.
    resumed = campaign_preflight(campaign=campaign, check_meta=False, budget_blocks=False)
    assert resumed.ok
    assert resumed.warnings == [
        "WABA 100000000000001 may start conversations with 250 people per 24 h (TIER_250); "
        "0 were messaged in the last 24 h, so 250 remain and this campaign has 251: the rest "
        "waits, held by the engine until the window rolls"
    ]
