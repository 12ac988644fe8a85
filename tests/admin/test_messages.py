"""The messages list and page: filters, phone search in any form, text sent, errors explained."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from campaigns.models import RecipientStatus
from messaging.graph import error_explanation
from tests.factories import make_campaign, make_number, make_recipient, make_template

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:campaigns_recipient_changelist"


@pytest.fixture
def sent(workspace, other_workspace):
    number = make_number(workspace=workspace)
    template = make_template(workspace=workspace)
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    other = make_campaign(workspace=workspace, numbers=[number], templates=[template], name="Holi")
    ok = make_recipient(
        campaign=campaign,
        phone="+919876543210",
        status=RecipientStatus.READ,
        variables={"body.1": "Asha", "body.2": "A-17"},
    )
    failed = make_recipient(
        campaign=campaign,
        phone="+919812345678",
        status=RecipientStatus.FAILED,
        error_code=131026,
        error_title="Message undeliverable",
    )
    elsewhere = make_recipient(campaign=other, phone="+919876543210")
    foreign_number = make_number(workspace=other_workspace, phone_number_id="299")
    foreign_template = make_template(workspace=other_workspace)
    foreign = make_campaign(
        workspace=other_workspace, numbers=[foreign_number], templates=[foreign_template]
    )
    make_recipient(campaign=foreign, phone="+919876543210", error_code=131047)
    return {"campaign": campaign, "ok": ok, "failed": failed, "elsewhere": elsewhere}


def shown(client, **query):
    page = client.get(reverse(CHANGELIST), query)
    assert page.status_code == 200
    return sorted(r.pk for r in page.context["cl"].result_list)


@pytest.mark.parametrize(
    "typed", ["+919876543210", "919876543210", "98765 43210", "+91 98765-43210", "09876543210"]
)
def test_phone_search_with_or_without_plus_or_country_code(sent, owner, login, typed):
    assert shown(login(owner), q=typed) == sorted([sent["ok"].pk, sent["elsewhere"].pk])


def test_filters_by_campaign_status_and_error_code(sent, owner, login):
    client = login(owner)
    assert "<h1>Messages</h1>" in client.get(reverse(CHANGELIST)).content.decode()
    campaign = sent["campaign"]
    assert shown(client, campaign__id__exact=campaign.pk) == sorted(
        [sent["ok"].pk, sent["failed"].pk]
    )
    assert shown(client, status__exact="failed") == [sent["failed"].pk]
    assert shown(client, error_code="131026") == [sent["failed"].pk]
    assert shown(client, error_code="131047") == []  # another workspace's code
    page = client.get(reverse(CHANGELIST))
    codes = [
        choice["display"]
        for f in page.context["cl"].filter_specs
        for choice in f.choices(page.context["cl"])
        if f.title == "error"
    ]
    assert codes[1:] == [f"131026: {error_explanation(131026)[:59].rstrip()}…"]


def test_message_page_shows_the_text_sent_and_the_error_in_plain_words(sent, owner, login):
    client = login(owner)
    html = client.get(
        reverse("admin:campaigns_recipient_change", args=[sent["ok"].pk])
    ).content.decode()
    assert "Hi Asha, your order A-17 shipped" in html
    html = client.get(
        reverse("admin:campaigns_recipient_change", args=[sent["failed"].pk])
    ).content.decode()
    assert escape(error_explanation(131026, "Message undeliverable")) in html
    assert "(code 131026)" in html


def test_agents_read_messages_outsiders_do_not_find_them(sent, agent, outsider, login):
    url = reverse("admin:campaigns_recipient_change", args=[sent["ok"].pk])
    assert login(agent).get(url).status_code == 200
    answer = login(outsider).get(url)
    # The admin redirects a missing object to its list with a message, never shows it.
    assert answer.status_code == 302
    assert sent["ok"].pk not in shown(login(outsider), q="+919876543210")


def test_api_messages_explain_errors(sent, owner, api):
    answer = api(owner).get(f"/api/campaigns/{sent['campaign'].pk}/messages/")
    rows = {row["phone"]: row for row in answer.json()["results"]}
    assert rows["+919812345678"]["error_explanation"] == error_explanation(
        131026, "Message undeliverable"
    )
    assert rows["+919876543210"]["error_explanation"] == ""


def test_the_two_status_filters_say_which_status(sent, owner, login):
    html = login(owner).get(reverse(CHANGELIST)).content.decode()
    assert "By message status" in html and "By campaign status" in html
    assert "By status" not in html
