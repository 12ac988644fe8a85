"""Everything under /api/ needs a token or a session; tokens come from /api/auth/token/."""

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PROTECTED = ["/api/workspaces/", "/api/schema/", "/api/docs/"]


@pytest.mark.parametrize("path", PROTECTED)
def test_anonymous_api_calls_get_401(api, path):
    response = api().get(path)
    assert response.status_code == 401
    assert b"Authentication credentials were not provided." in response.content or (
        response.content == b"401 Unauthorized"  # the HTML docs page has no JSON renderer
    )


def test_a_token_is_issued_for_the_right_password_and_works(api, owner, workspace):
    response = api().post(
        "/api/auth/token/", {"username": "olivia", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]

    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    listed = client.get("/api/workspaces/")
    assert listed.status_code == 200
    assert [w["slug"] for w in listed.json()["results"]] == ["acme"]


def test_a_wrong_password_gets_no_token(api, owner):
    response = api().post(
        "/api/auth/token/", {"username": "olivia", "password": "wrong"}, format="json"
    )
    assert response.status_code == 400
    assert "token" not in response.json()
    assert response.json()["non_field_errors"] == ["Unable to log in with provided credentials."]


def test_an_invalid_token_is_401(api, owner):
    client = api()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert client.get("/api/workspaces/").status_code == 401


def test_session_login_works_for_the_api(client, owner):
    assert client.login(username="olivia", password=PASSWORD)
    assert client.get("/api/workspaces/").status_code == 200


def test_the_openapi_schema_and_docs_are_served_to_members(api, owner):
    schema = api(owner).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/workspaces/" in schema.json()["paths"]
    assert api(owner).get("/api/docs/").status_code == 200
