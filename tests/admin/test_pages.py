"""Pages by role: dashboard, numbers, templates, status updates, 403/404, /api/docs/."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Membership, Role
from campaigns.models import CampaignEvent, CampaignStatus, ImportJob, RecipientStatus
from messaging.graph import error_explanation
from numbers.models import Number
from templates_sync.models import TemplateStatusChange
from tests.factories import (
    make_campaign,
    make_number,
    make_recipient,
    make_recipients,
    make_template,
    make_workspace,
)
from webhooks.models import StatusUpdate

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy(workspace, other_workspace):
    """Acme: a running campaign (3 read today, 1 failed 131049), a paused one paused by the
    product, a rejected template; Globex: a running campaign Acme must not count."""
    number = make_number(workspace=workspace, quality_rating="YELLOW", last_error="")
    template = make_template(workspace=workspace)
    rejected = make_template(workspace=workspace, name="too_salesy", status="REJECTED")
    TemplateStatusChange.objects.create(
        template=rejected,
        old="PENDING",
        new="REJECTED",
        at=timezone.now(),
        reason="INCORRECT_CATEGORY",
    )
    running = make_campaign(
        workspace=workspace, numbers=[number], templates=[template], status="running"
    )
    make_recipients(campaign=running, count=3, status=RecipientStatus.READ)
    make_recipient(
        campaign=running,
        phone="+919800000099",
        status=RecipientStatus.FAILED,
        error_code=131049,
        error_title="",
    )
    paused = make_campaign(
        workspace=workspace,
        numbers=[number],
        templates=[template],
        name="Auto-paused",
        status=CampaignStatus.PAUSED,
        pause_reason="template too_salesy was REJECTED by Meta",
    )
    CampaignEvent.objects.create(
        campaign=paused, from_status="running", to_status="paused", reason="auto"
    )
    theirs = make_number(workspace=other_workspace, phone_number_id="299", label="theirs")
    their_template = make_template(workspace=other_workspace)
    make_campaign(
        workspace=other_workspace, numbers=[theirs], templates=[their_template], status="running"
    )
    return {
        "number": number,
        "template": template,
        "running": running,
        "paused": paused,
        "rejected": rejected,
    }


def test_dashboard_figures_and_alerts(busy, owner, login, django_assert_max_num_queries):
    client = login(owner)
    with django_assert_max_num_queries(30):
        page = client.get(reverse("admin:index"))
    html = page.content.decode()
    context = page.context
    assert context["campaign_counts"]["running"] == 1  # Globex's is not counted
    assert context["campaign_counts"]["paused"] == 1
    assert (context["today"]["accepted"], context["today"]["read"]) == (3, 3)
    assert context["today"]["failed"] == 1
    assert escape(error_explanation(131049)) in html
    assert "Auto-paused</a> was paused automatically: template too_salesy was REJECTED" in html
    assert "too_salesy (en_US)</a> is rejected" in html
    assert "medium (yellow)" in html
    assert "theirs" not in html


def test_dashboard_queries_do_not_grow_with_campaigns(busy, owner, login, workspace):
    client = login(owner)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as before:
        client.get(reverse("admin:index"))
    for i in range(5):
        campaign = make_campaign(
            workspace=workspace,
            numbers=[busy["number"]],
            templates=[busy["running"].campaign_templates.first().template],
            name=f"more {i}",
            status="running",
        )
        make_recipients(campaign=campaign, phones=[f"+91980000{i:04d}"])
    with CaptureQueriesContext(connection) as after:
        client.get(reverse("admin:index"))
    assert len(after) == len(before)


def test_agents_see_the_dashboard_without_configuration_links(busy, agent, login):
    html = login(agent).get(reverse("admin:index")).content.decode()
    assert "medium (yellow)" in html
    assert reverse("admin:numbers_number_change", args=[busy["number"].pk]) not in html
    assert reverse("admin:numbers_number_changelist") not in html
    assert reverse("admin:templates_sync_template_changelist") not in html


@pytest.mark.parametrize(
    "name",
    [
        "admin:numbers_number_changelist",
        "admin:templates_sync_template_changelist",
        "admin:templates_sync_wabasync_changelist",
        "admin:numbers_number_add",
    ],
)
def test_agents_get_a_friendly_403_on_configuration(busy, agent, login, name):
    page = login(agent).get(reverse(name))
    assert page.status_code == 403
    html = page.content.decode()
    assert "You cannot open this page" in html
    assert "/static/wac/admin.css" in html
    # The frame keeps the user's links: a way out other than the back button.
    assert reverse("admin:logout") in html and 'id="wac-bell"' in html


def test_agents_cannot_open_a_number_page(busy, agent, login):
    page = login(agent).get(reverse("admin:numbers_number_change", args=[busy["number"].pk]))
    assert page.status_code == 403
    assert Number.objects.get(pk=busy["number"].pk).label == busy["number"].label


def test_admins_see_audit_trail_and_imports(busy, admin_user, login):
    html = (
        login(admin_user)
        .get(reverse("admin:campaigns_campaign_change", args=[busy["paused"].pk]))
        .content.decode()
    )
    assert "Audit trail" in html
    compact = re.sub(r">\s+<", "><", html)
    assert '<td class="field-reason"><p>auto</p></td>' in compact
    assert "Imports" in html
    assert "Paused: template too_salesy was REJECTED by Meta" in html
    assert "Resume" in html


def test_number_add_form_helps_and_preselects_the_only_workspace(owner, login, workspace):
    html = login(owner).get(reverse("admin:numbers_number_add")).content.decode()
    assert "WhatsApp &gt; API Setup, &quot;Phone number ID&quot;" in html
    assert "System users &gt; Generate new token" in html
    assert f'<option value="{workspace.pk}" selected>' in html


def test_number_add_form_does_not_guess_between_two_workspaces(owner, login, workspace):
    second = make_workspace(name="Second", slug="second")
    Membership.objects.create(workspace=second, user=owner, role=Role.ADMIN)
    html = login(owner).get(reverse("admin:numbers_number_add")).content.decode()
    assert f'<option value="{workspace.pk}" selected>' not in html
    assert f'<option value="{second.pk}" selected>' not in html


def test_template_page_shows_the_bubble_and_metas_reason(busy, owner, login):
    html = (
        login(owner)
        .get(reverse("admin:templates_sync_template_change", args=[busy["rejected"].pk]))
        .content.decode()
    )
    assert "INCORRECT_CATEGORY" in html
    assert '<p class="wac-preview-body">Hi {{1}}, your order {{2}} shipped</p>' in html
    assert '<span class="wac-badge wac-bad">Rejected</span>' in html
    # Whether campaigns can use it, in words; the JSON folded away for developers.
    assert '<span class="wac-badge wac-warn">Not now: it is rejected</span>' in html
    technical = html[html.index("Technical details") - 300 :]
    assert "<details" in technical[:300] and "Send components" in technical


def test_an_approved_template_page_says_campaigns_can_send_it(busy, owner, login):
    page = login(owner).get(
        reverse("admin:templates_sync_template_change", args=[busy["template"].pk])
    )
    html = page.content.decode()
    assert '<span class="wac-badge wac-ok">Yes</span>' in html
    assert f"<h1>Template: {busy['template'].name} (en_US)</h1>" in html
    assert "View template" not in html


def test_the_imports_list_names_each_import_and_badges_its_state(busy, owner, login):
    job = ImportJob.objects.create(
        campaign=busy["running"], filename="spring.csv", status="done", data_rows=3, accepted=3
    )
    html = login(owner).get(reverse("admin:campaigns_importjob_changelist")).content.decode()
    assert f">Import {job.pk}</a>" in html
    assert '<span class="wac-badge wac-ok">Done</span>' in html
    assert "column-pk" not in html  # no bare "PK" column


def test_campaign_form_offers_approved_templates_only(busy, owner, login):
    html = login(owner).get(reverse("admin:campaigns_campaign_add")).content.decode()
    assert "order_update (en_US, utility)" in html
    assert "too_salesy" not in html


def test_owners_see_their_status_updates_not_others(busy, owner, login, other_workspace):
    ours = StatusUpdate.objects.create(
        message_key="wamid.ours",
        status="read",
        recipient=busy["running"].recipients.first(),
        at=timezone.now(),
    )
    unmatched_ours = StatusUpdate.objects.create(
        message_key="wamid.early",
        status="sent",
        phone_number_id="200000000000001",
        at=timezone.now(),
    )
    StatusUpdate.objects.create(
        message_key="wamid.theirs", status="sent", phone_number_id="299", at=timezone.now()
    )
    page = login(owner).get(reverse("admin:webhooks_statusupdate_changelist"))
    assert page.status_code == 200
    assert sorted(r.pk for r in page.context["cl"].result_list) == sorted(
        [ours.pk, unmatched_ours.pk]
    )


def test_raw_webhook_events_are_refused_with_a_friendly_page(owner, login):
    page = login(owner).get(reverse("admin:webhooks_webhookevent_changelist"))
    assert page.status_code == 403
    assert "You cannot open this page" in page.content.decode()


def test_not_found_page_is_friendly(owner, login, settings):
    settings.DEBUG = False
    page = login(owner).get("/no-such-page/")
    assert page.status_code == 404
    assert "Page not found" in page.content.decode()


def test_api_docs_load_nothing_from_another_host(owner, login):
    page = login(owner).get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert not re.search(r"(src|href)=[\"'](https?:)?//", html)
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html


def test_number_page_links_to_what_meta_sent_about_it(busy, owner, login):
    number = busy["number"]
    StatusUpdate.objects.create(
        message_key="wamid.x",
        status="sent",
        phone_number_id=number.phone_number_id,
        at=timezone.now(),
    )
    StatusUpdate.objects.create(
        message_key="wamid.y", status="sent", phone_number_id="299", at=timezone.now()
    )
    client = login(owner)
    html = client.get(reverse("admin:numbers_number_change", args=[number.pk])).content.decode()
    link = f"{reverse('admin:webhooks_statusupdate_changelist')}?phone_number_id={number.phone_number_id}"
    assert link in html
    page = client.get(link)
    assert [r.message_key for r in page.context["cl"].result_list] == ["wamid.x"]
    # Another workspace's number id finds nothing of theirs.
    page = client.get(f"{reverse('admin:webhooks_statusupdate_changelist')}?phone_number_id=299")
    assert list(page.context["cl"].result_list) == []


def test_dashboard_numbers_table_labels_every_figure_for_phones(busy, owner, login):
    """At 390 px the numbers table turns into one block per number (admin.css .wac-stack):
    every cell carries its column's name, the long last error wraps."""
    html = login(owner).get(reverse("admin:index")).content.decode()
    table = html[html.index('id="wac-d-numbers"') :]
    table = table[: table.index("</table>")]
    assert '<table class="wac-table wac-stack">' in table
    for label in ("Quality", "Tier", "Max msg/s", "Status", "Lane", "Last error"):
        assert f'data-label="{label}"' in table
    assert '<td data-label="Last error" class="wac-wrap">' in table


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("admin:campaigns_campaign_changelist", "Campaigns"),
        ("admin:numbers_number_changelist", "Numbers"),
        ("admin:templates_sync_template_changelist", "Templates"),
        ("admin:campaigns_importjob_changelist", "Contact imports"),
        ("admin:campaigns_suppression_changelist", "Opted-out phones (never sent to)"),
    ],
)
def test_lists_are_titled_with_what_they_list(owner, login, name, title):
    html = login(owner).get(reverse(name)).content.decode()
    assert f"<h1>{title}</h1>" in html
    assert "to change</h1>" not in html and "to view</h1>" not in html
