"""Admin upload, pre-flight page and recipient list; the import_contacts command."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from campaigns.models import Recipient, Suppression
from tests.campaigns.conftest import upload
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_admin_upload_imports_and_reports(client, owner, campaign, sim):
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
    # The pre-flight runs on the page's POST (it calls Meta: the simulator here).
    preflight = client.post(reverse("admin:campaigns_campaign_preflight", args=[campaign.pk]))
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


def admin_add_post(client, *, workspace, numbers, templates, mapping="{}", scheduled_at=None):
    """POSTs the admin's add form, management forms taken from the page itself."""
    page = client.get(reverse("admin:campaigns_campaign_add"))
    data = {
        "workspace": workspace.pk,
        "name": "Admin made",
        "numbers": [n.pk for n in numbers],
        "variable_mapping": mapping,
        "scheduled_at_0": scheduled_at.strftime("%Y-%m-%d") if scheduled_at else "",
        "scheduled_at_1": scheduled_at.strftime("%H:%M:%S") if scheduled_at else "",
    }
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        rows = templates if inline.formset.model.__name__ == "CampaignTemplate" else []
        data[f"{prefix}-TOTAL_FORMS"] = len(rows)
        data[f"{prefix}-INITIAL_FORMS"] = 0
        for i, (template, weight) in enumerate(rows):
            data[f"{prefix}-{i}-template"] = template.pk
            data[f"{prefix}-{i}-weight"] = weight
    return client.post(reverse("admin:campaigns_campaign_add"), data)


def test_the_admin_add_form_keeps_the_services_rules(client, owner, workspace, number):
    from campaigns.models import Campaign
    from tests.factories import make_template

    client.login(username="olivia", password=PASSWORD)
    other_waba = make_template(workspace=workspace, name="elsewhere", waba_id="999")
    refused = admin_add_post(
        client, workspace=workspace, numbers=[number], templates=[(other_waba, 1)]
    )
    assert refused.status_code == 200
    assert "belongs to WABA 999" in refused.content.decode()
    paused = make_template(workspace=workspace, name="paused_one", status="PAUSED")
    # Not even offered (the dropdown has approved templates only), and refused if posted.
    assert "paused_one" not in client.get(reverse("admin:campaigns_campaign_add")).content.decode()
    refused = admin_add_post(client, workspace=workspace, numbers=[number], templates=[(paused, 1)])
    assert "Select a valid choice" in refused.content.decode()
    assert Campaign.objects.count() == 0

    good = make_template(workspace=workspace, name="good")
    created = admin_add_post(client, workspace=workspace, numbers=[number], templates=[(good, 2)])
    assert created.status_code == 302
    campaign = Campaign.objects.get()
    assert list(campaign.campaign_templates.values_list("template__name", "weight")) == [
        ("good", 2)
    ]
    assert campaign.created_by == owner


def test_the_admin_freezes_numbers_templates_and_mapping_once_contacts_exist(
    client, owner, campaign
):
    from tests.campaigns.conftest import run_import

    client.login(username="olivia", password=PASSWORD)
    run_import(campaign, "phone,1,2\n9876543210,Asha,A1\n")
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    form = page.context["adminform"].form
    assert "numbers" not in form.fields
    assert "variable_mapping" not in form.fields
    [templates_inline] = [
        i
        for i in page.context["inline_admin_formsets"]
        if i.formset.model.__name__ == "CampaignTemplate"
    ]
    assert templates_inline.has_change_permission is False


def test_the_admin_schedules_through_the_service_and_refuses_a_past_time(
    client, owner, workspace, number
):
    import datetime as dt

    from django.utils import timezone

    from campaigns.models import Campaign, CampaignEvent
    from tests.factories import make_template

    client.login(username="olivia", password=PASSWORD)
    template = make_template(workspace=workspace, name="good")
    past = timezone.now() - dt.timedelta(hours=1)
    refused = admin_add_post(
        client, workspace=workspace, numbers=[number], templates=[(template, 1)], scheduled_at=past
    )
    assert refused.status_code == 200
    assert "the scheduled time has passed" in refused.content.decode()
    assert Campaign.objects.count() == 0

    when = (timezone.now() + dt.timedelta(days=1)).replace(microsecond=0)
    created = admin_add_post(
        client, workspace=workspace, numbers=[number], templates=[(template, 1)], scheduled_at=when
    )
    assert created.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.scheduled_at) == ("scheduled", when)
    [event] = CampaignEvent.objects.filter(campaign=campaign)
    assert (event.from_status, event.to_status, event.user) == ("draft", "scheduled", owner)

    # Clearing the time returns it to draft, with the audit trail saying so.
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    data = {
        key: value
        for key, value in page.context["adminform"].form.initial.items()
        if key in ("workspace", "name", "variable_mapping")
    }
    data.update(numbers=[number.pk], scheduled_at_0="", scheduled_at_1="", variable_mapping="{}")
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data[f"{formset.prefix}-TOTAL_FORMS"] = len(formset.forms)
        data[f"{formset.prefix}-INITIAL_FORMS"] = formset.initial_form_count()
        for i, form in enumerate(formset.forms):
            data[f"{formset.prefix}-{i}-id"] = form.instance.pk or ""
            for name in form.fields:
                value = form.initial.get(name)
                if value is not None:
                    data[f"{formset.prefix}-{i}-{name}"] = getattr(value, "pk", value)
    changed = client.post(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), data)
    assert changed.status_code == 302, (
        changed.context["adminform"].form.errors,
        [f.errors for i in changed.context["inline_admin_formsets"] for f in i.formset.forms],
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("draft", None)
    assert list(
        CampaignEvent.objects.filter(campaign=campaign).values_list("from_status", "to_status")
    ) == [("draft", "scheduled"), ("scheduled", "draft")]
