"""Campaign state machine: every allowed and refused change, readiness checks, cancel, audit trail."""

import datetime as dt

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from campaigns import services
from campaigns.locks import _NAMESPACE
from campaigns.models import (
    ALLOWED_TRANSITIONS,
    Campaign,
    CampaignEvent,
    CampaignStatus,
    Recipient,
)
from campaigns.selectors import campaign_counts
from campaigns.services import CampaignStateError
from tests.campaigns.conftest import run_import

pytestmark = pytest.mark.django_db

S = CampaignStatus
# service -> (states it acts from, state it leads to)
SERVICES = {
    "schedule": ({S.DRAFT}, S.SCHEDULED),
    "unschedule": ({S.SCHEDULED}, S.DRAFT),
    "start": ({S.DRAFT, S.SCHEDULED}, S.RUNNING),
    "pause": ({S.RUNNING}, S.PAUSED),
    "resume": ({S.PAUSED}, S.RUNNING),
    "cancel": ({S.DRAFT, S.SCHEDULED, S.RUNNING, S.PAUSED}, S.CANCELLED),
    "complete": ({S.RUNNING}, S.COMPLETED),
    "fail": ({S.SCHEDULED, S.RUNNING, S.PAUSED}, S.FAILED),
}
VERBS = {name: name for name in SERVICES}


def call(name, campaign, user):
    function = getattr(services, f"campaign_{name}")
    if name == "schedule":
        return function(
            campaign=campaign, user=user, scheduled_at=timezone.now() + dt.timedelta(hours=1)
        )
    return function(campaign=campaign, user=user, reason=f"because {name}")


def test_the_services_cover_exactly_the_allowed_graph():
    edges = {(source, target) for sources, target in SERVICES.values() for source in sources}
    allowed = {
        (source, target) for source, targets in ALLOWED_TRANSITIONS.items() for target in targets
    }
    assert edges == allowed


@pytest.fixture
def ready(campaign):
    run_import(campaign, "phone,1,2\n9812345678,Asha,A1\n9812345679,Ravi,R2\n")
    return campaign


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("name", list(SERVICES))
def test_each_transition_is_allowed_or_refused_changing_nothing(ready, owner, status, name):
    Campaign.objects.filter(pk=ready.pk).update(status=status)
    ready.refresh_from_db()
    sources, target = SERVICES[name]
    before = list(Recipient.objects.order_by("pk").values_list("status", flat=True))
    if status in sources:
        call(name, ready, owner)
        assert ready.status == target
        event = CampaignEvent.objects.get()
        assert (event.user, event.from_status, event.to_status) == (owner, status, target)
        if name != "schedule":
            assert event.reason == f"because {name}"
    else:
        with pytest.raises(CampaignStateError) as refused:
            call(name, ready, owner)
        assert refused.value.reason == f"cannot {VERBS[name]} a {status} campaign"
        ready.refresh_from_db()
        assert ready.status == status
        assert CampaignEvent.objects.count() == 0
        assert list(Recipient.objects.order_by("pk").values_list("status", flat=True)) == before


def test_start_sets_started_at_and_pause_resume_keep_it(ready, owner):
    services.campaign_start(campaign=ready, user=owner)
    started = ready.started_at
    assert started is not None
    services.campaign_pause(campaign=ready, user=owner, reason="quality dropped")
    assert (ready.status, ready.pause_reason) == ("paused", "quality dropped")
    assert ready.paused_at is not None
    services.campaign_resume(campaign=ready, user=owner)
    assert (ready.status, ready.pause_reason, ready.started_at) == ("running", "", started)
    assert list(ready.events.values_list("from_status", "to_status")) == [
        ("draft", "running"),
        ("running", "paused"),
        ("paused", "running"),
    ]


def test_start_needs_contacts(campaign, owner):
    with pytest.raises(CampaignStateError) as refused:
        services.campaign_start(campaign=campaign, user=owner)
    assert refused.value.reason == (
        "the campaign cannot send: it has no contacts waiting to be sent: import a CSV first"
    )
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert CampaignEvent.objects.count() == 0


def test_start_needs_a_usable_number_and_sendable_templates(ready, owner, number, template):
    number.status = "token_expired"
    number.save()
    template.status = "PAUSED"
    template.save()
    with pytest.raises(CampaignStateError) as refused:
        services.campaign_start(campaign=ready, user=owner)
    assert refused.value.reason == (
        "the campaign cannot send: no number can send (main (+91 98765 00001) is "
        "token_expired); template 'order_update' (en_US) is PAUSED"
    )
    ready.refresh_from_db()
    assert (ready.status, ready.started_at) == ("draft", None)
    assert CampaignEvent.objects.count() == 0


def test_resume_checks_numbers_again(ready, owner, number):
    services.campaign_start(campaign=ready, user=owner)
    services.campaign_pause(campaign=ready, user=owner)
    number.status = "blocked"
    number.save()
    with pytest.raises(CampaignStateError, match="no number can send"):
        services.campaign_resume(campaign=ready, user=owner)
    ready.refresh_from_db()
    assert ready.status == "paused"


def test_cancel_marks_every_unsent_contact_cancelled(ready, owner):
    run_import(ready, "phone,1,2\n9812345680,C,3\n9812345681,D,4\n9812345682,E,5\n")
    statuses = ["pending", "retry_wait", "sending", "sent", "failed"]
    for recipient, status in zip(Recipient.objects.order_by("pk"), statuses, strict=True):
        recipient.status = status
        recipient.save()
    Campaign.objects.filter(pk=ready.pk).update(status="running")
    services.campaign_cancel(campaign=ready, user=owner, reason="wrong list")
    assert list(
        Recipient.objects.order_by("pk").values_list("status", "error_title", "error_details")
    ) == [
        ("cancelled", "Campaign cancelled", "wrong list"),
        ("cancelled", "Campaign cancelled", "wrong list"),
        ("sending", "", ""),
        ("sent", "", ""),
        ("failed", "", ""),
    ]
    ready.refresh_from_db()
    assert ready.status == "cancelled"
    assert campaign_counts([ready.pk])[ready.pk]["cancelled"] == 2
    assert ready.completed_at is not None


def test_scheduling_needs_a_future_time(campaign, owner):
    with pytest.raises(services.CampaignInvalid, match="the scheduled time has passed"):
        services.campaign_schedule(
            campaign=campaign, user=owner, scheduled_at=timezone.now() - dt.timedelta(minutes=1)
        )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("draft", None)


def test_state_changes_wait_for_a_running_import(ready, owner, settings):
    """An import holds the campaign's advisory lock from another connection."""
    db = settings.DATABASES["default"]
    other = psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        dbname=connection.settings_dict["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [_NAMESPACE, ready.pk])
        with pytest.raises(CampaignStateError) as refused:
            services.campaign_start(campaign=ready, user=owner)
        assert refused.value.reason == (
            "cannot start the campaign while contacts are being imported into it; "
            "try again when the import has finished"
        )
        ready.refresh_from_db()
        assert ready.status == "draft"
    finally:
        other.close()
