"""The inbox in a browser: an inbound from the simulator appears live, an agent replies
without losing focus, and the reply shows delivered, then read; usable at 390 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Message
from templates_sync.services import templates_sync
from tests.browser.conftest import PHONE, login, screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "919822200001"


@pytest.fixture
def inbox(live, sim, demo_number, agent):
    # Each status 3 s after the one before: the page must show "delivered" before "read".
    sim.set_faults(webhook_delay_ms=3000)
    templates_sync(workspace=demo_number.workspace, number=demo_number)
    return live


def test_an_inbound_appears_live_and_the_reply_shows_delivered_then_read(
    inbox, page, console, sim, agent
):
    login(page, inbox, agent.username, PASSWORD)
    page.goto(f"{inbox}/admin/conversations/conversation/inbox/")
    expect(page.get_by_text("Choose a conversation.")).to_be_visible()
    sim.inbound(SENDER, text="Is the blue kurta in stock?", name="Meera")
    # The list polls: the new conversation appears without a reload.
    item = page.locator(".wac-conversations a", has_text="Meera")
    expect(item).to_be_visible(timeout=10_000)
    expect(item).to_contain_text("Is the blue kurta in stock?")
    item.click()
    expect(page.locator(".wac-msg.wac-in")).to_contain_text("Is the blue kurta in stock?")
    expect(page.locator("#window-state")).to_contain_text("closes in")

    box = page.locator("#reply-text")
    expect(box).to_be_focused()
    box.fill("Yes, in M and L.")
    page.get_by_role("button", name="Send", exact=True).click()
    reply = page.locator(".wac-msg.wac-out", has_text="Yes, in M and L.")
    expect(reply).to_be_visible(timeout=5_000)
    expect(box).to_be_focused()
    expect(box).to_have_value("")
    expect(reply).to_have_attribute("data-status", "delivered", timeout=15_000)
    expect(reply).to_have_attribute("data-status", "read", timeout=15_000)
    screenshot(page, "inbox-thread")

    # A message arriving while the agent types: it appears, the text and focus stay.
    box.type("Shall I reserve one")
    sim.inbound(SENDER, text="Great, thanks!")
    expect(page.locator(".wac-msg.wac-in", has_text="Great, thanks!")).to_be_visible(timeout=6_000)
    expect(box).to_be_focused()
    expect(box).to_have_value("Shall I reserve one")
    [sent] = [m for m in sim.messages(to=SENDER) if m["type"] == "text"]
    assert sent["text"] == "Yes, in M and L."
    assert Message.objects.filter(direction="out").count() == 1
    console.assert_clean()


def test_the_inbox_works_at_390_px_for_an_agent(inbox, page, console, sim, agent):
    page.set_viewport_size(PHONE)
    sim.inbound(SENDER, text="Hi from my phone", name="Meera")
    login(page, inbox, agent.username, PASSWORD)
    page.goto(f"{inbox}/admin/conversations/conversation/inbox/")
    item = page.locator(".wac-conversations a", has_text="Meera")
    expect(item).to_be_visible(timeout=10_000)
    item.click()
    expect(page.get_by_role("link", name=re.compile("All conversations"))).to_be_visible()
    expect(page.locator("#reply-text")).to_be_visible()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at 390 px"
    screenshot(page, "inbox-phone")
    console.assert_clean()
