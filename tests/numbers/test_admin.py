"""The numbers admin: add runs the connection test, the token never reaches the page."""

import pytest
from django.urls import reverse

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_WABA_ID
from numbers.models import Number, NumberStatus
from tests.conftest import OTHER_PHONE_NUMBER_ID, PASSWORD

pytestmark = pytest.mark.django_db

SECRET = "EAAG-admin-secret-token-0004"
NEW_SECRET = "EAAG-admin-secret-token-0005"


@pytest.fixture
def token(sim):
    sim.token(SECRET)
    sim.token(NEW_SECRET)
    return SECRET


@pytest.fixture
def owner_client(client, owner):
    client.login(username=owner.username, password=PASSWORD)
    return client


def add_form(workspace, **changes):
    return {
        "workspace": workspace.pk,
        "label": "Main",
        "phone_number_id": DEMO_PHONE_NUMBER_IDS[0],
        "waba_id": DEMO_WABA_ID,
        "access_token": SECRET,
        "max_mps_override": "",
        **changes,
    }


def test_the_add_form_saves_what_meta_reports(owner_client, workspace, token):
    response = owner_client.post(reverse("admin:numbers_number_add"), add_form(workspace))
    assert response.status_code == 302
    number = Number.objects.get()
    assert (number.verified_name, number.quality_rating, number.max_mps, number.access_token) == (
        "Demo Shop",
        "GREEN",
        1000,
        SECRET,
    )


@pytest.mark.sim_seed("two_wabas")
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"access_token": "wrong-token"},
            "Meta answered: Invalid OAuth access token - Cannot parse access token (code 190)",
        ),
        (
            {"phone_number_id": OTHER_PHONE_NUMBER_ID},
            "phone number 200000000000003 is not one of the numbers of WhatsApp Business "
            "Account 100000000000001",
        ),
    ],
    ids=["bad-token", "id-not-in-that-waba"],
)
def test_the_add_form_shows_metas_refusal_and_saves_nothing(
    owner_client, workspace, token, changes, message
):
    response = owner_client.post(
        reverse("admin:numbers_number_add"), add_form(workspace, **changes)
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    field = next(iter(changes))
    assert form.errors == {field: [message]}
    assert Number.objects.count() == 0
    assert b"wrong-token" not in response.content
    assert SECRET.encode() not in response.content


def test_the_token_is_never_in_the_admin_pages(owner_client, number):
    pages = [
        owner_client.get(reverse("admin:numbers_number_changelist")),
        owner_client.get(reverse("admin:numbers_number_change", args=[number.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assert SECRET.encode() not in page.content
    # An empty password box: nothing to read back, not even in the HTML source.
    assert b'<input type="password" name="access_token"' in pages[1].content


def test_the_changelist_shows_quality_as_a_colour_badge(owner_client, number):
    # Text plus colour: the word says it without the colour (admin.css's .wac-ok is green).
    page = owner_client.get(reverse("admin:numbers_number_changelist")).content.decode()
    assert '<span class="wac-badge wac-ok">high (green)</span>' in page
    assert "TIER_100K" in page


def change_form(**changes):
    return {"label": "Main", "access_token": "", "max_mps_override": "", **changes}


def test_a_blank_token_on_change_keeps_the_old_one(owner_client, number):
    response = owner_client.post(
        reverse("admin:numbers_number_change", args=[number.pk]), change_form(label="Renamed")
    )
    assert response.status_code == 302
    fresh = Number.objects.get(pk=number.pk)
    assert (fresh.label, fresh.access_token) == ("Renamed", SECRET)


def test_a_new_token_on_change_is_tested_first(owner_client, number):
    url = reverse("admin:numbers_number_change", args=[number.pk])
    refused = owner_client.post(url, change_form(access_token="wrong-token"))
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "access_token": [
            "Meta answered: Invalid OAuth access token - Cannot parse access token (code 190)"
        ]
    }
    assert Number.objects.get(pk=number.pk).access_token == SECRET

    assert owner_client.post(url, change_form(access_token=NEW_SECRET)).status_code == 302
    assert Number.objects.get(pk=number.pk).access_token == NEW_SECRET


def test_the_test_connection_action_refreshes_the_selected_numbers(owner_client, number, sim):
    sim.token(SECRET, "expire")
    response = owner_client.post(
        reverse("admin:numbers_number_changelist"),
        {"action": "test_connection", "_selected_action": [number.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert Number.objects.get(pk=number.pk).status == NumberStatus.TOKEN_EXPIRED
    assert (
        "Main (+1 555-000-0001): Token expired: Meta answered: Error validating access token"
        in (response.content.decode())
    )


def test_outsiders_do_not_see_the_number_in_the_admin(client, outsider, number):
    client.login(username=outsider.username, password=PASSWORD)
    listing = client.get(reverse("admin:numbers_number_changelist"))
    assert b"Demo Shop" not in listing.content
    change = client.get(reverse("admin:numbers_number_change", args=[number.pk]))
    assert change.status_code == 302


def test_the_admin_refuses_to_delete_a_number_of_a_running_campaign(owner_client, number):
    from campaigns.models import Campaign

    campaign = Campaign.objects.create(workspace=number.workspace, name="Diwali", status="running")
    campaign.numbers.add(number)
    url = reverse("admin:numbers_number_delete", args=[number.pk])
    change = reverse("admin:numbers_number_change", args=[number.pk])
    for response in (owner_client.get(url), owner_client.post(url, {"post": "yes"})):
        assert (response.status_code, response.url) == (302, change)
    assert Number.objects.filter(pk=number.pk).exists()
    page = owner_client.get(url, follow=True).content.decode()
    assert (
        "Main (+1 555-000-0001) cannot be deleted: campaigns &#x27;Diwali&#x27; are scheduled, "
        "running or paused on this number; finish or cancel them first" in page
    )


def test_the_admin_deletes_an_unused_number(owner_client, number):
    url = reverse("admin:numbers_number_delete", args=[number.pk])
    assert owner_client.post(url, {"post": "yes"}).status_code == 302
    assert Number.objects.count() == 0
