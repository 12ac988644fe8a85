"""A workspace in Asia/Kolkata: its people schedule, read back and count "today" in their
zone in the admin (campaign page, wizard, dashboard, workspace form); times are stored UTC."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from accounts.models import Workspace
from campaigns.models import Campaign, CampaignEvent, CampaignStatus, RecipientStatus
from tests.factories import make_campaign, make_number, make_recipient, make_template

pytestmark = pytest.mark.django_db

KOLKATA = ZoneInfo("Asia/Kolkata")
# 10:00 in Kolkata (UTC+05:30) on a day far enough ahead to stay in the future.
LOCAL_DAY = "2040-01-01"
STORED = datetime(2040, 1, 1, 4, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def kolkata(workspace, settings):
    # The server's zone is UTC: anything shown in Kolkata time comes from the workspace.
    settings.TIME_ZONE = "UTC"
    workspace.time_zone = "Asia/Kolkata"
    workspace.save(update_fields=["time_zone"])
    return workspace


@pytest.fixture
def draft(kolkata):
    number = make_number(workspace=kolkata)
    template = make_template(workspace=kolkata, name="promo")
    return make_campaign(workspace=kolkata, numbers=[number], templates=[template])


def past_local_hour() -> datetime:
    """An hour ago on a Kolkata clock, as a naive wall time: read as UTC it would still be
    in the future, so only the workspace's zone refuses it."""
    return (timezone.localtime(timezone.now(), KOLKATA) - timedelta(hours=1)).replace(
        tzinfo=None, second=0, microsecond=0
    )


def change_data(page, campaign, *, day: str, time: str) -> dict:
    """The campaign page's form as the browser posts it, with the schedule set."""
    form = page.context["adminform"].form
    data = {key: form.initial[key] for key in ("workspace", "name", "variable_mapping")}
    data["variable_mapping"] = "{}"
    data.update(
        numbers=[n.pk for n in campaign.numbers.all()], scheduled_at_0=day, scheduled_at_1=time
    )
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data[f"{formset.prefix}-TOTAL_FORMS"] = len(formset.forms)
        data[f"{formset.prefix}-INITIAL_FORMS"] = formset.initial_form_count()
        for i, row in enumerate(formset.forms):
            data[f"{formset.prefix}-{i}-id"] = row.instance.pk or ""
            for name in row.fields:
                value = row.initial.get(name)
                if value is not None:
                    data[f"{formset.prefix}-{i}-{name}"] = getattr(value, "pk", value)
    return data


# -- the campaign page --------------------------------------------------------------------


def test_the_campaign_page_schedules_and_shows_times_in_the_workspace_zone(owner, login, draft):
    client = login(owner)
    page_url = reverse("admin:campaigns_campaign_change", args=[draft.pk])
    page = client.get(page_url)
    assert "In Asia/Kolkata time (the workspace&#x27;s time zone)." in page.content.decode()

    answer = client.post(page_url, change_data(page, draft, day=LOCAL_DAY, time="10:00:00"))
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    draft.refresh_from_db()
    assert (draft.status, draft.scheduled_at) == (CampaignStatus.SCHEDULED, STORED)

    html = client.get(page_url).content.decode()
    # Shown back as the 10:00 it was entered as, with the zone named.
    assert 'name="scheduled_at_0" value="2040-01-01"' in html
    assert 'name="scheduled_at_1" value="10:00:00"' in html
    assert "In Asia/Kolkata time" in html
    live = client.get(reverse("admin:campaigns_campaign_live", args=[draft.pk]))
    assert "starts 1 Jan 2040, 10:00 (Asia/Kolkata)" in live.content.decode()


def test_the_campaign_page_refuses_a_past_local_time_and_changes_nothing(owner, login, draft):
    client = login(owner)
    page_url = reverse("admin:campaigns_campaign_change", args=[draft.pk])
    page = client.get(page_url)
    past = past_local_hour()
    answer = client.post(
        page_url, change_data(page, draft, day=f"{past:%Y-%m-%d}", time=f"{past:%H:%M:%S}")
    )
    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors["scheduled_at"] == [
        "the scheduled time has passed"
    ]
    draft.refresh_from_db()
    assert (draft.status, draft.scheduled_at) == (CampaignStatus.DRAFT, None)
    assert not CampaignEvent.objects.filter(campaign=draft).exists()


def test_the_campaign_list_shows_times_in_the_users_workspace_zone(owner, login, draft):
    Campaign.objects.filter(pk=draft.pk).update(
        status=CampaignStatus.SCHEDULED, scheduled_at=STORED
    )
    html = login(owner).get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "Jan. 1, 2040, 10 a.m." in html


# -- the wizard ---------------------------------------------------------------------------


def test_the_wizard_schedules_in_the_workspace_zone_and_refuses_a_past_local_time(
    owner, login, draft
):
    client = login(owner)
    launch = reverse("admin:campaigns_campaign_wizard_launch", args=[draft.pk])
    page = client.get(launch).content.decode()
    assert "Times are in Asia/Kolkata" in page and "In Asia/Kolkata." in page
    now_local = timezone.localtime(timezone.now(), KOLKATA)
    assert f"it is now {now_local:%Y-%m-%d %H:}" in page

    past = past_local_hour()
    refused = client.post(launch, {"when": "later", "scheduled_at": f"{past:%Y-%m-%dT%H:%M}"})
    assert refused.status_code == 200
    assert "That time has passed: choose a time in the future." in refused.content.decode()
    draft.refresh_from_db()
    assert (draft.status, draft.scheduled_at) == (CampaignStatus.DRAFT, None)
    assert not CampaignEvent.objects.filter(campaign=draft).exists()

    answer = client.post(launch, {"when": "later", "scheduled_at": f"{LOCAL_DAY}T10:00"})
    assert answer.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.scheduled_at) == (CampaignStatus.SCHEDULED, STORED)
    shown = client.get(answer["Location"]).content.decode()
    assert "scheduled for 2040-01-01 10:00 (Asia/Kolkata)" in shown
    assert 'name="scheduled_at_1" value="10:00:00"' in shown


# -- the dashboard ------------------------------------------------------------------------


def test_the_dashboards_today_starts_at_the_workspaces_midnight(owner, login, kolkata):
    number = make_number(workspace=kolkata)
    template = make_template(workspace=kolkata, name="promo")
    campaign = make_campaign(
        workspace=kolkata,
        numbers=[number],
        templates=[template],
        status=CampaignStatus.COMPLETED,
        started_at=None,
    )
    midnight = timezone.localtime(timezone.now(), KOLKATA).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    # Kolkata's midnight is 18:30 UTC the day before: a send just after it is today there
    # (and not in UTC's today), one just before it is not.
    make_recipient(
        campaign=campaign,
        phone="+919800000001",
        status=RecipientStatus.SENT,
        sent_at=midnight + timedelta(minutes=1),
    )
    make_recipient(
        campaign=campaign,
        phone="+919800000002",
        status=RecipientStatus.SENT,
        sent_at=midnight - timedelta(minutes=1),
    )
    page = login(owner).get(reverse("admin:index"))
    assert page.status_code == 200
    assert page.context["today"]["accepted"] == 1
    assert page.context["week"]["accepted"] == 2
    assert "Today starts at midnight, Asia/Kolkata." in page.content.decode()


def test_a_user_of_workspaces_in_different_zones_keeps_the_servers_today(
    owner, login, kolkata, settings
):
    from accounts.models import Membership, Role

    other = Workspace.objects.create(name="Berlin", slug="berlin", time_zone="Europe/Berlin")
    Membership.objects.create(workspace=other, user=owner, role=Role.OWNER)
    page = login(owner).get(reverse("admin:index"))
    assert "Today starts at midnight, UTC." in page.content.decode()


# -- the workspace form -------------------------------------------------------------------


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(username="root", password="pw-123-xyz")


def workspace_data(workspace, time_zone: str) -> dict:
    return {
        "name": workspace.name,
        "slug": workspace.slug,
        "time_zone": time_zone,
        "marketing_per_contact": workspace.marketing_per_contact,
        "marketing_window_hours": workspace.marketing_window_hours,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }


def test_the_workspace_form_offers_zones_and_refuses_an_unknown_one(superuser, login, workspace):
    client = login(superuser)
    page_url = reverse("admin:accounts_workspace_change", args=[workspace.pk])
    html = client.get(page_url).content.decode()
    assert '<select name="time_zone"' in html
    assert '<option value="Asia/Kolkata">Asia/Kolkata</option>' in html
    assert '<option value="UTC" selected>UTC</option>' in html

    refused = client.post(page_url, workspace_data(workspace, "Mars/Olympus_Mons"))
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["time_zone"] == [
        "Mars/Olympus_Mons is not a time zone name: choose one from the list "
        "(IANA names such as Asia/Kolkata or Europe/Berlin)."
    ]
    workspace.refresh_from_db()
    assert workspace.time_zone == "UTC"

    saved = client.post(page_url, workspace_data(workspace, "Asia/Kolkata"))
    assert saved.status_code == 302
    workspace.refresh_from_db()
    assert workspace.time_zone == "Asia/Kolkata"


def test_a_message_page_shows_its_times_in_its_workspaces_zone(owner, login, draft):
    row = make_recipient(
        campaign=draft,
        phone="+919800000003",
        status=RecipientStatus.SENT,
        sent_at=datetime(2030, 1, 1, 4, 30, tzinfo=UTC),
    )
    html = (
        login(owner)
        .get(reverse("admin:campaigns_recipient_change", args=[row.pk]))
        .content.decode()
    )
    assert "Jan. 1, 2030, 10 a.m." in html


def test_the_add_form_reads_the_time_in_the_chosen_workspaces_zone(owner, login, kolkata):
    from tests.campaigns.test_admin_and_command import admin_add_post

    number = make_number(workspace=kolkata)
    template = make_template(workspace=kolkata, name="promo")
    client = login(owner)
    page = client.get(reverse("admin:campaigns_campaign_add")).content.decode()
    assert "In Asia/Kolkata time" in page
    created = admin_add_post(
        client,
        workspace=kolkata,
        numbers=[number],
        templates=[(template, 1)],
        # Posted as its wall time, 10:00 (the helper formats it, offset left out).
        scheduled_at=datetime(2040, 1, 1, 10, 0, tzinfo=KOLKATA),
    )
    assert created.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.scheduled_at) == (CampaignStatus.SCHEDULED, STORED)
