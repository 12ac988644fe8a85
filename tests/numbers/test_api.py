"""The numbers API: contract fields, write-only token, refusals as 400s, roles and isolation."""

import pytest

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from numbers.models import Number, NumberStatus
from numbers.services import number_add

pytestmark = pytest.mark.django_db

SECRET = "EAAG-api-secret-token-0002"
NEW_SECRET = "EAAG-api-secret-token-0003"


@pytest.fixture
def token(sim):
    sim.token(SECRET)
    sim.token(NEW_SECRET)
    return SECRET


def assert_no_secret(response):
    assert b"access_token" not in response.content
    assert SECRET.encode() not in response.content
    assert NEW_SECRET.encode() not in response.content


def test_creating_a_number_tests_it_and_returns_metas_fields(api, owner, workspace, token):
    response = api(owner).post(
        "/api/numbers/",
        {
            "label": "Main",
            "phone_number_id": f" {DEMO_PHONE_NUMBER_IDS[0]} ",
            "waba_id": DEMO_WABA_ID,
            "access_token": f"  {token}\n",
        },
        format="json",
    )
    assert response.status_code == 201
    assert_no_secret(response)
    body = response.json()
    number = Number.objects.get()
    assert body == {
        "id": number.pk,
        "label": "Main",
        "phone_number_id": DEMO_PHONE_NUMBER_IDS[0],
        "waba_id": DEMO_WABA_ID,
        "display_phone_number": "+1 555-000-0001",
        "verified_name": "Demo Shop",
        "quality_rating": "GREEN",
        "messaging_limit_tier": "TIER_100K",
        "business_messaging_limit": "TIER_100K",
        "throughput_level": "HIGH",
        "name_status": "APPROVED",
        "is_on_biz_app": False,
        "max_mps": 1000,
        "max_mps_override": None,
        "status": "active",
        "is_usable": True,
        "block_code": None,
        "block_reason": "",
        "blocked_at": None,
        "last_checked_at": body["last_checked_at"],
        "last_error": "",
        "created_at": body["created_at"],
    }
    assert body["last_checked_at"] is not None
    assert (number.workspace, number.access_token) == (workspace, token)


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        (
            {"access_token": "wrong"},
            {
                "access_token": [
                    "Meta answered: Invalid OAuth access token - Cannot parse access token "
                    "(code 190)"
                ]
            },
        ),
        (
            {"phone_number_id": "299999999999999"},
            {
                "phone_number_id": [
                    "Meta answered: Unsupported post request. Object with ID '299999999999999' "
                    "does not exist, cannot be loaded due to missing permissions, or does not "
                    "support this operation. (code 100, subcode 33)"
                ]
            },
        ),
        (
            {"phone_number_id": "12ab"},
            {"phone_number_id": ["Enter the numeric id Meta shows (digits only)."]},
        ),
        ({"access_token": "   "}, {"access_token": ["This field may not be blank."]}),
    ],
    ids=["bad-token", "wrong-id", "not-digits", "blank-token"],
)
def test_a_refused_create_is_a_400_saying_what_meta_answered(api, owner, sim, payload, errors):
    body = {
        "label": "x",
        "phone_number_id": DEMO_PHONE_NUMBER_IDS[0],
        "waba_id": DEMO_WABA_ID,
        "access_token": DEMO_TOKEN,
        **payload,
    }
    response = api(owner).post("/api/numbers/", body, format="json")
    assert (response.status_code, response.json()) == (400, errors)
    assert Number.objects.count() == 0


def test_adding_a_number_twice_is_a_400(api, owner, number):
    response = api(owner).post(
        "/api/numbers/",
        {
            "phone_number_id": DEMO_PHONE_NUMBER_IDS[0],
            "waba_id": DEMO_WABA_ID,
            "access_token": DEMO_TOKEN,
        },
        format="json",
    )
    assert (response.status_code, response.json()) == (
        400,
        {"phone_number_id": ["this workspace already has phone number 200000000000001"]},
    )
    assert Number.objects.count() == 1


def test_list_and_detail_never_return_the_token(api, owner, number):
    listing = api(owner).get("/api/numbers/")
    detail = api(owner).get(f"/api/numbers/{number.pk}/")
    assert [n["id"] for n in listing.json()["results"]] == [number.pk]
    assert detail.json()["verified_name"] == "Demo Shop"
    assert_no_secret(listing)
    assert_no_secret(detail)


def test_patching_the_token_tests_it_first_and_keeps_the_old_one_when_refused(
    api, owner, number, sim
):
    refused = api(owner).patch(
        f"/api/numbers/{number.pk}/", {"access_token": "expired-or-wrong"}, format="json"
    )
    assert refused.status_code == 400
    assert list(refused.json()) == ["access_token"]
    assert Number.objects.get(pk=number.pk).access_token == SECRET

    sim.update_number(DEMO_PHONE_NUMBER_IDS[0], quality_rating="YELLOW")
    accepted = api(owner).patch(
        f"/api/numbers/{number.pk}/",
        {"access_token": f" {NEW_SECRET} ", "label": "Renamed"},
        format="json",
    )
    assert accepted.status_code == 200
    assert_no_secret(accepted)
    fresh = Number.objects.get(pk=number.pk)
    assert (fresh.access_token, fresh.label, fresh.quality_rating) == (
        NEW_SECRET,
        "Renamed",
        "YELLOW",
    )


def test_patching_label_and_override_needs_no_meta_call(api, owner, number, sim):
    sim.token(SECRET, "revoke")  # any call to Meta would now fail
    response = api(owner).patch(
        f"/api/numbers/{number.pk}/", {"label": "Sales", "max_mps_override": 40}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["label"], response.json()["max_mps"]) == ("Sales", 40)
    cleared = api(owner).patch(
        f"/api/numbers/{number.pk}/", {"max_mps_override": None}, format="json"
    )
    assert cleared.json()["max_mps"] == 1000
    assert Number.objects.get(pk=number.pk).status == NumberStatus.ACTIVE


def test_ids_cannot_be_changed_and_put_is_not_offered(api, owner, number):
    response = api(owner).patch(
        f"/api/numbers/{number.pk}/", {"phone_number_id": DEMO_PHONE_NUMBER_IDS[1]}, format="json"
    )
    assert (response.status_code, response.json()) == (
        400,
        {"phone_number_id": ["cannot be changed; add the other number instead"]},
    )
    assert api(owner).put(f"/api/numbers/{number.pk}/", {}, format="json").status_code == 405
    assert Number.objects.get(pk=number.pk).phone_number_id == DEMO_PHONE_NUMBER_IDS[0]


def test_test_connection_endpoint_refreshes_and_returns_the_fields(api, owner, number, sim):
    sim.update_number(
        DEMO_PHONE_NUMBER_IDS[0], quality_rating="RED", messaging_limit_tier="TIER_1K"
    )
    response = api(owner).post(f"/api/numbers/{number.pk}/test-connection/")
    assert response.status_code == 200
    assert_no_secret(response)
    assert (response.json()["quality_rating"], response.json()["messaging_limit_tier"]) == (
        "RED",
        "TIER_1K",
    )

    sim.token(SECRET, "expire")
    expired = api(owner).post(f"/api/numbers/{number.pk}/test-connection/").json()
    assert (expired["status"], expired["is_usable"], expired["last_error"]) == (
        "token_expired",
        False,
        "Meta answered: Error validating access token: Session has expired. "
        "(code 190, subcode 463)",
    )


def test_delete_removes_an_unused_number(api, owner, number):
    assert api(owner).delete(f"/api/numbers/{number.pk}/").status_code == 204
    assert Number.objects.count() == 0


def test_delete_of_a_number_in_a_running_campaign_is_a_409_with_the_reason(api, owner, number):
    from campaigns.models import Campaign

    campaign = Campaign.objects.create(workspace=number.workspace, name="Diwali", status="paused")
    campaign.numbers.add(number)
    response = api(owner).delete(f"/api/numbers/{number.pk}/")
    assert (response.status_code, response.json()) == (
        409,
        {
            "detail": "campaigns 'Diwali' are scheduled, running or paused on this number; "
            "finish or cancel them first"
        },
    )
    assert Number.objects.filter(pk=number.pk).exists()


def test_agents_read_numbers_but_do_not_change_them(api, agent, number):
    client = api(agent)
    assert client.get(f"/api/numbers/{number.pk}/").status_code == 200
    assert client.patch(f"/api/numbers/{number.pk}/", {"label": "x"}).status_code == 403
    assert client.delete(f"/api/numbers/{number.pk}/").status_code == 403
    assert client.post(f"/api/numbers/{number.pk}/test-connection/").status_code == 403
    created = client.post(
        "/api/numbers/",
        {"phone_number_id": DEMO_PHONE_NUMBER_IDS[1], "waba_id": DEMO_WABA_ID, "access_token": "t"},
    )
    assert created.status_code == 403
    assert list(Number.objects.values_list("label", flat=True)) == ["Main"]


def test_anonymous_calls_are_401(api, number):
    assert api().get("/api/numbers/").status_code == 401
    assert api().post(f"/api/numbers/{number.pk}/test-connection/").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/numbers/{pk}/"),
        ("patch", "/api/numbers/{pk}/"),
        ("delete", "/api/numbers/{pk}/"),
        ("post", "/api/numbers/{pk}/test-connection/"),
    ],
)
def test_another_workspaces_number_is_404_everywhere(api, outsider, number, method, path):
    response = getattr(api(outsider), method)(
        path.format(pk=number.pk), {"label": "stolen"}, format="json"
    )
    assert response.status_code == 404
    fresh = Number.objects.get(pk=number.pk)
    assert (fresh.label, fresh.last_checked_at) == ("Main", number.last_checked_at)


def test_lists_exclude_other_workspaces_numbers(api, outsider, number, other_workspace):
    theirs = number_add(
        workspace=other_workspace,
        label="Theirs",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    assert [n["id"] for n in api(outsider).get("/api/numbers/").json()["results"]] == [theirs.pk]


def test_a_non_numeric_id_is_a_404_not_a_500(api, owner, number):
    assert api(owner).get("/api/numbers/abc/").status_code == 404
