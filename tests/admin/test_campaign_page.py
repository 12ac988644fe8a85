"""The campaign page: live panel numbers, state-aware buttons through the services, refusals."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from campaigns.models import CampaignEvent, CampaignStatus, RecipientStatus
from messaging.graph import error_explanation
from tests.factories import make_campaign, make_number, make_recipients, make_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(workspace):
    """A running campaign: 10 contacts; 2 pending, 5 read (1 replied), 1 delivered,
    1 sent, 1 failed with 131026 (undeliverable)."""
    number = make_number(workspace=workspace)
    a = make_template(workspace=workspace, name="promo_a")
    b = make_template(workspace=workspace, name="promo_b")
    campaign = make_campaign(
        workspace=workspace, numbers=[number], templates=[a, b], status=CampaignStatus.RUNNING
    )
    rows = make_recipients(campaign=campaign, count=10)
    states = ["pending"] * 2 + ["read"] * 5 + ["delivered", "sent", "failed"]
    for row, state in zip(rows, states, strict=True):
        row.status = state
        row.template = b if state == "read" else a
        if state in ("read", "delivered", "sent"):
            row.sent_at = row.sent_at or row.campaign.created_at
            row.delivered_at = row.sent_at if state != "sent" else None
            row.read_at = row.sent_at if state == "read" else None
        if state == "failed":
            row.error_code, row.error_title = 131026, "Message undeliverable"
        row.save()
    rows[2].replied_at = rows[2].read_at
    rows[2].save()
    return campaign


def test_fragment_has_the_cumulative_funnel(seeded, owner, login):
    page = login(owner).get(reverse("admin:campaigns_campaign_live", args=[seeded.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "80% done (8 of 10)" in html
    # accepted 7 (5 read + 1 delivered + 1 sent) of 10; delivered 6 of 7; read 5 of 6.
    assert '>7</td><td class="wac-pct">70.0% of contacts' in html
    assert '>6</td><td class="wac-pct">85.7% of accepted' in html
    assert '>5</td><td class="wac-pct">83.3% of delivered' in html
    assert '>1</td><td class="wac-pct">16.7% of delivered' in html  # replied
    assert '>1</td><td class="wac-pct">12.5% of tried' in html  # failed 1 of 8
    assert "(code 131026)" in html
    # The explanation is H1's plain words, not Meta's title.
    assert escape(error_explanation(131026, "Message undeliverable")) in html
    # A/B: promo_b got the 5 read messages.
    assert "promo_b (en_US)" in html and "promo_a (en_US)" in html


def test_fragment_stops_polling_when_finished(seeded, owner, login):
    client = login(owner)
    url = reverse("admin:campaigns_campaign_live", args=[seeded.pk])
    assert client.get(url).status_code == 200
    seeded.status = CampaignStatus.COMPLETED
    seeded.save()
    assert client.get(url).status_code == 286
    page = client.get(reverse("admin:campaigns_campaign_change", args=[seeded.pk]))
    html = page.content.decode()
    assert "hx-trigger" not in html
    assert "Pause updates" not in html


def test_running_campaign_shows_pause_and_cancel_to_managers(seeded, owner, login):
    html = login(owner).get(reverse("admin:campaigns_campaign_change", args=[seeded.pk]))
    html = html.content.decode()
    assert 'hx-trigger="every 3s' in html
    assert "Pause updates" in html
    assert 'aria-live="polite"' in html and html.count("aria-live") == 1
    assert ">\n          Pause\n" in html
    assert "Cancel campaign" in html
    assert "Start now" not in html and "Resume" not in html.split("Pause updates")[1]
    assert reverse("campaign-report-csv", args=[seeded.pk]) in html
    assert f"?campaign__id__exact={seeded.pk}" in html


def test_pause_and_resume_go_through_the_services(seeded, owner, login):
    client = login(owner)
    answer = client.post(reverse("admin:campaigns_campaign_act", args=[seeded.pk, "pause"]))
    assert answer.status_code == 302
    seeded.refresh_from_db()
    assert seeded.status == CampaignStatus.PAUSED
    event = CampaignEvent.objects.filter(campaign=seeded).latest("pk")
    assert (event.from_status, event.to_status, event.user) == ("running", "paused", owner)
    client.post(reverse("admin:campaigns_campaign_act", args=[seeded.pk, "resume"]))
    seeded.refresh_from_db()
    assert seeded.status == CampaignStatus.RUNNING


def test_a_refused_action_says_why_and_changes_nothing(seeded, owner, login):
    client = login(owner)
    answer = client.post(
        reverse("admin:campaigns_campaign_act", args=[seeded.pk, "resume"]), follow=True
    )
    seeded.refresh_from_db()
    assert seeded.status == CampaignStatus.RUNNING
    shown = [str(m) for m in answer.context["messages"]]
    assert len(shown) == 1 and shown[0].startswith("Not resumed: ")
    assert not CampaignEvent.objects.filter(campaign=seeded, to_status="running").exists()


def test_agents_follow_but_cannot_act(seeded, agent, login):
    client = login(agent)
    html = client.get(reverse("admin:campaigns_campaign_change", args=[seeded.pk]))
    assert html.status_code == 200
    html = html.content.decode()
    assert "80% done (8 of 10)" in html
    assert "Cancel campaign" not in html
    assert "only a workspace owner or admin can start, pause or cancel it" in html
    # The templates are named, not linked to a page agents may not open.
    assert "promo_a (en_US)" in html
    assert 'href="/admin/templates_sync/template/' not in html
    answer = client.post(reverse("admin:campaigns_campaign_act", args=[seeded.pk, "pause"]))
    assert answer.status_code == 403
    seeded.refresh_from_db()
    assert seeded.status == CampaignStatus.RUNNING


def test_another_workspace_gets_404(seeded, outsider, login):
    client = login(outsider)
    assert client.get(reverse("admin:campaigns_campaign_live", args=[seeded.pk])).status_code == 404
    answer = client.post(reverse("admin:campaigns_campaign_act", args=[seeded.pk, "cancel"]))
    assert answer.status_code == 404
    seeded.refresh_from_db()
    assert seeded.status == CampaignStatus.RUNNING
    assert seeded.recipients.filter(status=RecipientStatus.CANCELLED).count() == 0


def test_finished_campaign_offers_no_delete_or_save(seeded, owner, login):
    seeded.status = CampaignStatus.COMPLETED
    seeded.save()
    html = login(owner).get(reverse("admin:campaigns_campaign_change", args=[seeded.pk]))
    html = html.content.decode()
    assert 'name="_save"' not in html
    assert 'name="_addanother"' not in html
    assert reverse("admin:campaigns_campaign_delete", args=[seeded.pk]) not in html
    answer = login(owner).post(reverse("admin:campaigns_campaign_delete", args=[seeded.pk]))
    assert answer.status_code == 403
    seeded.refresh_from_db()


def test_a_passing_preflight_offers_start(owner, login, workspace, sim, number):
    from tests.factories import make_template as template_of

    template = template_of(workspace=workspace, name="hello_world")
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    make_recipients(campaign=campaign, count=2)
    client = login(owner)
    page = client.post(reverse("admin:campaigns_campaign_preflight", args=[campaign.pk]))
    html = page.content.decode()
    assert "Ready to start" in html, html[html.find("Problems") : html.find("Problems") + 400]
    assert reverse("admin:campaigns_campaign_act", args=[campaign.pk, "start"]) in html
    client.post(reverse("admin:campaigns_campaign_act", args=[campaign.pk, "start"]))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING


def test_agents_see_a_draft_read_only(owner, agent, login, workspace):
    number = make_number(workspace=workspace)
    template = make_template(workspace=workspace)
    draft = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    html = login(agent).get(reverse("admin:campaigns_campaign_change", args=[draft.pk]))
    html = html.content.decode()
    assert 'name="_save"' not in html
    assert 'name="campaign_templates-0-weight"' not in html
    assert "Start now" not in html
    owner_html = login(owner).get(reverse("admin:campaigns_campaign_change", args=[draft.pk]))
    owner_html = owner_html.content.decode()
    assert 'name="campaign_templates-0-weight"' in owner_html
    assert "Start now" in owner_html


def test_a_finished_campaign_reads_as_a_report_not_a_form(seeded, owner, login):
    """Titled with its name (not "Change campaign"), the mapping in words (not JSON keyed
    by a template id), no second stale status under the live panel."""
    template = seeded.campaign_templates.order_by("pk").first().template
    seeded.variable_mapping = {str(template.pk): {"body.1": "first_name"}}
    seeded.status = CampaignStatus.COMPLETED
    seeded.save()
    html = login(owner).get(reverse("admin:campaigns_campaign_change", args=[seeded.pk]))
    html = html.content.decode()
    assert f"<h1>Campaign: {seeded.name}</h1>" in html
    assert "Change campaign" not in html
    assert "CSV columns for the templates" in html
    assert f"<div>{template.name} (en_US): Body {{{{1}}}} &larr; column first_name</div>" in html
    assert (
        f"<div>{template.name} (en_US): Body {{{{2}}}} &larr; the column named like the "
        "parameter</div>"
    ) in html
    assert "Variable mapping" not in html and "&lt;template id&gt;" not in html
    assert "Pause reason" not in html and "Paused at" not in html
    assert 'name="variable_mapping"' not in html


def test_a_draft_explains_its_mapping_with_the_template_numbers(owner, login, workspace):
    number = make_number(workspace=workspace)
    template = make_template(workspace=workspace, name="promo_a")
    draft = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    html = login(owner).get(reverse("admin:campaigns_campaign_change", args=[draft.pk]))
    html = html.content.decode()
    assert f"<h1>Campaign: {draft.name}</h1>" in html
    assert 'name="variable_mapping"' in html  # still editable before contacts come in
    assert "Column mapping (advanced)" in html
    assert f"(this campaign&#x27;s: promo_a = {template.pk})" in html
    assert "promo_a (en_US): Body {{1}} &larr; the column named like the parameter" in html


def test_one_failure_gets_a_visible_bar(seeded, owner, login):
    html = login(owner).get(reverse("admin:campaigns_campaign_live", args=[seeded.pk]))
    html = html.content.decode()
    assert '<span class="wac-bar wac-bad wac-bar-some" style="--pct:12.5%">' in html
    # A step with nothing in it draws no bar at all.
    seeded.recipients.filter(status="failed").update(status="pending", error_code=None)
    html = login(owner).get(reverse("admin:campaigns_campaign_live", args=[seeded.pk]))
    assert '<span class="wac-bar wac-bad" style="--pct:0%">' in html.content.decode()


def test_breakdown_tables_label_every_figure_for_phones(seeded, owner, login):
    html = login(owner).get(reverse("admin:campaigns_campaign_live", args=[seeded.pk]))
    html = html.content.decode()
    assert html.count('<table class="wac-table wac-stack">') == 2
    for label in ("Contacts", "Accepted", "Delivered", "Read", "Replied", "Failed"):
        assert f'data-label="{label}"' in html
