"""The input policy at the HTTP boundary: a NUL, an unpaired surrogate or an over-long value
in a query string, header or body is a 400 naming it (never a 500), and nothing is stored;
under /api/ every 404 is JSON, with DEBUG on too."""

import pytest

from campaigns.models import Campaign, Suppression
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The personas' passwords are hashed with a fast hasher: these tests are not about auth."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


NUL = ["Null characters are not allowed."]
SURROGATE = ["Surrogate characters are not allowed: U+D800."]
NOT_FOUND = {"detail": "Not found."}


# -- query strings and headers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/templates/", "status"),
        ("/api/templates/", "name"),
        ("/api/templates/", "workspace"),
        ("/api/suppressions/", "phone"),
        ("/api/suppressions/", "workspace"),
        ("/api/numbers/", "undocumented"),
    ],
)
@pytest.mark.parametrize("value", ["%00", "a%00b"], ids=["only-nul", "inside"])
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(api, owner, path, param, value):
    response = api(owner).get(f"{path}?{param}={value}")
    assert (response.status_code, response.json()) == (400, {param: NUL})


def test_every_value_of_a_repeated_parameter_is_checked(api, owner):
    response = api(owner).get("/api/templates/?status=APPROVED&status=%00")
    assert (response.status_code, response.json()) == (400, {"status": NUL})


def test_a_query_value_longer_than_1000_characters_is_refused(api, owner):
    assert api(owner).get("/api/templates/?name=" + "a" * 1000).status_code == 200
    response = api(owner).get("/api/templates/?name=" + "a" * 1001)
    assert (response.status_code, response.json()) == (
        400,
        {"name": ["Ensure this field has no more than 1000 characters."]},
    )


def test_a_nul_in_a_parameter_name_is_refused_without_echoing_the_name(api, owner):
    response = api(owner).get("/api/templates/?a%00b=1")
    assert (response.status_code, response.json()) == (
        400,
        {"non_field_errors": ["A query parameter name is not acceptable: " + NUL[0]]},
    )


def test_a_utf8_encoded_surrogate_in_a_query_string_is_decoded_harmlessly(api, owner):
    # Django decodes invalid UTF-8 (a surrogate's bytes) to U+FFFD: nothing unpaired remains.
    response = api(owner).get("/api/templates/?name=%ED%A0%80")
    assert (response.status_code, response.json()["results"]) == (200, [])


def test_a_nul_in_a_header_is_a_400_naming_it(api, owner):
    response = api(owner).get("/api/templates/", HTTP_X_WORKSPACE="acme\x00")
    assert (response.status_code, response.json()) == (400, {"X-Workspace": NUL})


def test_the_admin_refuses_a_nul_in_its_query_string_as_plain_text(client, owner):
    client.login(username=owner.username, password=PASSWORD)
    response = client.get("/admin/numbers/number/?q=%00")
    assert (response.status_code, response["Content-Type"], response.content) == (
        400,
        "text/plain; charset=utf-8",
        b"q: Null characters are not allowed.",
    )


@pytest.mark.parametrize("value", ["\u00b2", "-1", "1.5", "\u0663"])
def test_a_template_filter_by_number_must_be_ascii_digits(api, owner, value):
    response = api(owner).get("/api/templates/", {"number": value})
    assert (response.status_code, response.json()) == (400, {"number": ["must be a number's id"]})


# -- bodies -----------------------------------------------------------------------------


def campaign_body(**changes) -> str:
    """A campaign create body as raw JSON text, so escapes such as \\ud800 reach the parser."""
    fields = {
        "name": '"Diwali"',
        "numbers": "[1]",
        "templates": '[{"template": 1}]',
        **changes,
    }
    return "{" + ", ".join(f'"{key}": {value}' for key, value in fields.items()) + "}"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"name": '"a\\u0000b"'}, {"name": NUL}),
        ({"name": '"\\ud800"'}, {"name": SURROGATE}),
        ({"variable_mapping": '{"1": {"body.1": "first\\u0000name"}}'}, {"variable_mapping": NUL}),
        ({"variable_mapping": '{"1": {"body.\\u0000": "name"}}'}, {"variable_mapping": NUL}),
        ({"variable_mapping": '{"\\ud800": {}}'}, {"variable_mapping": SURROGATE}),
        (
            {"variable_mapping": '[[[["\\udfff"]]]]'},
            {"variable_mapping": [SURROGATE[0].replace("D800", "DFFF")]},
        ),
        ({"templates": '[{"template": "\\u0000"}]'}, {"templates": NUL}),
        ({"numbers": '["1", "\\ud800"]'}, {"numbers": SURROGATE}),
        (
            {"variable_mapping": '{"1": {"body.1": "' + "x" * 100_001 + '"}}'},
            {"variable_mapping": ["Ensure this field has no more than 100000 characters."]},
        ),
        (
            {"bad\\u0000key": "1"},
            {"non_field_errors": ["A field name is not acceptable: " + NUL[0]]},
        ),
    ],
    ids=[
        "nul-in-a-string-field",
        "surrogate-in-a-string-field",
        "nul-in-a-json-value",
        "nul-in-a-json-key",
        "surrogate-in-a-json-key",
        "surrogate-deep-in-lists",
        "nul-in-a-nested-serializer",
        "surrogate-in-a-list-of-ids",
        "over-long-json-string",
        "nul-in-a-field-name",
    ],
)
def test_a_bad_string_anywhere_in_a_json_body_is_a_400_naming_the_field(
    api, owner, changes, errors
):
    response = api(owner).post(
        "/api/campaigns/", campaign_body(**changes), content_type="application/json"
    )
    assert (response.status_code, response.json()) == (400, errors)
    assert Campaign.objects.count() == 0


def test_a_json_body_that_is_not_an_object_is_checked_too(api, owner):
    response = api(owner).post("/api/suppressions/", '["\\u0000"]', content_type="application/json")
    assert (response.status_code, response.json()) == (400, {"non_field_errors": NUL})


@pytest.mark.parametrize("format", ["json", "multipart"])
def test_a_suppression_with_a_nul_in_its_phone_is_refused_and_not_stored(api, owner, format):
    response = api(owner).post(
        "/api/suppressions/", {"phone": "+91 98765\x0000011", "reason": "x"}, format=format
    )
    assert (response.status_code, response.json()) == (400, {"phone": NUL})
    assert Suppression.objects.count() == 0


def test_a_form_encoded_body_is_checked(api, owner):
    response = api(owner).post(
        "/api/suppressions/",
        "phone=%2B919876500011&reason=a%00b",
        content_type="application/x-www-form-urlencoded",
    )
    assert (response.status_code, response.json()) == (400, {"reason": NUL})
    assert Suppression.objects.count() == 0


def test_a_sync_request_with_a_nul_is_a_400(api, owner):
    response = api(owner).post(
        "/api/templates/sync/", '{"number": "\\u0000"}', content_type="application/json"
    )
    assert (response.status_code, response.json()) == (400, {"number": NUL})


# -- 404s -------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/numbers/999999/",
        "/api/numbers/abc/",
        "/api/campaigns/999999/report.csv",
        "/api/workspaces/-1/",
        "/api/campaigns/1.5/",
        "/api/no-such-thing/",
        "/api/",
    ],
)
def test_every_404_under_api_is_json(api, owner, settings, debug, path):
    settings.DEBUG = debug
    response = api(owner).get(path)
    assert (response.status_code, response["Content-Type"], response.json()) == (
        404,
        "application/json",
        NOT_FOUND,
    )


def test_another_workspaces_object_is_the_same_json_404(api, owner, outsider, workspace):
    response = api(outsider).get(f"/api/workspaces/{workspace.pk}/")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_a_path_missing_its_final_slash_is_still_redirected(api, owner):
    response = api(owner).get("/api/numbers")
    assert (response.status_code, response["Location"]) == (301, "/api/numbers/")


def test_the_admin_keeps_its_html_404(client, owner, settings):
    settings.DEBUG = False
    client.login(username=owner.username, password=PASSWORD)
    response = client.get("/admin/numbers/number/999999/change/")
    # The admin redirects to its index for a missing object, and 404s for unknown paths.
    unknown = client.get("/admin/no-such-app/")
    assert response.status_code == 302
    assert unknown.status_code == 404
    assert unknown["Content-Type"].startswith("text/html")
