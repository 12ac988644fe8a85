"""Numbers: adding with a test connection, refreshing, token expiry, the API and isolation."""

import pytest
from django.utils import timezone

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from numbers.models import Number, NumberStatus, derive_max_mps
from numbers.services import (
    NumberConnectionError,
    NumberExistsError,
    number_add,
    number_delete,
    number_test_connection,
    numbers_refresh_all,
)
from tests.conftest import OTHER_PHONE_NUMBER_ID, OTHER_WABA_ID

pytestmark = pytest.mark.django_db

SECRET = "EAAG-acme-secret-token-0001"
BAD_TOKEN_MESSAGE = (
    "Meta answered: Invalid OAuth access token - Cannot parse access token (code 190)"
)


def unknown_object(object_id: str) -> str:
    return (
        f"Meta answered: Unsupported post request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation. "
        "(code 100, subcode 33)"
    )


def reported(number: Number) -> dict:
    return {
        "display_phone_number": number.display_phone_number,
        "verified_name": number.verified_name,
        "quality_rating": number.quality_rating,
        "messaging_limit_tier": number.messaging_limit_tier,
        "throughput_level": number.throughput_level,
        "name_status": number.name_status,
        "platform_type": number.platform_type,
        "meta_status": number.meta_status,
        "max_mps": number.max_mps,
        "status": number.status,
        "last_error": number.last_error,
    }


DEMO_1 = {
    "display_phone_number": "+1 555-000-0001",
    "verified_name": "Demo Shop",
    "quality_rating": "GREEN",
    "messaging_limit_tier": "TIER_100K",
    "throughput_level": "HIGH",
    "name_status": "APPROVED",
    "platform_type": "CLOUD_API",
    "meta_status": "CONNECTED",
    "max_mps": 1000,
    "status": NumberStatus.ACTIVE,
    "last_error": "",
}


@pytest.fixture
def token(sim):
    """A token of the simulator's demo business that tests can look for in responses."""
    sim.token(SECRET)
    return SECRET


# -- adding ---------------------------------------------------------------------------------


def test_adding_a_number_stores_exactly_what_meta_reports(workspace, token):
    before = timezone.now()
    number = number_add(
        workspace=workspace,
        label="  Main  ",
        phone_number_id=f" {DEMO_PHONE_NUMBER_IDS[0]}\n",
        waba_id=f"{DEMO_WABA_ID} ",
        access_token=f"  {token}\t\n",
    )
    number = Number.objects.get(pk=number.pk)
    assert reported(number) == DEMO_1
    assert (number.label, number.phone_number_id, number.waba_id) == (
        "Main",
        DEMO_PHONE_NUMBER_IDS[0],
        DEMO_WABA_ID,
    )
    assert number.access_token == token  # trimmed: stray whitespace broke sends before
    assert number.workspace == workspace
    assert number.last_checked_at >= before
    assert number.is_usable


def test_a_standard_number_gets_80_messages_per_second_and_no_label_uses_the_verified_name(
    workspace, sim
):
    number = number_add(
        workspace=workspace,
        label="",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    assert (number.label, number.throughput_level, number.max_mps, number.quality_rating) == (
        "Demo Shop Support",
        "STANDARD",
        80,
        "YELLOW",
    )


@pytest.mark.parametrize(
    ("throughput_level", "is_on_biz_app", "expected"),
    [("STANDARD", False, 80), ("HIGH", False, 1000), ("", False, 80), ("HIGH", True, 20)],
)
def test_max_mps_follows_meta_throughput_and_coexistence(throughput_level, is_on_biz_app, expected):
    assert (
        derive_max_mps(throughput_level=throughput_level, is_on_biz_app=is_on_biz_app) == expected
    )


def test_the_override_wins_over_metas_throughput(workspace, token):
    number = number_add(
        workspace=workspace,
        label="x",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
        waba_id=DEMO_WABA_ID,
        access_token=token,
        max_mps_override=50,
    )
    assert number.max_mps == 50
    assert number_test_connection(number=number).max_mps == 50


@pytest.mark.sim_seed("two_wabas")
@pytest.mark.parametrize(
    ("phone_number_id", "waba_id", "access_token", "field", "message"),
    [
        (DEMO_PHONE_NUMBER_IDS[0], DEMO_WABA_ID, "not-a-token", "access_token", BAD_TOKEN_MESSAGE),
        (
            "299999999999999",
            DEMO_WABA_ID,
            DEMO_TOKEN,
            "phone_number_id",
            unknown_object("299999999999999"),
        ),
        (
            OTHER_PHONE_NUMBER_ID,
            DEMO_WABA_ID,
            DEMO_TOKEN,
            "phone_number_id",
            f"phone number {OTHER_PHONE_NUMBER_ID} is not one of the numbers of WhatsApp "
            f"Business Account {DEMO_WABA_ID}",
        ),
        (
            DEMO_PHONE_NUMBER_IDS[0],
            "100000000000099",
            DEMO_TOKEN,
            "waba_id",
            unknown_object("100000000000099"),
        ),
    ],
    ids=["bad-token", "wrong-id", "id-not-in-that-waba", "wrong-waba"],
)
def test_adding_is_refused_with_metas_answer_and_nothing_saved(
    workspace, sim, phone_number_id, waba_id, access_token, field, message
):
    with pytest.raises(NumberConnectionError) as refused:
        number_add(
            workspace=workspace,
            label="x",
            phone_number_id=phone_number_id,
            waba_id=waba_id,
            access_token=access_token,
        )
    assert (refused.value.field, refused.value.message) == (field, message)
    assert Number.objects.count() == 0


def test_the_same_number_twice_in_a_workspace_is_refused_before_asking_meta(number, workspace):
    with pytest.raises(NumberExistsError, match="already has phone number 200000000000001"):
        number_add(
            workspace=workspace,
            label="again",
            phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
            waba_id=DEMO_WABA_ID,
            access_token="would-be-refused-by-meta",
        )
    assert Number.objects.count() == 1


def test_another_workspace_may_add_the_same_number(number, other_workspace, token):
    other = number_add(
        workspace=other_workspace,
        label="theirs",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
        waba_id=DEMO_WABA_ID,
        access_token=token,
    )
    assert Number.objects.filter(phone_number_id=DEMO_PHONE_NUMBER_IDS[0]).count() == 2
    assert other.workspace == other_workspace


# -- connection test and refresh ------------------------------------------------------------


def test_the_connection_test_refreshes_quality_tier_and_throughput(number, sim):
    sim.update_number(
        DEMO_PHONE_NUMBER_IDS[0],
        quality_rating="RED",
        messaging_limit_tier="TIER_10K",
        throughput={"level": "STANDARD"},
    )
    number = number_test_connection(number=number)
    fresh = Number.objects.get(pk=number.pk)
    assert reported(fresh) == {
        **DEMO_1,
        "quality_rating": "RED",
        "messaging_limit_tier": "TIER_10K",
        "throughput_level": "STANDARD",
        "max_mps": 80,
    }


def test_an_expired_token_sets_status_token_expired_and_keeps_the_fields(number, sim, token):
    sim.token(token, "expire")
    number_test_connection(number=number)
    fresh = Number.objects.get(pk=number.pk)
    assert reported(fresh) == {
        **DEMO_1,
        "status": NumberStatus.TOKEN_EXPIRED,
        "last_error": "Meta answered: Error validating access token: Session has expired. "
        "(code 190, subcode 463)",
    }
    assert fresh.last_error_code == 190
    assert not fresh.is_usable

    sim.token(token, "restore")
    number_test_connection(number=fresh)
    assert reported(Number.objects.get(pk=number.pk)) == DEMO_1


@pytest.mark.sim_seed("two_wabas")
def test_a_banned_number_is_blocked_and_a_vanished_one_disconnected(number, sim, token):
    sim.update_number(DEMO_PHONE_NUMBER_IDS[0], status="BANNED")
    assert number_test_connection(number=number).status == NumberStatus.BLOCKED
    sim.token(token, "add", wabas=[OTHER_WABA_ID])  # the token loses access to the number
    refreshed = number_test_connection(number=number)
    assert refreshed.status == NumberStatus.DISCONNECTED
    assert refreshed.last_error == unknown_object(DEMO_PHONE_NUMBER_IDS[0])


def test_refresh_all_tests_every_number(number, sim, other_workspace):
    other = number_add(
        workspace=other_workspace,
        label="",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    sim.update_number(DEMO_PHONE_NUMBER_IDS[0], quality_rating="YELLOW")
    sim.update_number(DEMO_PHONE_NUMBER_IDS[1], quality_rating="RED")
    assert numbers_refresh_all() == 2
    assert Number.objects.get(pk=number.pk).quality_rating == "YELLOW"
    assert Number.objects.get(pk=other.pk).quality_rating == "RED"


# -- deleting -------------------------------------------------------------------------------


def test_deleting_an_unused_number_keeps_its_templates(number, workspace):
    from templates_sync.services import templates_sync

    templates_sync(workspace=workspace)
    number_delete(number=number)
    assert Number.objects.count() == 0
    from templates_sync.models import Template

    assert Template.objects.filter(workspace=workspace, number=None).count() == 10


def test_deleting_a_number_that_campaigns_use_is_refused_with_the_reason(number):
    from campaigns.models import Campaign
    from numbers.services import NumberInUseError

    campaign = Campaign.objects.create(workspace=number.workspace, name="Diwali", status="running")
    campaign.numbers.add(number)
    with pytest.raises(NumberInUseError) as refused:
        number_delete(number=number)
    assert refused.value.message == (
        "campaigns 'Diwali' are scheduled, running or paused on this number; "
        "finish or cancel them first"
    )
    assert Number.objects.filter(pk=number.pk).exists()
