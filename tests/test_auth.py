"""Everything under /api/ needs a token or a session; tokens come from /api/auth/token/,
are stored as digests, expire, and can be deleted with /api/auth/logout/."""

import datetime as dt
import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PROTECTED = ["/api/workspaces/", "/api/schema/", "/api/docs/"]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The personas' passwords are hashed with a fast hasher: the cost is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def log_in(api, username="olivia", password=PASSWORD):
    return api().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )


def with_token(api, token):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.mark.parametrize("path", PROTECTED)
def test_anonymous_api_calls_get_401(api, path):
    response = api().get(path)
    assert response.status_code == 401
    assert b"Authentication credentials were not provided." in response.content or (
        response.content == b"401 Unauthorized"  # the HTML docs page has no JSON renderer
    )


def test_a_token_is_issued_for_the_right_password_and_works(api, owner, workspace, settings):
    before = timezone.now()
    response = log_in(api)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry"}
    expiry = dt.datetime.fromisoformat(body["expiry"].replace("Z", "+00:00"))
    ttl = dt.timedelta(hours=settings.API_TOKEN_TTL_HOURS)
    assert before + ttl <= expiry <= timezone.now() + ttl

    listed = with_token(api, body["token"]).get("/api/workspaces/")
    assert listed.status_code == 200
    assert [w["slug"] for w in listed.json()["results"]] == ["acme"]


def test_the_token_is_stored_only_as_a_sha512_digest(api, owner):
    token = log_in(api).json()["token"]
    [stored] = AuthToken.objects.all()
    assert stored.user == owner
    assert stored.digest == hashlib.sha512(token.encode()).hexdigest()
    row = AuthToken.objects.values().get()
    assert token not in {str(value) for value in row.values()}


def test_a_wrong_password_gets_no_token(api, owner):
    response = log_in(api, password="wrong")
    assert response.status_code == 400
    assert "token" not in response.json()
    assert response.json()["non_field_errors"] == ["Unable to log in with provided credentials."]
    assert AuthToken.objects.count() == 0


def test_an_invalid_token_is_401(api, owner):
    assert with_token(api, "0123456789abcdef").get("/api/workspaces/").status_code == 401


def test_an_expired_token_is_401_and_deleted(api, owner):
    token = log_in(api).json()["token"]
    AuthToken.objects.update(expiry=timezone.now() - dt.timedelta(seconds=1))
    response = with_token(api, token).get("/api/workspaces/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert AuthToken.objects.count() == 0


def test_the_token_lifetime_comes_from_the_setting(api, owner, settings):
    settings.API_TOKEN_TTL_HOURS = 2
    log_in(api)
    stored = AuthToken.objects.get()
    assert abs(stored.expiry - stored.created - dt.timedelta(hours=2)) < dt.timedelta(seconds=5)


def test_logout_deletes_only_the_token_it_was_called_with(api, owner):
    first, second = log_in(api).json()["token"], log_in(api).json()["token"]
    response = with_token(api, first).post("/api/auth/logout/")
    assert response.status_code == 204
    assert with_token(api, first).get("/api/workspaces/").status_code == 401
    assert with_token(api, second).get("/api/workspaces/").status_code == 200
    assert AuthToken.objects.count() == 1


def test_logout_without_a_token_is_401(api, client, owner):
    assert api().post("/api/auth/logout/").status_code == 401
    client.force_login(owner)
    assert client.post("/api/auth/logout/").status_code == 401  # a session is not a token


def test_session_login_works_for_the_api(client, owner):
    assert client.login(username="olivia", password=PASSWORD)
    assert client.get("/api/workspaces/").status_code == 200


def test_the_openapi_schema_and_docs_are_served_to_members(api, owner):
    schema = api(owner).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/workspaces/" in paths
    assert "/api/auth/logout/" in paths
    login = paths["/api/auth/token/"]["post"]["responses"]["200"]["content"]
    schema_ref = login["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/Token")
    assert api(owner).get("/api/docs/").status_code == 200


# -- the admin's token list ------------------------------------------------------------------


def test_superusers_see_tokens_in_the_admin_without_their_value(
    api, client, owner, django_user_model
):
    token = log_in(api).json()["token"]
    stored = AuthToken.objects.get()
    root = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(root)
    listing = client.get(reverse("admin:knox_authtoken_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "olivia" in html
    assert stored.digest[:10] in html
    # Neither the token nor its first characters (stored to find the row); the digest,
    # the row's key, is in the links, and cannot be used as a token.
    assert token[:8] not in html
    detail = client.get(reverse("admin:knox_authtoken_change", args=[stored.pk]))
    assert detail.status_code == 200
    assert token[:8] not in detail.content.decode()
    assert client.get(reverse("admin:knox_authtoken_add")).status_code == 403


def test_members_do_not_see_tokens_in_the_admin(api, client, owner):
    log_in(api)
    owner.user_permissions.add(*_knox_permissions())
    client.force_login(owner)
    assert client.get(reverse("admin:knox_authtoken_changelist")).status_code == 403
    assert b"/admin/knox/" not in client.get(reverse("admin:index")).content


def _knox_permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="knox")
