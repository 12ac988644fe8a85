"""Every admin page a person can open renders what they need, logs no error in the
browser, and an agent cannot reach number or template configuration."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from playwright.sync_api import expect

from campaigns.models import CampaignStatus
from campaigns.services import contacts_import, suppression_create
from tests.browser.conftest import login, screenshot
from tests.conftest import PASSWORD
from tests.factories import make_campaign, make_number, make_recipients, make_template

pytestmark = pytest.mark.django_db(transaction=True)


BELL = re.compile(r"^Notifications: \d+ unread$")


@pytest.fixture
def seeded(workspace, owner):
    """One of each of the main objects, so their change pages exist."""
    number = make_number(workspace=workspace, label="Main")
    template = make_template(workspace=workspace)
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    contacts_import(
        campaign=campaign,
        user=owner,
        opener=lambda: io.BytesIO(b"phone,1,2\n9812345678,A,B\nbad,A,B\n"),
        filename="c.csv",
        size=40,
    )
    running = make_campaign(
        workspace=workspace,
        numbers=[number],
        templates=[template],
        name="Paused one",
        status=CampaignStatus.PAUSED,
    )
    make_recipients(campaign=running, count=3, template=template, numbers=[number])
    suppression_create(workspace=workspace, phone="+919812300000", reason="STOP", source="manual")
    return {"number": number, "template": template, "campaign": campaign}


def _pages(superuser) -> list[tuple[str, str, bool]]:
    """(label, path, has a submit button) for every registered model's add page and the
    change page of its first row, as the admin's own permissions decide."""
    request = RequestFactory().get("/admin/")
    request.user = superuser
    pages = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}"
        if model_admin.has_add_permission(request):
            pages.append((f"{opts.label} add", f"{base}/add/", True))
        first = model_admin.get_queryset(request).order_by("pk").first()
        if first is not None:
            pages.append(
                (
                    f"{opts.label} change",
                    f"{base}/{first.pk}/change/",
                    model_admin.has_change_permission(request, first),
                )
            )
    return pages


def test_every_admin_add_and_change_page_renders_its_submit_button(
    page, console, live, seeded, workspace
):
    superuser = get_user_model().objects.create_superuser(
        username="root", password=PASSWORD, email="root@example.com"
    )
    login(page, live, superuser.username, PASSWORD)
    pages = _pages(superuser)
    assert len([p for p in pages if p[0].endswith(" add")]) >= 5
    assert len([p for p in pages if p[0].endswith(" change")]) >= 6
    problems = []
    for label, path, editable in pages:
        answer = page.goto(f"{live}{path}")
        if answer is None or answer.status != 200:
            problems.append(f"{label}: HTTP {answer.status if answer else '?'}")
            continue
        # The notifications bell (with its unread count) is on every admin page.
        if not page.get_by_role("link", name=BELL).is_visible():
            problems.append(f"{label}: no notifications bell")
        save = page.get_by_role("button", name="Save", exact=True)
        if editable and save.count() != 1:
            problems.append(f"{label}: no Save button")
        elif editable and not save.is_visible():
            problems.append(f"{label}: the Save button is not visible")
        elif not editable and save.count():
            problems.append(f"{label}: a Save button on a page that cannot be saved")
    assert problems == []
    console.assert_clean()


def test_an_agent_cannot_reach_number_or_template_configuration(page, console, live, seeded, agent):
    number, template = seeded["number"], seeded["template"]
    login(page, live, agent.username, PASSWORD)
    console.refusals_expected = True
    for path in ("/admin/numbers/number/add/",):
        answer = page.goto(f"{live}{path}")
        assert answer.status == 403
        expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    for path in (
        f"/admin/numbers/number/{number.pk}/change/",
        f"/admin/templates_sync/template/{template.pk}/change/",
    ):
        answer = page.goto(f"{live}{path}")
        assert answer.status in (200, 403)
        expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="Delete")).to_have_count(0)
        expect(page.get_by_role("link", name="Delete")).to_have_count(0)
    page.goto(f"{live}/admin/")
    expect(page.get_by_role("link", name="Add number")).to_have_count(0)
    # The campaign page is read-only for an agent: no start, pause or cancel.
    page.goto(f"{live}/admin/campaigns/campaign/{seeded['campaign'].pk}/change/")
    for verb in ("Start now", "Pause", "Resume", "Cancel campaign"):
        expect(page.get_by_role("button", name=verb, exact=True)).to_have_count(0)
    screenshot(page, "campaign-agent")
    console.assert_clean()
