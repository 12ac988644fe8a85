"""The admin offers a member only their workspaces' objects: in every list, list filter,
form field and inline choice (superusers see everything)."""

import datetime as dt

import pytest
from django.contrib import admin
from django.core import checks
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role
from accounts.tenancy import WorkspaceScopedAdmin
from campaigns.models import Campaign, CampaignTemplate, Suppression
from tests.conftest import PASSWORD
from tests.factories import make_campaign, make_number, make_template
from webhooks.models import InboundMessage

pytestmark = pytest.mark.django_db

# What only workspace A ("acme") holds: none of it may reach workspace B's owner.
A_MARKERS = ["Acme Line", "+1 555-0100 001", "100000000000777", "acme_only_template", "Acme Sale"]


@pytest.fixture
def acme(workspace, owner):
    """Workspace A's objects: a number, a template, a campaign, an inbound message, a
    suppression; each named with one of A_MARKERS."""
    number = make_number(
        workspace=workspace,
        label="Acme Line",
        phone_number_id="200000000000777",
        waba_id="100000000000777",
        display_phone_number="+1 555-0100 001",
    )
    template = make_template(
        workspace=workspace, name="acme_only_template", waba_id="100000000000777"
    )
    campaign = make_campaign(
        workspace=workspace, numbers=[number], templates=[template], name="Acme Sale"
    )
    _inbound(workspace, number, "Acme Line")
    Suppression.objects.create(workspace=workspace, phone="+15550100001")
    return {"number": number, "template": template, "campaign": campaign}


@pytest.fixture
def globex(other_workspace, outsider):
    """Workspace B's objects, two of each kind so that every filter shows."""
    numbers = [
        make_number(
            workspace=other_workspace,
            label=f"Globex Line {i}",
            phone_number_id=f"20000000000088{i}",
            waba_id=f"10000000000088{i}",
            display_phone_number=f"+44 20 7946 000{i}",
        )
        for i in (1, 2)
    ]
    templates = [
        make_template(workspace=other_workspace, name=f"globex_{i}", waba_id=f"10000000000088{i}")
        for i in (1, 2)
    ]
    make_campaign(
        workspace=other_workspace, numbers=numbers[:1], templates=templates[:1], name="Globex 1"
    )
    for number in numbers:
        _inbound(other_workspace, number, number.label)
    return {"numbers": numbers, "templates": templates}


def _inbound(workspace, number, name):
    return InboundMessage.objects.create(
        workspace=workspace,
        number=number,
        message_id=f"wamid.{number.pk}",
        wa_id="919800000001",
        contact_name=f"{name} contact",
        type="text",
        text="hello",
        at=timezone.now() - dt.timedelta(minutes=1),
    )


@pytest.fixture
def b_owner(client, outsider):
    client.login(username=outsider.username, password=PASSWORD)
    return client


def scoped_admins():
    return sorted(
        (
            (model._meta.app_label, model._meta.model_name)
            for model, model_admin in admin.site._registry.items()
            if isinstance(model_admin, WorkspaceScopedAdmin)
        ),
    )


def assert_no_a_markers(html: str) -> None:
    leaked = [marker for marker in A_MARKERS if marker in html]
    assert leaked == []


def test_the_inbound_by_number_filter_lists_only_the_members_numbers(b_owner, acme, globex):
    page = b_owner.get(reverse("admin:webhooks_inboundmessage_changelist"))
    assert page.status_code == 200
    [number_filter] = [f for f in page.context["cl"].filter_specs if f.title == "number"]
    assert [label for _pk, label in number_filter.lookup_choices] == [
        str(number) for number in globex["numbers"]
    ]
    html = page.content.decode()
    assert "Globex Line 2" in html
    assert_no_a_markers(html)


@pytest.mark.parametrize(("app", "model"), scoped_admins())
def test_no_changelist_shows_another_workspaces_objects(b_owner, acme, globex, app, model):
    page = b_owner.get(reverse(f"admin:{app}_{model}_changelist"))
    assert page.status_code == 200
    assert_no_a_markers(page.content.decode())
    for spec in page.context["cl"].filter_specs:
        choices = [choice["display"] for choice in spec.choices(page.context["cl"])]
        assert_no_a_markers(" ".join(str(choice) for choice in choices))


def test_the_template_waba_filter_lists_only_the_members_wabas(b_owner, acme, globex):
    page = b_owner.get(reverse("admin:templates_sync_template_changelist"))
    [waba_filter] = [f for f in page.context["cl"].filter_specs if f.title == "WABA ID"]
    assert sorted(waba_filter.lookup_choices) == ["100000000000881", "100000000000882"]


def test_the_campaign_form_offers_only_the_members_numbers_and_templates(b_owner, acme, globex):
    page = b_owner.get(reverse("admin:campaigns_campaign_add"))
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert list(form.fields["numbers"].queryset) == globex["numbers"]
    assert list(form.fields["workspace"].queryset.values_list("slug", flat=True)) == ["globex"]
    [templates] = [
        f for f in page.context["inline_admin_formsets"] if f.formset.model is CampaignTemplate
    ]
    offered = templates.formset.empty_form.fields["template"].queryset
    assert sorted(offered.values_list("name", flat=True)) == ["globex_1", "globex_2"]
    assert_no_a_markers(page.content.decode())


def test_a_campaigns_change_form_offers_only_the_members_objects(b_owner, acme, globex):
    campaign = Campaign.objects.get(name="Globex 1")
    page = b_owner.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert page.status_code == 200
    assert list(page.context["adminform"].form.fields["numbers"].queryset) == globex["numbers"]
    assert_no_a_markers(page.content.decode())


@pytest.mark.parametrize("model", ["campaigns_suppression", "numbers_number"])
def test_add_forms_offer_only_the_workspaces_the_member_manages(b_owner, acme, globex, model):
    page = b_owner.get(reverse(f"admin:{model}_add"))
    assert page.status_code == 200
    workspaces = page.context["adminform"].form.fields["workspace"].queryset
    assert list(workspaces.values_list("slug", flat=True)) == ["globex"]
    assert "Acme" not in page.content.decode()


def test_a_posted_choice_of_another_workspace_is_refused(b_owner, acme, globex, workspace):
    response = b_owner.post(
        reverse("admin:campaigns_suppression_add"),
        {"workspace": workspace.pk, "phone": "+15550100002", "reason": "", "source": "manual"},
    )
    assert response.status_code == 200
    assert "workspace" in response.context["adminform"].form.errors
    assert not Suppression.objects.filter(phone="+15550100002").exists()


def test_superusers_are_offered_every_workspaces_objects(client, django_user_model, acme, globex):
    root = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(root)
    page = client.get(reverse("admin:webhooks_inboundmessage_changelist"))
    [number_filter] = [f for f in page.context["cl"].filter_specs if f.title == "number"]
    assert str(acme["number"]) in [label for _pk, label in number_filter.lookup_choices]
    form = client.get(reverse("admin:campaigns_campaign_add")).context["adminform"].form
    assert acme["number"] in form.fields["numbers"].queryset


def test_every_inline_of_a_scoped_admin_is_scoped():
    assert [e for e in admin.site.check(None) if e.id == "accounts.E001"] == []

    class PlainInline(admin.TabularInline):
        model = CampaignTemplate

    class Unscoped(WorkspaceScopedAdmin):
        inlines = [PlainInline]

    errors = Unscoped(Campaign, admin.AdminSite()).check()
    assert [(e.id, e.level) for e in errors] == [("accounts.E001", checks.ERROR)]
    assert "PlainInline would offer every workspace's objects as choices." in errors[0].msg


def test_a_workspace_filter_lists_only_the_members_workspaces(
    client, owner, workspace, other_workspace
):
    from accounts.models import Workspace
    from tests.testapp.models import Gadget

    third = Workspace.objects.create(name="Initech", slug="initech")
    Membership.objects.create(workspace=other_workspace, user=owner, role=Role.AGENT)
    for ws in (workspace, other_workspace, third):
        Gadget.objects.create(workspace=ws, name=f"{ws.slug} gadget")
    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("admin:testapp_gadget_changelist"))
    [workspace_filter] = page.context["cl"].filter_specs
    assert [label for _pk, label in workspace_filter.lookup_choices] == ["Acme", "Globex"]
    assert "Initech" not in page.content.decode()
