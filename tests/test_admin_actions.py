"""Admin tools that call Meta and write (pre-flight, test connection, sync templates) run
only on a POST by an owner or admin; agents get 403 and Meta is not called.

"Meta was not called" is shown by changing the simulator first: a call would have
brought the change into the database.
"""

import pytest
from django.urls import reverse

from accounts.models import Membership, Role
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS
from numbers.models import Number
from templates_sync.models import Template
from templates_sync.services import templates_sync
from tests.conftest import PASSWORD
from tests.factories import make_campaign, make_template

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def meta_changed(sim, number):
    """Meta now reports the number RED; only a call to Meta brings that in."""
    sim.update_number(DEMO_PHONE_NUMBER_IDS[0], quality_rating="RED")
    return number


def unchanged(number) -> bool:
    fresh = Number.objects.get(pk=number.pk)
    return (fresh.quality_rating, fresh.last_checked_at) == ("GREEN", number.last_checked_at)


def logged_in(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


# -- pre-flight ----------------------------------------------------------------------------


@pytest.fixture
def campaign(workspace, number):
    return make_campaign(
        workspace=workspace, numbers=[number], templates=[make_template(workspace=workspace)]
    )


def preflight_url(campaign) -> str:
    return reverse("admin:campaigns_campaign_preflight", args=[campaign.pk])


def test_the_preflight_page_shows_a_button_and_calls_nothing_on_get(
    client, owner, campaign, meta_changed
):
    page = logged_in(client, owner).get(preflight_url(campaign))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<form method="post">' in html and 'value="Run pre-flight"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "Audience:" not in html
    assert unchanged(meta_changed)


def test_the_preflight_runs_on_the_owners_post(client, owner, campaign, meta_changed):
    page = logged_in(client, owner).post(preflight_url(campaign))
    assert page.status_code == 200
    assert "Audience: 0" in page.content.decode()
    assert Number.objects.get(pk=meta_changed.pk).quality_rating == "RED"


def test_the_preflight_post_needs_the_csrf_token(owner, campaign, meta_changed):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(preflight_url(campaign)).status_code == 403
    assert unchanged(meta_changed)


@pytest.mark.parametrize("method", ["get", "post"])
def test_agents_get_403_from_the_preflight_and_meta_is_not_called(
    client, agent, campaign, meta_changed, method
):
    response = getattr(logged_in(client, agent), method)(preflight_url(campaign))
    assert response.status_code == 403
    assert unchanged(meta_changed)


def test_the_api_refuses_agents_the_preflight_the_same_way(api, agent, campaign, meta_changed):
    assert api(agent).post(f"/api/campaigns/{campaign.pk}/preflight/").status_code == 403
    assert unchanged(meta_changed)


# -- test connection -----------------------------------------------------------------------


def run_test_connection(client, number):
    return client.post(
        reverse("admin:numbers_number_changelist"),
        {"action": "test_connection", "_selected_action": [number.pk]},
        follow=True,
    )


def test_agents_cannot_run_test_connection(client, agent, meta_changed):
    # Number configuration is not an agent's: the list itself is refused.
    response = run_test_connection(logged_in(client, agent), meta_changed)
    assert response.status_code == 403
    assert "Test connection" not in response.content.decode()
    assert unchanged(meta_changed)


def test_a_manager_elsewhere_cannot_test_a_number_they_only_read(
    client, outsider, workspace, meta_changed
):
    # The outsider owns their own workspace, and is only an agent in this one.
    Membership.objects.create(workspace=workspace, user=outsider, role=Role.AGENT)
    response = run_test_connection(logged_in(client, outsider), meta_changed)
    assert "Main (+1 555-000-0001): only a workspace owner or admin may test it" in (
        response.content.decode()
    )
    assert unchanged(meta_changed)


def test_owners_run_test_connection(client, owner, meta_changed):
    run_test_connection(logged_in(client, owner), meta_changed)
    assert Number.objects.get(pk=meta_changed.pk).quality_rating == "RED"


# -- sync templates now --------------------------------------------------------------------


@pytest.fixture
def paused_at_meta(sim, workspace, number):
    """Templates synced, then one paused at Meta: only a sync brings that in."""
    templates_sync(workspace=workspace)
    sim.upsert_templates({"name": "hello_world", "language": "en_US", "status": "PAUSED"})
    return Template.objects.get(workspace=workspace, name="hello_world")


SYNC = "admin:templates_sync_template_sync"


@pytest.mark.parametrize(("method", "status"), [("get", 405), ("post", 403)])
def test_agents_cannot_sync_templates(client, agent, paused_at_meta, method, status):
    response = getattr(logged_in(client, agent), method)(reverse(SYNC))
    assert response.status_code == status
    assert Template.objects.get(pk=paused_at_meta.pk).status == "APPROVED"


def test_the_sync_button_is_post_only_and_runs_for_owners(client, owner, paused_at_meta):
    logged_in(client, owner)
    assert client.get(reverse(SYNC)).status_code == 405
    assert Template.objects.get(pk=paused_at_meta.pk).status == "APPROVED"
    assert client.post(reverse(SYNC)).status_code == 302
    assert Template.objects.get(pk=paused_at_meta.pk).status == "PAUSED"
