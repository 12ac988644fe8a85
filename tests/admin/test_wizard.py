"""The new-campaign wizard, driven with Django's test client: each step through the
services, bad input refused with a message and nothing lost."""

import os
import time
from datetime import UTC, datetime

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Membership, Role
from campaigns.models import Campaign, CampaignStatus, ImportJob, Recipient
from campaigns.preflight import campaign_preflight
from campaigns.tasks import prune_wizard_uploads
from campaigns.wizard import wizard_uploads_prune
from numbers.models import NumberStatus
from templates_sync.models import Template
from templates_sync.services import templates_sync
from tests.factories import make_number, make_template

pytestmark = pytest.mark.django_db

PROMO = "Hi {{1}}, use code {{2}} for 20% off this week."
PROMO_EXAMPLE = {"type": "BODY", "text": PROMO, "example": {"body_text": [["Asha", "FALL25"]]}}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Staged uploads go to a directory of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.MEDIA_ROOT


@pytest.fixture
def promo(workspace):
    """The demo's seasonal_promo, as a sync from the simulator stores it."""
    return make_template(
        workspace=workspace, name="seasonal_promo", components=[PROMO_EXAMPLE], category="MARKETING"
    )


def url(name: str, campaign: Campaign | None = None) -> str:
    if campaign is None:
        return reverse(f"admin:campaigns_campaign_{name}")
    return reverse(f"admin:campaigns_campaign_wizard_{name}", args=[campaign.pk])


def csv_file(text: str, name: str = "contacts.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def create_draft(client, number, template, name="Diwali") -> Campaign:
    answer = client.post(
        url("wizard"),
        {
            "name": name,
            "numbers": [number.pk],
            f"use_{template.pk}": "on",
            f"weight_{template.pk}": "1",
        },
    )
    campaign = Campaign.objects.get(name=name)
    assert answer.status_code == 302 and answer["Location"] == url("contacts", campaign)
    return campaign


def test_step_1_offers_active_numbers_and_approved_templates_with_their_preview(
    owner, login, workspace, promo
):
    make_number(workspace=workspace, label="Main")
    make_number(
        workspace=workspace, label="Banned one", phone_number_id="299", status=NumberStatus.BLOCKED
    )
    make_template(workspace=workspace, name="crypto_giveaway", status="REJECTED")
    page = login(owner).get(url("wizard"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Main (+91 98765 00001)" in html and "Banned one" not in html
    assert "seasonal_promo (en_US)" in html and "crypto_giveaway" not in html
    # The WhatsApp-style preview, with Meta's examples as the values.
    assert "Hi Asha, use code FALL25 for 20% off this week." in html


def test_step_1_refuses_bad_input_and_creates_nothing(owner, login, workspace, promo):
    number = make_number(workspace=workspace)
    client = login(owner)
    page = client.post(url("wizard"), {"name": "", f"weight_{promo.pk}": "1"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "This field is required." in html
    assert "Choose at least one number." in html
    assert "Choose at least one template." in html
    page = client.post(
        url("wizard"),
        {"name": "X", "numbers": [number.pk], f"use_{promo.pk}": "on", f"weight_{promo.pk}": "0"},
    )
    assert "A weight is a whole number of 1 or more." in page.content.decode()
    assert not Campaign.objects.exists()


def test_the_campaign_list_button_opens_the_wizard(owner, login):
    page = login(owner).get(reverse("admin:campaigns_campaign_changelist"))
    assert f'href="{url("wizard")}"' in page.content.decode()
    assert "New campaign" in page.content.decode()


def test_agents_cannot_use_the_wizard_and_outsiders_do_not_find_the_campaign(
    owner, agent, outsider, login, workspace, promo
):
    number = make_number(workspace=workspace)
    campaign = create_draft(login(owner), number, promo)
    assert login(agent).get(url("wizard")).status_code == 403
    assert login(agent).get(url("contacts", campaign)).status_code == 403
    assert login(outsider).get(url("contacts", campaign)).status_code == 404
    assert login(outsider).get(url("launch", campaign)).status_code == 404


def test_a_csv_with_any_headers_is_mapped_by_dropdown_previewed_and_imported(
    owner, login, workspace, promo, media
):
    number = make_number(workspace=workspace)
    client = login(owner)
    campaign = create_draft(client, number, promo)

    sample = client.get(url("sample", campaign))
    assert sample["Content-Type"].startswith("text/csv")
    assert sample.content.decode("utf-8-sig").splitlines() == [
        "phone,body_1,body_2",
        "'+919800000001,Asha,FALL25",
        "'+919800000002,Asha,FALL25",
    ]

    # Headers the importer would not recognise: "Mobile No" is no phone alias.
    data = "Customer;Mobile No;Promo;phone\nRavi;98123 45678;R10;x\nMei;12;M20;y\nAnu;98123 45679;A5;z\n"
    answer = client.post(url("contacts", campaign), {"action": "upload", "file": csv_file(data)})
    assert answer.status_code == 302
    page = client.get(url("contacts", campaign))
    html = page.content.decode()
    assert "Match the columns of contacts.csv" in html
    form = page.context["mapping_form"]
    assert [label for _, label in form.fields["phone"].choices] == [
        "Customer",
        "Mobile No",
        "Promo",
        "phone",
    ]
    choice = {
        "phone": "1",
        f"p_{promo.pk}_body.1": "0",
        f"p_{promo.pk}_body.2": "2",
    }
    preview = client.post(url("contacts", campaign), {"action": "preview", **choice})
    html = preview.content.decode()
    assert "Hi Ravi, use code R10 for 20% off this week." in html
    assert "to +919812345678" in html
    assert "Would be rejected" in html  # line 3: phone "12"
    assert not Recipient.objects.exists()

    answer = client.post(url("contacts", campaign), {"action": "import", **choice})
    job = ImportJob.objects.get(campaign=campaign)
    assert answer.status_code == 302
    assert answer["Location"] == url("imported", campaign) + f"?job={job.pk}"
    campaign.refresh_from_db()
    assert campaign.variable_mapping == {str(promo.pk): {"body.1": "Customer", "body.2": "Promo"}}
    assert sorted(Recipient.objects.values_list("phone", "variables")) == [
        ("+919812345678", {"body.1": "Ravi", "body.2": "R10"}),
        ("+919812345679", {"body.1": "Anu", "body.2": "A5"}),
    ]
    # Row numbers are those of the original file.
    assert list(job.row_errors.values_list("row", "kind")) == [(3, "rejected")]
    # The staged files are gone.
    assert not any(path.is_file() for path in media.rglob("*"))

    result = client.get(answer["Location"]).content.decode()
    assert "<strong>3</strong> rows" in result
    assert "<strong>2</strong> accepted" in result
    assert "<strong>1</strong> rejected" in result
    errors = reverse("campaign-import-errors-csv", args=[campaign.pk]) + f"?import={job.pk}"
    assert errors in result
    download = b"".join(client.get(errors).streaming_content).decode("utf-8-sig").splitlines()
    assert len(download) == 2 and download[1].startswith(f"{job.pk},3,rejected,12,")


def test_bad_files_and_unchosen_columns_are_refused_and_the_draft_is_kept(
    owner, login, workspace, promo
):
    number = make_number(workspace=workspace)
    client = login(owner)
    campaign = create_draft(client, number, promo)
    page = client.post(url("contacts", campaign), {"action": "upload", "file": csv_file("")})
    assert "The submitted file is empty." in page.content.decode()
    page = client.post(url("contacts", campaign), {"action": "upload", "file": csv_file("\n\n")})
    assert "The file is empty." in page.content.decode()
    page = client.post(url("contacts", campaign), {"action": "upload"})
    assert "Choose a CSV file." in page.content.decode()

    client.post(
        url("contacts", campaign), {"action": "upload", "file": csv_file("tel,who\n9812345678,A\n")}
    )
    page = client.post(
        url("contacts", campaign),
        {"action": "import", "phone": "0", f"p_{promo.pk}_body.1": "1", f"p_{promo.pk}_body.2": ""},
    )
    assert "Choose the column that fills Body {{2}} of seasonal_promo." in page.content.decode()
    assert not Recipient.objects.exists()
    # The file is still there: choosing the column imports it.
    page = client.post(
        url("contacts", campaign),
        {
            "action": "import",
            "phone": "0",
            f"p_{promo.pk}_body.1": "1",
            f"p_{promo.pk}_body.2": "1",
        },
    )
    assert page.status_code == 302
    assert list(Recipient.objects.values_list("phone", flat=True)) == ["+919812345678"]
    assert Campaign.objects.get().status == CampaignStatus.DRAFT


def test_going_back_to_step_1_keeps_the_draft_and_changes_it_through_the_service(
    owner, login, workspace, promo
):
    number = make_number(workspace=workspace)
    client = login(owner)
    campaign = create_draft(client, number, promo)
    page = client.get(url("setup", campaign))
    assert page.context["form"].initial["name"] == "Diwali"
    other = make_template(workspace=workspace, name="hello", body="Hello")
    answer = client.post(
        url("setup", campaign),
        {
            "name": "Diwali 2",
            "numbers": [number.pk],
            f"use_{promo.pk}": "on",
            f"weight_{promo.pk}": "3",
            f"use_{other.pk}": "on",
            f"weight_{other.pk}": "1",
        },
    )
    assert answer.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Diwali 2"
    assert sorted(campaign.campaign_templates.values_list("template__name", "weight")) == [
        ("hello", 1),
        ("seasonal_promo", 3),
    ]
    assert Campaign.objects.count() == 1


def test_preflight_and_start_now(owner, login, workspace, number, sim):
    templates_sync(workspace=workspace, number=number)
    client = login(owner)
    promo = Template.objects.get(name="seasonal_promo", language="en_US")
    campaign = create_draft(client, number, promo)
    client.post(
        url("contacts", campaign),
        {"action": "upload", "file": csv_file("phone,1,2\n9812345678,A,B\n")},
    )
    assert (
        client.post(
            url("contacts", campaign),
            {
                "action": "import",
                "phone": "0",
                f"p_{promo.pk}_body.1": "1",
                f"p_{promo.pk}_body.2": "2",
            },
        ).status_code
        == 302
    )
    assert "Run pre-flight" in client.get(url("preflight", campaign)).content.decode()
    html = client.post(url("preflight", campaign)).content.decode()
    assert "Ready to start" in html and "1 contact to send to" in html
    answer = client.post(url("launch", campaign), {"when": "now"})
    assert answer.status_code == 302
    assert answer["Location"] == reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING


def test_preflight_problems_are_listed_in_plain_words(owner, login, workspace, promo):
    number = make_number(workspace=workspace)
    client = login(owner)
    campaign = create_draft(client, number, promo)
    number.status = NumberStatus.BLOCKED
    number.save(update_fields=["status"])
    expected = campaign_preflight(campaign=campaign, check_meta=False).problems
    html = client.post(url("preflight", campaign)).content.decode()
    assert "problems to fix before starting" in html or "problem to fix before starting" in html
    assert "No contacts are waiting to be sent: import a CSV of contacts" in html
    assert expected and "Continue to start" not in html


def test_launch_refuses_past_times_and_schedules_in_the_workspace_zone(
    owner, login, workspace, promo, settings
):
    workspace.time_zone = "Asia/Kolkata"
    workspace.save(update_fields=["time_zone"])
    number = make_number(workspace=workspace)
    client = login(owner)
    campaign = create_draft(client, number, promo)
    page = client.get(url("launch", campaign))
    assert "Times are in Asia/Kolkata" in page.content.decode()

    page = client.post(
        url("launch", campaign), {"when": "later", "scheduled_at": "2020-01-01T10:00"}
    )
    assert "That time has passed: choose a time in the future." in page.content.decode()
    page = client.post(url("launch", campaign), {"when": "later", "scheduled_at": ""})
    assert "Give the date and time to start at." in page.content.decode()
    # Start now without contacts: the service's refusal, in words.
    page = client.post(url("launch", campaign), {"when": "now"})
    assert (
        "The campaign cannot send: it has no contacts waiting to be sent: import a CSV first."
        in page.content.decode()
    )
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and campaign.scheduled_at is None

    answer = client.post(
        url("launch", campaign), {"when": "later", "scheduled_at": "2040-01-01T10:00"}
    )
    assert answer.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    assert campaign.scheduled_at == datetime(2040, 1, 1, 4, 30, tzinfo=UTC)
    # The wizard builds drafts: a scheduled campaign's steps lead to its page.
    again = client.get(url("contacts", campaign))
    assert again.status_code == 302
    assert again["Location"] == reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def test_a_big_file_is_queued_for_a_worker_and_its_page_follows_the_import(
    owner, login, workspace, promo, settings, media
):
    settings.CAMPAIGN_SYNC_IMPORT_MAX_BYTES = 10
    number = make_number(workspace=workspace)
    client = login(owner)
    campaign = create_draft(client, number, promo)
    client.post(
        url("contacts", campaign),
        {"action": "upload", "file": csv_file("phone,1,2\n9812345678,A,B\n9812345679,C,D\n")},
    )
    answer = client.post(
        url("contacts", campaign),
        {
            "action": "import",
            "phone": "0",
            f"p_{promo.pk}_body.1": "1",
            f"p_{promo.pk}_body.2": "2",
        },
    )
    job = ImportJob.objects.get(campaign=campaign)
    assert answer.status_code == 302 and job.status == "queued"
    # The file is in the job's stored chunks now; the staged copy is gone.
    assert job.chunks.count() == 1
    assert not any(path.is_file() for path in media.rglob("*"))
    html = client.get(answer["Location"]).content.decode()
    assert "Import of contacts.csv: queued" in html
    assert 'hx-trigger="every 2s"' in html


def test_a_windows_1252_file_keeps_its_text_and_line_numbers_when_the_phone_column_is_chosen(
    owner, login, workspace, promo
):
    number = make_number(workspace=workspace)
    client = login(owner)
    campaign = create_draft(client, number, promo)
    data = "\r\nKunde;Handy Nr;Code\r\nZoé;98123 45678;Z1\r\nbad;1;B\r\n".encode("cp1252")
    upload = SimpleUploadedFile("excel.csv", data, content_type="text/csv")
    client.post(url("contacts", campaign), {"action": "upload", "file": upload})
    answer = client.post(
        url("contacts", campaign),
        {
            "action": "import",
            "phone": "1",
            f"p_{promo.pk}_body.1": "0",
            f"p_{promo.pk}_body.2": "2",
        },
    )
    assert answer.status_code == 302
    job = ImportJob.objects.get(campaign=campaign)
    assert list(Recipient.objects.values_list("phone", "variables", "row_number")) == [
        ("+919812345678", {"body.1": "Zoé", "body.2": "Z1"}, 3)
    ]
    assert list(job.row_errors.values_list("row", flat=True)) == [4]


def test_a_member_of_several_workspaces_chooses_one_first_and_sees_only_its_numbers(
    owner, login, workspace, other_workspace
):
    Membership.objects.create(workspace=other_workspace, user=owner, role=Role.ADMIN)
    make_number(workspace=workspace, label="Acme main")
    make_number(workspace=other_workspace, label="Globex main", phone_number_id="298")
    client = login(owner)
    chooser = client.get(url("wizard")).content.decode()
    assert 'name="workspace"' in chooser and "Acme main" not in chooser
    page = client.get(url("wizard") + f"?workspace={other_workspace.pk}").content.decode()
    assert "Globex main" in page and "Acme main" not in page


def test_wizard_uploads_never_imported_are_pruned_after_their_time(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    old = default_storage.save("wizard/7/old.csv", ContentFile(b"phone\n+919800000001\n"))
    new = default_storage.save("wizard/8/new.csv", ContentFile(b"phone\n+919800000002\n"))
    other = default_storage.save("elsewhere/old.csv", ContentFile(b"x"))
    day_ago = time.time() - 25 * 3600
    for name in (old, other):
        os.utime(default_storage.path(name), (day_ago, day_ago))

    assert prune_wizard_uploads.run() == 1

    assert not default_storage.exists(old)
    assert default_storage.exists(new) and default_storage.exists(other)
    assert wizard_uploads_prune(older_than_seconds=3600) == 0
