"""Tokens and ids that cannot be sent to Meta are refused before any call, naming the field,
in the API, the admin and add_number, and no refusal carries the token anywhere."""

import io
import logging

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from messaging.graph import GraphClient
from numbers.models import Number, NumberStatus
from numbers.services import NumberInvalidError, number_update
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The personas' passwords are hashed with a fast hasher: these tests are not about auth."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


FIRST_HALF = "EAAGfirsthalf0123456789"
SECOND_HALF = "secondhalf9876543210"
# A token pasted with a line break inside, as from a wrapped e-mail or terminal.
BROKEN = f"{FIRST_HALF}\n{SECOND_HALF}"


def token_message(found: str) -> str:
    return (
        f"An access token is one line of printable ASCII characters; this one contains "
        f"{found}. Copy it again from Meta as a single line."
    )


LINE_BREAK = token_message("a line break")
DIGITS_ONLY = "Enter the numeric id Meta shows (digits only)."


@pytest.fixture
def no_graph_calls(monkeypatch):
    """Fails the test if anything reaches the Graph API."""

    def refuse(self, method, url, **kwargs):
        raise AssertionError(f"unexpected Graph call: {method} {url}")

    monkeypatch.setattr(GraphClient, "_call", refuse)


def assert_token_absent(caplog, *texts: bytes | str):
    """Neither half of BROKEN is in any log record (message, arguments, traceback) or text."""
    formatter = logging.Formatter()
    logged = [caplog.text]
    for record in caplog.records:
        logged.append(record.getMessage())
        if record.exc_info:
            logged.append(formatter.formatException(record.exc_info))
    everything = "\n".join(logged)
    for half in (FIRST_HALF, SECOND_HALF):
        assert half not in everything
        for text in texts:
            assert (half.encode() if isinstance(text, bytes) else half) not in text


def create_payload(**changes):
    return {
        "label": "Main",
        "phone_number_id": DEMO_PHONE_NUMBER_IDS[0],
        "waba_id": DEMO_WABA_ID,
        "access_token": DEMO_TOKEN,
        **changes,
    }


def test_a_token_with_a_line_break_is_a_400_on_create_and_never_logged(
    api, owner, caplog, no_graph_calls
):
    caplog.set_level(logging.DEBUG)
    response = api(owner).post("/api/numbers/", create_payload(access_token=BROKEN), format="json")
    assert (response.status_code, response.json()) == (400, {"access_token": [LINE_BREAK]})
    assert Number.objects.count() == 0
    assert_token_absent(caplog, response.content)


def test_a_token_with_a_line_break_is_a_400_on_patch_and_the_stored_one_stays(
    api, owner, number, no_graph_calls, caplog
):
    caplog.set_level(logging.DEBUG)
    response = api(owner).patch(
        f"/api/numbers/{number.pk}/",
        {"label": "Renamed", "access_token": BROKEN},
        format="json",
    )
    assert (response.status_code, response.json()) == (400, {"access_token": [LINE_BREAK]})
    fresh = Number.objects.get(pk=number.pk)
    assert (fresh.access_token, fresh.label) == (DEMO_TOKEN, "Main")
    assert_token_absent(caplog, response.content)


@pytest.mark.parametrize(
    ("token", "found"),
    [
        ("EAAG\u2019secret", "a character that is not ASCII"),
        ("EAAG\u00e9secret", "a character that is not ASCII"),
        ("EAAG secret", "a space or tab"),
        ("EAAG\tsecret", "a space or tab"),
        ("EAAG\r\nsecret", "a line break"),
        ("EAAG\x07secret", "a control character"),
        ("EAAG\x7fsecret", "a control character"),
    ],
    ids=["outside-latin-1", "latin-1-letter", "space", "tab", "crlf", "bell", "delete"],
)
def test_a_token_that_cannot_be_a_header_is_refused_before_any_call(
    api, owner, no_graph_calls, token, found
):
    response = api(owner).post("/api/numbers/", create_payload(access_token=token), format="json")
    assert (response.status_code, response.json()) == (
        400,
        {"access_token": [token_message(found)]},
    )
    assert Number.objects.count() == 0


def test_an_over_long_token_is_refused(api, owner, no_graph_calls):
    response = api(owner).post(
        "/api/numbers/", create_payload(access_token="E" * 4097), format="json"
    )
    assert (response.status_code, response.json()) == (
        400,
        {"access_token": ["An access token has at most 4096 characters."]},
    )
    assert Number.objects.count() == 0


@pytest.mark.parametrize("field", ["phone_number_id", "waba_id"])
@pytest.mark.parametrize(
    "value",
    ["\uff12\uff10\uff10\uff10\uff10", "\u0662\u0660\u0660", "200 001", "12a"],
    ids=["fullwidth", "arabic", "space", "letter"],
)
def test_an_id_that_is_not_ascii_digits_is_refused_naming_it(
    api, owner, no_graph_calls, field, value
):
    response = api(owner).post("/api/numbers/", create_payload(**{field: value}), format="json")
    assert (response.status_code, response.json()) == (400, {field: [DIGITS_ONLY]})
    assert Number.objects.count() == 0


def test_the_service_refuses_a_bad_token_on_update_and_changes_nothing(number, no_graph_calls):
    with pytest.raises(NumberInvalidError) as refused:
        number_update(number=number, label="Renamed", access_token=BROKEN)
    assert (refused.value.field, refused.value.message) == ("access_token", LINE_BREAK)
    fresh = Number.objects.get(pk=number.pk)
    assert (fresh.access_token, fresh.label) == (DEMO_TOKEN, "Main")


def test_add_number_refuses_a_bad_token_with_a_command_error(workspace, no_graph_calls):
    with pytest.raises(CommandError) as refused:
        call_command(
            "add_number",
            "--workspace",
            workspace.slug,
            "--phone-number-id",
            DEMO_PHONE_NUMBER_IDS[0],
            "--waba-id",
            DEMO_WABA_ID,
            "--token",
            BROKEN,
            stdout=io.StringIO(),
        )
    assert str(refused.value) == LINE_BREAK
    assert Number.objects.count() == 0


def test_add_number_refuses_an_id_that_is_not_digits(workspace, no_graph_calls):
    with pytest.raises(CommandError) as refused:
        call_command(
            "add_number",
            "--workspace",
            workspace.slug,
            "--phone-number-id",
            "\uff12\uff10\uff10",
            "--waba-id",
            DEMO_WABA_ID,
            "--token",
            DEMO_TOKEN,
            stdout=io.StringIO(),
        )
    assert str(refused.value) == DIGITS_ONLY
    assert Number.objects.count() == 0


@pytest.fixture
def owner_client(client, owner):
    client.login(username=owner.username, password=PASSWORD)
    return client


def test_the_admin_add_form_shows_the_token_error_and_saves_nothing(
    owner_client, workspace, no_graph_calls, caplog
):
    caplog.set_level(logging.DEBUG)
    response = owner_client.post(
        reverse("admin:numbers_number_add"),
        {
            "workspace": workspace.pk,
            "label": "Main",
            "phone_number_id": DEMO_PHONE_NUMBER_IDS[0],
            "waba_id": DEMO_WABA_ID,
            "access_token": BROKEN,
            "max_mps_override": "",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"access_token": [LINE_BREAK]}
    assert Number.objects.count() == 0
    assert_token_absent(caplog, response.content)


def test_the_admin_change_form_shows_the_token_error_and_keeps_the_stored_one(
    owner_client, number, no_graph_calls
):
    response = owner_client.post(
        reverse("admin:numbers_number_change", args=[number.pk]),
        {"label": "Renamed", "access_token": BROKEN, "max_mps_override": ""},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"access_token": [LINE_BREAK]}
    fresh = Number.objects.get(pk=number.pk)
    assert (fresh.access_token, fresh.label) == (DEMO_TOKEN, "Main")


def test_a_stored_token_that_cannot_be_sent_fails_the_connection_test_without_raising(
    api, owner, number, no_graph_calls
):
    # Stored before tokens were checked on the way in.
    Number.objects.filter(pk=number.pk).update(access_token=BROKEN)
    response = api(owner).post(f"/api/numbers/{number.pk}/test-connection/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["last_error"]) == (
        NumberStatus.TOKEN_EXPIRED,
        f"the stored access token cannot be used: {LINE_BREAK}",
    )
    assert Number.objects.get(pk=number.pk).status == NumberStatus.TOKEN_EXPIRED
