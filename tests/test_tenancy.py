"""Workspace isolation: another workspace's object is a 404 everywhere, and never listed."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.testapp.models import Gadget

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.testapp.urls")]


@pytest.fixture
def gadget(workspace):
    return Gadget.objects.create(workspace=workspace, name="acme widget", api_key="k-1")


def test_members_list_only_their_workspace_objects(api, owner, outsider, gadget, other_workspace):
    Gadget.objects.create(workspace=other_workspace, name="globex widget")
    assert [g["name"] for g in api(owner).get("/api/test/gadgets/").json()["results"]] == [
        "acme widget"
    ]
    assert [g["name"] for g in api(outsider).get("/api/test/gadgets/").json()["results"]] == [
        "globex widget"
    ]


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_another_workspaces_object_is_404_for_every_method(api, outsider, gadget, method):
    response = getattr(api(outsider), method)(
        f"/api/test/gadgets/{gadget.pk}/", {"name": "stolen"}, format="json"
    )
    assert response.status_code == 404
    gadget.refresh_from_db()
    assert gadget.name == "acme widget"
    assert Gadget.objects.count() == 1


def test_another_workspace_is_404_on_the_workspace_endpoint(api, outsider, workspace):
    assert api(outsider).get(f"/api/workspaces/{workspace.pk}/").status_code == 404
    assert [w["slug"] for w in api(outsider).get("/api/workspaces/").json()["results"]] == [
        "globex"
    ]


def test_create_puts_the_object_in_the_callers_workspace(api, owner, workspace):
    response = api(owner).post("/api/test/gadgets/", {"name": "new", "api_key": "s"}, format="json")
    assert response.status_code == 201
    assert Gadget.objects.get(pk=response.json()["id"]).workspace == workspace


def test_a_member_of_several_workspaces_must_name_one(api, owner, workspace, other_workspace):
    from accounts.models import Membership, Role

    Membership.objects.create(workspace=other_workspace, user=owner, role=Role.OWNER)
    ambiguous = api(owner).post("/api/test/gadgets/", {"name": "x"}, format="json")
    assert ambiguous.status_code == 400
    assert "X-Workspace" in ambiguous.json()["workspace"][0]
    assert Gadget.objects.count() == 0

    named = api(owner).post(
        "/api/test/gadgets/", {"name": "x"}, format="json", HTTP_X_WORKSPACE="globex"
    )
    assert named.status_code == 201
    assert Gadget.objects.get().workspace == other_workspace


def test_a_client_cannot_write_into_a_workspace_it_is_not_in(api, owner, other_workspace):
    response = api(owner).post(
        "/api/test/gadgets/", {"name": "x"}, format="json", HTTP_X_WORKSPACE=str(other_workspace.pk)
    )
    assert response.status_code == 400
    assert Gadget.objects.count() == 0


def test_agents_read_but_do_not_change(api, agent, gadget):
    assert api(agent).get(f"/api/test/gadgets/{gadget.pk}/").status_code == 200
    assert api(agent).patch(f"/api/test/gadgets/{gadget.pk}/", {"name": "x"}).status_code == 403
    assert api(agent).post("/api/test/gadgets/", {"name": "x"}).status_code == 403
    gadget.refresh_from_db()
    assert gadget.name == "acme widget"
    assert Gadget.objects.count() == 1


def test_admin_lists_only_the_members_workspace(client, owner, outsider, gadget, other_workspace):
    Gadget.objects.create(workspace=other_workspace, name="globex widget")
    client.login(username="oscar", password=PASSWORD)
    listing = client.get(reverse("admin:testapp_gadget_changelist"))
    assert listing.status_code == 200
    assert b"globex widget" in listing.content
    assert b"acme widget" not in listing.content
    assert client.get(reverse("admin:testapp_gadget_change", args=[gadget.pk])).status_code == 302
    assert Gadget.objects.get(pk=gadget.pk).name == "acme widget"


def test_superusers_see_every_workspace_in_the_admin(
    client, django_user_model, gadget, other_workspace
):
    Gadget.objects.create(workspace=other_workspace, name="globex widget")
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.login(username="root", password=PASSWORD)
    listing = client.get(reverse("admin:testapp_gadget_changelist"))
    assert b"globex widget" in listing.content
    assert b"acme widget" in listing.content


def test_a_workspace_named_by_a_non_ascii_digit_is_a_400_and_writes_nothing(api, owner):
    from tests.testapp.models import Gadget

    response = api(owner).post(
        "/api/test/gadgets/", {"name": "x"}, format="json", HTTP_X_WORKSPACE="\u00b2"
    )
    assert response.status_code == 400
    assert response.json() == {"workspace": ["you are not a member of workspace '²'"]}
    assert not Gadget.objects.exists()
