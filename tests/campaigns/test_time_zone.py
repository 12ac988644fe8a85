"""A workspace's time zone: the model's validation, create_workspace --time-zone, and the
campaign API reading a scheduled_at without an offset in the workspace's zone."""

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Workspace
from campaigns.models import Campaign, CampaignStatus

pytestmark = pytest.mark.django_db

KOLKATA = ZoneInfo("Asia/Kolkata")


@pytest.fixture
def kolkata(workspace):
    workspace.time_zone = "Asia/Kolkata"
    workspace.save(update_fields=["time_zone"])
    return workspace


def body(number, template, scheduled_at):
    return {
        "name": "Diwali",
        "numbers": [number.pk],
        "templates": [{"template": template.pk, "weight": 1}],
        "scheduled_at": scheduled_at,
    }


def test_a_new_workspace_gets_settings_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    workspace = Workspace.objects.create(name="Berlin", slug="berlin")
    workspace.refresh_from_db()
    assert workspace.time_zone == "Europe/Berlin"
    assert workspace.zone == ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("name", ["Mars/Base", "asia/kolkata", "localtime", "", "+05:30"])
def test_an_unknown_zone_name_is_refused_by_the_model(workspace, name):
    workspace.time_zone = name
    with pytest.raises(ValidationError) as refused:
        workspace.full_clean()
    assert list(refused.value.message_dict) == ["time_zone"]
    if name:
        assert refused.value.message_dict["time_zone"] == [
            f"{name!r} is not a time zone name: use an IANA name such as Asia/Kolkata, "
            "Europe/Berlin or UTC."
        ]


def test_create_workspace_takes_a_time_zone():
    out = io.StringIO()
    call_command(
        "create_workspace",
        "Mumbai",
        "--owner",
        "asha",
        "--password",
        "pw-123-xyz",
        "--time-zone",
        "Asia/Kolkata",
        stdout=out,
    )
    workspace = Workspace.objects.get(slug="mumbai")
    assert workspace.time_zone == "Asia/Kolkata"
    assert out.getvalue().rstrip().endswith("time zone Asia/Kolkata")


def test_create_workspace_refuses_an_unknown_zone_and_creates_nothing(django_user_model):
    with pytest.raises(CommandError) as refused:
        call_command(
            "create_workspace",
            "Mumbai",
            "--owner",
            "asha",
            "--password",
            "pw-123-xyz",
            "--time-zone",
            "India/Mumbai",
        )
    assert str(refused.value) == (
        "'India/Mumbai' is not a time zone name: use an IANA name such as Asia/Kolkata, "
        "Europe/Berlin or UTC."
    )
    assert not Workspace.objects.exists()
    assert not django_user_model.objects.filter(username="asha").exists()


def test_api_reads_a_time_without_offset_in_the_workspace_zone(
    api, owner, kolkata, number, template
):
    response = api(owner).post(
        "/api/campaigns/", body(number, template, "2040-01-01T10:00:00"), format="json"
    )
    assert response.status_code == 201, response.json()
    campaign = Campaign.objects.get()
    assert campaign.status == CampaignStatus.SCHEDULED
    assert campaign.scheduled_at == datetime(2040, 1, 1, 4, 30, tzinfo=UTC)
    # Returned as ISO 8601 with its offset: the same instant.
    returned = datetime.fromisoformat(response.json()["scheduled_at"])
    assert returned.utcoffset() is not None and returned == campaign.scheduled_at

    # A change without an offset too; one with an offset is taken as given.
    response = api(owner).patch(
        f"/api/campaigns/{campaign.pk}/", {"scheduled_at": "2040-01-02T09:15"}, format="json"
    )
    assert response.status_code == 200, response.json()
    campaign.refresh_from_db()
    assert campaign.scheduled_at == datetime(2040, 1, 2, 3, 45, tzinfo=UTC)
    response = api(owner).patch(
        f"/api/campaigns/{campaign.pk}/",
        {"scheduled_at": "2040-01-02T09:15:00+02:00"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    campaign.refresh_from_db()
    assert campaign.scheduled_at == datetime(2040, 1, 2, 7, 15, tzinfo=UTC)


def test_api_refuses_a_past_local_time_and_creates_nothing(api, owner, kolkata, number, template):
    # An hour ago on a Kolkata clock: still in the future if it were read as UTC.
    past_local = (timezone.localtime(timezone.now(), KOLKATA) - timedelta(hours=1)).replace(
        tzinfo=None, microsecond=0
    )
    response = api(owner).post(
        "/api/campaigns/", body(number, template, past_local.isoformat()), format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"scheduled_at": ["the scheduled time has passed"]}
    assert not Campaign.objects.exists()


def test_the_workspace_api_names_the_zone(api, owner, kolkata):
    [listed] = api(owner).get("/api/workspaces/").json()["results"]
    assert listed["time_zone"] == "Asia/Kolkata"
