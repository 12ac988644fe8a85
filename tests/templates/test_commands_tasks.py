"""Operator commands (add_number, sync_templates) and the periodic tasks behind beat."""

import io

import pytest
from django.core.management import CommandError, call_command

from config.beat import PERIODIC_TASKS
from config.celery import app as celery_app
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from numbers.models import Number
from numbers.services import number_add
from numbers.tasks import refresh_all_numbers, refresh_number
from templates_sync.models import Template
from templates_sync.tasks import sync_all_templates, sync_workspace_templates
from tests.conftest import OTHER_PHONE_NUMBER_ID, OTHER_WABA_ID

pytestmark = pytest.mark.django_db


def test_add_number_command_adds_after_the_connection_test(workspace, sim):
    out = io.StringIO()
    call_command(
        "add_number",
        "--workspace=acme",
        f"--phone-number-id={DEMO_PHONE_NUMBER_IDS[1]}",
        f"--waba-id={DEMO_WABA_ID}",
        f"--token= {DEMO_TOKEN} ",
        stdout=out,
    )
    number = Number.objects.get()
    assert out.getvalue() == (
        f"added number {number.pk}: +1 555-000-0002 (Demo Shop Support), quality YELLOW, "
        "tier TIER_1K, 80 msg/s\n"
    )
    assert (number.workspace, number.label, number.access_token) == (
        workspace,
        "Demo Shop Support",
        DEMO_TOKEN,
    )


def test_add_number_command_refuses_with_metas_answer(workspace, sim):
    with pytest.raises(CommandError) as refused:
        call_command(
            "add_number",
            "--workspace=acme",
            f"--phone-number-id={DEMO_PHONE_NUMBER_IDS[0]}",
            f"--waba-id={DEMO_WABA_ID}",
            "--token=nope",
        )
    assert str(refused.value) == (
        "Meta answered: Invalid OAuth access token - Cannot parse access token (code 190)"
    )
    assert Number.objects.count() == 0


@pytest.mark.sim_seed("two_wabas")
def test_sync_templates_prints_a_line_per_waba(workspace, number, sim):
    other = number_add(
        workspace=workspace,
        label="Other",
        phone_number_id=OTHER_PHONE_NUMBER_ID,
        waba_id=OTHER_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    out = io.StringIO()
    call_command("sync_templates", stdout=out)
    assert out.getvalue() == (
        "workspace acme:\n"
        f"  WABA {DEMO_WABA_ID} via number {number.pk}: 10 templates, 10 created, 0 updated, "
        "0 removed\n"
        f"  WABA {OTHER_WABA_ID} via number {other.pk}: 0 templates, 0 created, 0 updated, "
        "0 removed\n"
    )

    out = io.StringIO()
    call_command("sync_templates", f"--number={number.pk}", stdout=out)
    assert out.getvalue() == (
        "workspace acme:\n"
        f"  WABA {DEMO_WABA_ID} via number {number.pk}: 10 templates, 0 created, 0 updated, "
        "0 removed\n"
    )


def test_sync_templates_fails_loudly_when_meta_refuses(workspace, number, sim):
    sim.token(DEMO_TOKEN, "expire")
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^1 WABA sync\(s\) failed; see above$"):
        call_command("sync_templates", "--workspace=acme", stdout=out)
    assert out.getvalue() == (
        "workspace acme:\n"
        f"  WABA {DEMO_WABA_ID} via number {number.pk}: auth_failed: Meta answered: Error "
        "validating access token: Session has expired. (code 190, subcode 463)\n"
    )
    assert Template.objects.count() == 0


def test_sync_templates_refuses_unknown_targets(workspace, number):
    with pytest.raises(CommandError, match="no workspace with slug 'nope'"):
        call_command("sync_templates", "--workspace=nope")
    with pytest.raises(CommandError, match="no number with id 999999"):
        call_command("sync_templates", "--number=999999")


def test_both_periodic_tasks_are_registered_for_beat():
    periodic = {p.task: (p.every_seconds, p.queue) for p in PERIODIC_TASKS}
    assert periodic["numbers.tasks.refresh_all_numbers"] == (3600, "periodic")
    assert periodic["templates_sync.tasks.sync_all_templates"] == (900, "periodic")


@pytest.fixture
def eager():
    """Run .delay() in-process, so a fan-out task's children run within the test."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_the_periodic_refresh_tests_every_number(eager, number, sim, other_workspace):
    sim.update_number(DEMO_PHONE_NUMBER_IDS[0], quality_rating="RED")
    theirs = number_add(
        workspace=other_workspace,
        label="Theirs",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    sim.token(DEMO_TOKEN, "expire")
    assert refresh_all_numbers.delay().get() == 2
    assert list(Number.objects.order_by("pk").values_list("status", flat=True)) == [
        "token_expired",
        "token_expired",
    ]
    sim.token(DEMO_TOKEN, "restore")
    refresh_number(theirs.pk)
    refresh_number(number.pk)
    assert list(Number.objects.order_by("pk").values_list("status", "quality_rating")) == [
        ("active", "RED"),
        ("active", "YELLOW"),
    ]
    refresh_number(999999)  # deleted since it was queued: nothing happens


def test_the_periodic_sync_syncs_every_workspace(eager, number, sim, other_workspace):
    number_add(
        workspace=other_workspace,
        label="Theirs",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    assert sync_all_templates.delay().get() == 2
    assert Template.objects.filter(workspace=number.workspace).count() == 10
    assert Template.objects.filter(workspace=other_workspace).count() == 10
    sync_workspace_templates(999999)  # a workspace deleted meanwhile: nothing happens
