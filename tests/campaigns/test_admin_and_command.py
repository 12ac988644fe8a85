"""Admin upload, pre-flight page and recipient list; the import_contacts command."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from campaigns.models import Recipient, Suppression
from tests.campaigns.conftest import upload
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_admin_upload_imports_and_reports(client, owner, campaign):
    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert page.status_code == 200
    assert b"Upload contacts" in page.content and b"Pre-flight check" in page.content
    url = reverse("admin:campaigns_campaign_upload", args=[campaign.pk])
    response = client.post(url, {"file": upload("phone,1,2\n9812345678,A,1\nx,a,b\n")}, follow=True)
    assert response.status_code == 200
    assert b"1 accepted, 1 rejected, 0 duplicates, 0 suppressed of 2 rows." in response.content
    assert Recipient.objects.count() == 1
    bad = client.post(url, {"file": upload("name\nA\n")})
    assert b"no phone column" in bad.content
    preflight = client.get(reverse("admin:campaigns_campaign_preflight", args=[campaign.pk]))
    assert preflight.status_code == 200
    assert b"Audience: 1" in preflight.content


def test_admin_hides_other_workspaces(client, outsider, campaign):
    client.login(username=outsider.username, password=PASSWORD)
    assert (
        client.get(reverse("admin:campaigns_campaign_upload", args=[campaign.pk])).status_code
        == 404
    )
    assert (
        client.get(reverse("admin:campaigns_campaign_preflight", args=[campaign.pk])).status_code
        == 404
    )
    listing = client.get(reverse("admin:campaigns_recipient_changelist"))
    assert listing.status_code == 200


def test_admin_suppression_goes_through_the_service(client, owner, workspace):
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(
        reverse("admin:campaigns_suppression_add"),
        {"workspace": workspace.pk, "phone": "98123 45678", "reason": "STOP", "source": "manual"},
    )
    assert response.status_code == 302
    assert list(Suppression.objects.values_list("phone", "reason")) == [("+919812345678", "STOP")]


def test_import_contacts_command_prints_plain_lines(campaign, tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("phone,1,2\n9812345678,A,1\n9812345678,A,1\n")
    call_command("import_contacts", str(campaign.pk), str(path))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "99% 2 rows, 1 accepted"
    assert out[-2:] == [
        f"import {campaign.imports.get().pk}: 2 rows: 1 accepted, 0 rejected, 1 duplicates, "
        "0 suppressed (encoding UTF-8, comma-separated)",
        "row 3: duplicate: +919812345678: duplicate of row 2",
    ]


def test_import_contacts_command_refuses_a_bad_file(campaign, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("name\nA\n")
    with pytest.raises(CommandError, match="no phone column"):
        call_command("import_contacts", str(campaign.pk), str(path))
    with pytest.raises(CommandError, match="no campaign 999999"):
        call_command("import_contacts", "999999", str(path))
