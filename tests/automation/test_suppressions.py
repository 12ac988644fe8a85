"""Suppression sources and opt-ins: the old "webhook" source migrated, lifts recorded from
every path (keyword, Meta's resume, the API, the admin)."""

from __future__ import annotations

import importlib

from django.apps import apps
from django.urls import reverse

from campaigns.models import Suppression, SuppressionLift, SuppressionSource
from campaigns.services import suppression_ensure, suppression_lift

migration = importlib.import_module("campaigns.migrations.0003_suppression_sources")


def test_the_old_webhook_source_becomes_131050_or_user_preferences(workspace):
    meta = Suppression.objects.create(
        workspace=workspace,
        phone="+919800000001",
        reason="Meta error 131050: stopped",
        source="webhook",
    )
    preference = Suppression.objects.create(
        workspace=workspace,
        phone="+919800000002",
        reason="User requested to stop marketing messages",
        source="webhook",
    )
    manual = Suppression.objects.create(workspace=workspace, phone="+919800000003", source="manual")
    migration.split_webhook_source(apps, None)
    sources = dict(Suppression.objects.values_list("pk", "source"))
    assert sources == {meta.pk: "131050", preference.pk: "user_preferences", manual.pk: "manual"}


def test_the_sources_are_api_mds():
    assert SuppressionSource.values == [
        "keyword",
        "button",
        "user_preferences",
        "131050",
        "manual",
        "import",
    ]


def test_a_lift_removes_the_suppression_and_records_what_it_was(workspace, other_workspace):
    suppression_ensure(
        workspace_id=workspace.pk, phone="+919800000001", reason="said STOP", source="keyword"
    )
    suppression_ensure(
        workspace_id=other_workspace.pk, phone="+919800000001", reason="x", source="manual"
    )
    lift = suppression_lift(
        workspace_id=workspace.pk, phone="98000 00001", source="keyword", reason="START"
    )
    assert (
        lift.phone,
        lift.source,
        lift.reason,
        lift.suppressed_source,
        lift.suppressed_reason,
    ) == (
        "+919800000001",
        "keyword",
        "START",
        "keyword",
        "said STOP",
    )
    # The other workspace's list is its own.
    assert list(Suppression.objects.values_list("workspace_id", flat=True)) == [other_workspace.pk]
    assert (
        suppression_lift(workspace_id=workspace.pk, phone="+919800000001", source="keyword") is None
    )
    assert suppression_lift(workspace_id=workspace.pk, phone="12", source="keyword") is None
    assert SuppressionLift.objects.count() == 1


def test_deleting_through_the_api_is_a_recorded_manual_opt_in(api, owner, workspace):
    created = (
        api(owner)
        .post(
            "/api/suppressions/",
            {"phone": "+919800000001", "reason": "asked by phone"},
            format="json",
        )
        .json()
    )
    assert created["source"] == "manual"
    assert api(owner).delete(f"/api/suppressions/{created['id']}/").status_code == 204
    [lift] = SuppressionLift.objects.all()
    assert (lift.phone, lift.source, lift.suppressed_reason) == (
        "+919800000001",
        "manual",
        "asked by phone",
    )


def test_deleting_in_the_admin_is_recorded_too(client, owner, workspace):
    suppression = Suppression.objects.create(
        workspace=workspace, phone="+919800000001", source="keyword"
    )
    client.force_login(owner)
    response = client.post(
        reverse("admin:campaigns_suppression_delete", args=[suppression.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert Suppression.objects.count() == 0
    [lift] = SuppressionLift.objects.all()
    assert (lift.source, lift.reason, lift.suppressed_source) == (
        "manual",
        "removed by olivia",
        "keyword",
    )
