"""Templates through the API and the admin: filters, the sync trigger, roles and isolation."""

import pytest
from django.urls import reverse

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from numbers.services import number_add
from templates_sync.models import Template, WabaSync
from templates_sync.services import templates_sync
from tests.conftest import OTHER_PHONE_NUMBER_ID, OTHER_WABA_ID, PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(workspace, number):
    templates_sync(workspace=workspace)
    return Template.objects.filter(workspace=workspace)


@pytest.fixture
def theirs(other_workspace, sim):
    """The outsider's own number and templates, on the same WABA."""
    number = number_add(
        workspace=other_workspace,
        label="Theirs",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    templates_sync(workspace=other_workspace)
    return number


def names(response) -> list[str]:
    return [f"{t['name']}/{t['language']}" for t in response.json()["results"]]


def test_the_list_has_the_contract_fields(api, owner, synced, number):
    response = api(owner).get("/api/templates/", {"name": "order_update"})
    assert response.status_code == 200
    [order] = response.json()["results"]
    template = synced.get(name="order_update")
    assert order == {
        "id": template.pk,
        "number": number.pk,
        "waba_id": DEMO_WABA_ID,
        "meta_id": "300000000000004",
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "status": "APPROVED",
        "is_sendable": True,
        "parameter_format": "POSITIONAL",
        "parameters": ["header.1", "body.1", "body.2", "button.0"],
        "header_format": "IMAGE",
        "components": template.components,
        "synced_at": order["synced_at"],
        "last_seen_at": order["last_seen_at"],
        "removed_at": None,
        "status_changed_at": order["status_changed_at"],
    }
    assert order["synced_at"] is not None


@pytest.mark.sim_seed("two_wabas")
def test_filters_by_status_category_name_and_number(api, owner, synced, workspace, sim):
    client = api(owner)
    assert names(client.get("/api/templates/", {"status": "approved", "category": "UTILITY"})) == [
        "event_reminder/en_US",
        "hello_world/en_US",
        "order_update/en_US",
    ]
    assert names(client.get("/api/templates/", {"name": "seasonal_promo"})) == [
        "seasonal_promo/en_US",
        "seasonal_promo/es",
    ]
    other = number_add(
        workspace=workspace,
        label="Other",
        phone_number_id=OTHER_PHONE_NUMBER_ID,
        waba_id=OTHER_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    sim.upsert_templates(
        {"name": "other_promo", "language": "en", "components": []}, waba_id=OTHER_WABA_ID
    )
    templates_sync(workspace=workspace, number=other)
    assert names(client.get("/api/templates/", {"number": other.pk})) == ["other_promo/en"]
    assert len(names(client.get("/api/templates/", {"number": synced[0].number_id}))) == 10
    bad = client.get("/api/templates/", {"number": "x"})
    assert (bad.status_code, bad.json()) == (400, {"number": ["must be a number's id"]})


def test_removed_templates_are_listed_only_on_request(api, owner, synced):
    synced.filter(name="hello_world").update(removed_at="2025-01-01T00:00:00Z")
    client = api(owner)
    assert "hello_world/en_US" not in names(client.get("/api/templates/"))
    listed = client.get("/api/templates/", {"include_removed": "1", "name": "hello_world"})
    assert [(t["name"], t["is_sendable"]) for t in listed.json()["results"]] == [
        ("hello_world", False)
    ]


def test_templates_are_read_only(api, owner, synced):
    template = synced.first()
    client = api(owner)
    assert client.post("/api/templates/", {"name": "x"}).status_code == 405
    assert client.patch(f"/api/templates/{template.pk}/", {"status": "x"}).status_code == 405
    assert client.delete(f"/api/templates/{template.pk}/").status_code == 405
    assert Template.objects.filter(pk=template.pk).exists()


def test_post_sync_syncs_everything_or_one_number(api, owner, number, sim):
    client = api(owner)
    response = client.post("/api/templates/sync/", {}, format="json")
    assert (response.status_code, response.json()) == (
        200,
        {"created": 10, "updated": 0, "removed": 0, "errors": []},
    )
    sim.upsert_templates({"name": "hello_world", "language": "en_US", "status": "PAUSED"})
    one = client.post("/api/templates/sync/", {"number": number.pk}, format="json")
    assert one.json() == {"created": 0, "updated": 1, "removed": 0, "errors": []}
    state = client.get("/api/templates/sync/").json()
    assert [(s["waba_id"], s["state"], s["number"], s["updated"]) for s in state] == [
        (DEMO_WABA_ID, "ok", number.pk, 1)
    ]


def test_post_sync_reports_metas_refusal_in_errors(api, owner, number, sim):
    sim.token(DEMO_TOKEN, "expire")
    response = api(owner).post("/api/templates/sync/", format="json")
    assert response.status_code == 200
    assert response.json()["errors"] == [
        {
            "waba_id": DEMO_WABA_ID,
            "number": number.pk,
            "state": "auth_failed",
            "code": 190,
            "message": "Meta answered: Error validating access token: Session has expired. "
            "(code 190, subcode 463)",
        }
    ]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"number": "abc"}, {"number": ["Incorrect type. Expected pk value, received str."]}),
        ({"number": 999999}, {"number": ['Invalid pk "999999" - object does not exist.']}),
    ],
)
def test_post_sync_with_a_bad_number_is_a_400(api, owner, number, body, errors):
    response = api(owner).post("/api/templates/sync/", body, format="json")
    assert (response.status_code, response.json()) == (400, errors)
    assert Template.objects.count() == 0


def test_agents_read_templates_but_do_not_sync(api, agent, synced, number):
    client = api(agent)
    assert len(names(client.get("/api/templates/"))) == 10
    assert client.post("/api/templates/sync/", {}, format="json").status_code == 403
    assert client.post(
        "/api/templates/sync/", {"number": number.pk}, format="json"
    ).status_code == (403)


def test_another_workspaces_templates_are_404_and_never_listed(api, outsider, synced, theirs):
    client = api(outsider)
    mine = synced.get(name="order_update")
    assert client.get(f"/api/templates/{mine.pk}/").status_code == 404
    listed = client.get("/api/templates/").json()["results"]
    assert len(listed) == 10
    assert {t["id"] for t in listed}.isdisjoint(set(synced.values_list("pk", flat=True)))
    assert client.get("/api/templates/", {"number": mine.number_id}).json()["results"] == []


def test_another_workspaces_number_cannot_be_synced(api, outsider, number, theirs):
    response = api(outsider).post("/api/templates/sync/", {"number": number.pk}, format="json")
    assert (response.status_code, response.json()) == (
        400,
        {"number": [f'Invalid pk "{number.pk}" - object does not exist.']},
    )
    assert WabaSync.objects.filter(workspace=number.workspace).count() == 0
    assert [s["number"] for s in api(outsider).get("/api/templates/sync/").json()] == [theirs.pk]


# -- admin ----------------------------------------------------------------------------------


@pytest.fixture
def owner_client(client, owner):
    client.login(username=owner.username, password=PASSWORD)
    return client


def test_the_admin_shows_a_read_only_rendered_preview(owner_client, synced):
    order = synced.get(name="order_update")
    page = owner_client.get(reverse("admin:templates_sync_template_change", args=[order.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    # The WhatsApp-style bubble (templates_sync/_preview.html) with Meta's example values.
    assert "<span>Image</span>" in html
    assert '<p class="wac-preview-body">Hi Asha, your order A-123 is on its way.</p>' in html
    assert "&quot;sub_type&quot;: &quot;url&quot;" in html
    assert 'name="status"' not in html  # nothing editable


def test_the_admin_filters_by_status(owner_client, synced):
    page = owner_client.get(
        reverse("admin:templates_sync_template_changelist"), {"status": "PAUSED"}
    )
    assert list(page.context["cl"].result_list.values_list("name", flat=True)) == ["flash_sale"]


def test_the_admin_sync_button_syncs_the_users_workspaces(owner_client, number, theirs):
    page = owner_client.get(reverse("admin:templates_sync_template_changelist"))
    assert b"Sync templates now" in page.content
    response = owner_client.post(reverse("admin:templates_sync_template_sync"), follow=True)
    assert response.status_code == 200
    assert "Templates synced: 10 created, 0 updated, 0 removed." in response.content.decode()
    assert Template.objects.filter(workspace=number.workspace).count() == 10
    # The outsider's workspace was not touched by the owner's button.
    assert WabaSync.objects.get(workspace=theirs.workspace).created == 10


def test_the_admin_sync_action_resyncs_the_selected_templates_waba(owner_client, synced, sim):
    sim.upsert_templates({"name": "hello_world", "language": "en_US", "status": "PAUSED"})
    response = owner_client.post(
        reverse("admin:templates_sync_template_changelist"),
        {"action": "sync_templates", "_selected_action": [synced.get(name="order_update").pk]},
        follow=True,
    )
    assert "Templates synced: 0 created, 1 updated, 0 removed." in response.content.decode()
    assert synced.get(name="hello_world").status == "PAUSED"


def test_agents_do_not_see_template_configuration_nor_sync(client, agent, synced):
    # Agents read campaigns and answer conversations; templates are owners' and admins'.
    client.login(username=agent.username, password=PASSWORD)
    page = client.get(reverse("admin:templates_sync_template_changelist"))
    assert page.status_code == 403
    assert b"You cannot open this page" in page.content
    client.post(reverse("admin:templates_sync_template_sync"))
    assert WabaSync.objects.get().created == 10  # unchanged: the agent's POST did nothing


def test_outsiders_do_not_see_the_templates_in_the_admin(client, outsider, synced):
    client.login(username=outsider.username, password=PASSWORD)
    page = client.get(reverse("admin:templates_sync_template_changelist"))
    assert page.context["cl"].result_count == 0
    order = synced.get(name="order_update")
    change = client.get(reverse("admin:templates_sync_template_change", args=[order.pk]))
    assert change.status_code == 302
