"""A marketer runs a whole campaign from the browser: the wizard with a CSV mapped by
dropdown, pre-flight, start, live progress, pause and resume, completion and the funnel."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus
from conversations.models import Conversation
from templates_sync.services import templates_sync
from tests.browser.conftest import PHONE, login, screenshot, wait_until
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

CONTACTS = 36
UNDELIVERABLE = "+919800000107"  # the simulator fails it with 131026 after accepting it
# Headers no importer default recognises: the marketer picks them by dropdown.
CSV = "Customer,WhatsApp No,Code\n" + "".join(
    f"Person {i},+9198000001{i:02d},CODE{i}\n" for i in range(CONTACTS)
) + "Nobody,12345,X\n"  # fmt: skip


def progress_done(page) -> int:
    """How many messages the campaign page says are done ("40% done (10 of 24)")."""
    text = page.locator("#wac-live").inner_text()
    found = re.search(r"done \((\d+) of (\d+)\)", text)
    assert found, text[:300]
    assert int(found.group(2)) == CONTACTS
    return int(found.group(1))


def funnel_row(page, label: str) -> str:
    row = page.locator("table.wac-funnel tr").filter(
        has=page.locator("th", has_text=re.compile(f"^{label}$"))
    )
    return row.locator("td").first.inner_text().strip()


def test_a_marketer_runs_a_campaign_from_the_wizard_to_the_funnel(
    page, console, live, sim, workspace, owner, demo_number
):
    sim.set_faults(undeliverable=[UNDELIVERABLE], read_rate=1.0, reply_rate=0.0)
    assert not templates_sync(workspace=workspace, number=demo_number).errors
    login(page, live, owner.username, PASSWORD)

    # Step 1: name, number, template (approved only, previewed) and weight.
    page.goto(f"{live}/admin/campaigns/campaign/")
    page.get_by_role("link", name="New campaign").click()
    expect(page.get_by_text("Hi Asha, use code FALL25 for 20% off this week.")).to_be_visible()
    expect(page.get_by_text("crypto_giveaway")).to_have_count(0)  # REJECTED: not offered
    page.get_by_label("Name", exact=True).fill("Diwali sale")
    page.get_by_label(re.compile(r"Main \(\+91")).check()
    page.get_by_label("seasonal_promo (en_US)").check()
    screenshot(page, "wizard-1-setup")
    page.get_by_role("button", name="Create draft and continue").click()

    # Step 2: upload; pick the phone column and each parameter from the file's headers.
    expect(
        page.get_by_role("link", name="Download a sample CSV for the chosen templates")
    ).to_be_visible()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "diwali.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Match the columns of diwali.csv")).to_be_visible()
    page.get_by_label("Phone column").select_option(label="WhatsApp No")
    page.get_by_label("Body {{1}}").select_option(label="Customer")
    page.get_by_label("Body {{2}}").select_option(label="Code")
    # The preview follows the dropdowns by itself (htmx), without a reload.
    page.evaluate("window.wacNoReload = true")
    expect(page.get_by_text("Hi Person 0, use code CODE0 for 20% off this week.")).to_be_visible()
    expect(page.get_by_text("to +919800000100")).to_be_visible()
    assert page.evaluate("window.wacNoReload") is True
    screenshot(page, "wizard-2-contacts")
    page.get_by_role("button", name="Import contacts").click()

    # Step 3: the import's result.
    result = page.locator("#import-result")
    expect(result).to_contain_text(f"{CONTACTS + 1} rows")
    expect(result).to_contain_text(f"{CONTACTS} accepted")
    expect(result).to_contain_text("1 rejected")
    expect(
        page.get_by_role("link", name=re.compile("Download the 1 row not imported"))
    ).to_be_visible()
    screenshot(page, "wizard-3-imported")
    page.get_by_role("link", name="Continue to pre-flight").click()

    # Step 4: pre-flight against the simulator.
    page.get_by_role("button", name="Run pre-flight").click()
    expect(page.get_by_text("Ready to start")).to_be_visible()
    expect(page.get_by_text(f"{CONTACTS} contacts to send to")).to_be_visible()
    screenshot(page, "wizard-4-preflight")
    page.get_by_role("link", name="Continue to start").click()

    # Step 5: start now.
    expect(page.get_by_text("Times are in UTC")).to_be_visible()
    expect(page.get_by_label("Start at")).to_be_hidden()
    page.get_by_label("Schedule for later").check()
    page.get_by_label("Start at").fill("2020-01-01T10:00")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("That time has passed: choose a time in the future.")).to_be_visible()
    assert Campaign.objects.get(name="Diwali sale").status == CampaignStatus.DRAFT
    page.get_by_label("Start now").check()
    screenshot(page, "wizard-5-launch")
    page.get_by_role("button", name="Confirm").click()
    campaign = Campaign.objects.get(name="Diwali sale")
    expect(page).to_have_url(re.compile(rf"/admin/campaigns/campaign/{campaign.pk}/change/"))

    # Progress advances without a reload (a marker on the window survives).
    page.evaluate("window.wacNoReload = true")
    first = progress_done(page)
    wait_until(lambda: progress_done(page) > first, timeout=30, what="progress to advance")
    assert page.evaluate("window.wacNoReload") is True
    screenshot(page, "campaign-live")

    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#wac-live")).to_contain_text("Paused")
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.PAUSED
    paused_at = progress_done(page)
    assert paused_at < CONTACTS
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.locator("#wac-live")).to_contain_text("Running")

    expect(page.locator("#wac-live")).to_contain_text("Completed", timeout=60_000)
    assert progress_done(page) == CONTACTS
    # Receipts keep arriving after the last send: wait for the simulator and the worker.
    sim.webhooks(wait=30)
    wait_until(
        lambda: (
            Recipient.objects.filter(campaign=campaign, status=RecipientStatus.SENT).count() == 0
        ),
        timeout=30,
        what="every receipt to be applied",
    )
    page.reload()
    assert funnel_row(page, "Contacts") == str(CONTACTS)
    assert funnel_row(page, "Accepted by WhatsApp") == str(CONTACTS)
    assert funnel_row(page, "Delivered") == str(CONTACTS - 1)
    assert funnel_row(page, "Read") == str(CONTACTS - 1)
    assert funnel_row(page, "Replied") == "0"
    assert funnel_row(page, "Failed") == "1"
    screenshot(page, "campaign-completed")

    page.goto(f"{live}/admin/")
    expect(page.get_by_text("Dashboard").first).to_be_visible()
    screenshot(page, "dashboard")
    page.goto(f"{live}/admin/campaigns/recipient/?campaign__id__exact={campaign.pk}")
    expect(page.get_by_text(UNDELIVERABLE).first).to_be_visible()
    screenshot(page, "messages")
    # A contact answers: the conversation reaches the inbox.
    sim.inbound(
        "919800000100",
        phone_number_id=demo_number.phone_number_id,
        type="text",
        text="Is CODE0 valid in shops too?",
    )
    wait_until(
        lambda: Conversation.objects.filter(workspace=workspace).exists(),
        timeout=30,
        what="the reply's conversation",
    )
    page.get_by_role("link", name="Inbox", exact=True).first.click()
    page.get_by_text("Is CODE0 valid in shops too?").first.click()
    expect(page.get_by_text("Is CODE0 valid in shops too?").last).to_be_visible()
    page.wait_for_load_state("networkidle")
    screenshot(page, "inbox")

    page.set_viewport_size(PHONE)
    page.goto(f"{live}/admin/")
    screenshot(page, "dashboard-phone")
    page.goto(f"{live}/admin/campaigns/campaign/{campaign.pk}/change/")
    screenshot(page, "campaign-phone")
    console.assert_clean()
