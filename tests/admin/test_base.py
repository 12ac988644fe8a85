"""The frame of every admin page: stylesheet, htmx, favicon, escaped help texts."""

import re

import pytest
from django.urls import reverse

from tests.factories import make_campaign, make_number, make_template

pytestmark = pytest.mark.django_db


def test_every_page_loads_the_stylesheet_and_htmx_locally(owner, login):
    page = login(owner).get(reverse("admin:index"))
    html = page.content.decode()
    assert page.status_code == 200
    assert '/static/wac/admin.css"' in html
    assert '/static/vendor/htmx/htmx-2.0.11.min.js"' in html
    assert '<meta name="csrf-token" content="' in html
    assert '/static/wac/favicon.svg"' in html
    # No asset from another host, and no "View site" link to a page that does not exist.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "View site" not in html


def test_favicon_is_served_locally(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301
    assert answer["Location"] == "/static/wac/favicon.ico"


def test_help_texts_are_text_not_html(owner, login, workspace):
    """The campaign's variable-mapping help text names '<template id>': printed raw, the
    browser opened a <template> element and the rest of the form (Save included) vanished."""
    page = login(owner).get(reverse("admin:campaigns_campaign_add"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<template id>" not in html
    assert 'name="_save"' in html


def test_a_campaign_page_shows_its_form_to_the_end(owner, login, workspace):
    number = make_number(workspace=workspace)
    template = make_template(workspace=workspace)
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    html = login(owner).get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    html = html.content.decode()
    assert "<template id>" not in html
    assert 'name="_save"' in html


def test_the_bell_is_an_icon_not_an_emoji(owner, login):
    """Debian's Chromium has no emoji font: the bell emoji was drawn as an empty box."""
    html = login(owner).get(reverse("admin:index")).content.decode()
    bell = html[html.index('id="wac-bell"') :]
    bell = bell[: bell.index("</a>")]
    assert "<svg" in bell and "&#128276;" not in bell and "\U0001f514" not in bell
    assert 'aria-label="Notifications: 0 unread"' in html


def test_the_test_app_is_not_listed_among_the_pages(owner, login):
    """Test runs register a fixture app (Gadgets): it must not appear as a product page."""
    client = login(owner)
    html = client.get(reverse("admin:index")).content.decode()
    assert "Gadget" not in html and "Testapp" not in html
    assert "Campaigns" in html
    # Its pages still open for the tests that use them.
    assert client.get(reverse("admin:testapp_gadget_changelist")).status_code == 200
