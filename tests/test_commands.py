"""Operator commands of the foundation: create_workspace, periodic task registration."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from accounts.models import Membership, Role, Workspace
from config.beat import CODE_PREFIX, PERIODIC_TASKS, install_periodic_tasks

pytestmark = pytest.mark.django_db


def test_create_workspace_creates_the_owner_when_missing():
    out = io.StringIO()
    call_command(
        "create_workspace", "Acme Retail", "--owner", "asha", "--password", "pw-123-xyz", stdout=out
    )
    workspace = Workspace.objects.get()
    assert (workspace.name, workspace.slug) == ("Acme Retail", "acme-retail")
    user = get_user_model().objects.get(username="asha")
    assert user.check_password("pw-123-xyz")
    assert user.is_staff and not user.is_superuser
    assert Membership.objects.get().role == Role.OWNER
    assert "owned by new user 'asha'" in out.getvalue()


def test_create_workspace_refuses_a_new_user_without_password_and_changes_nothing():
    with pytest.raises(CommandError, match="give --password"):
        call_command("create_workspace", "Acme", "--owner", "nobody")
    assert Workspace.objects.count() == 0
    assert get_user_model().objects.count() == 0


def test_create_workspace_refuses_a_taken_name(django_user_model):
    django_user_model.objects.create_user("asha", password="x")
    call_command("create_workspace", "Acme", "--owner", "asha", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_workspace", "acme", "--owner", "asha")
    assert Workspace.objects.count() == 1


def test_periodic_tasks_in_code_are_installed_for_beat():
    install_periodic_tasks()
    installed = {
        t.name: (t.task, t.queue, t.enabled)
        for t in PeriodicTask.objects.filter(name__startswith=CODE_PREFIX)
    }
    assert installed == {CODE_PREFIX + p.name: (p.task, p.queue, True) for p in PERIODIC_TASKS}


def test_a_periodic_task_dropped_from_code_is_disabled_not_deleted():
    install_periodic_tasks()
    stale = PeriodicTask.objects.create(
        name=CODE_PREFIX + "gone", task="x.y", interval=PeriodicTask.objects.first().interval
    )
    install_periodic_tasks()
    stale.refresh_from_db()
    assert stale.enabled is False
