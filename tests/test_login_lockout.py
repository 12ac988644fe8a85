"""Login lockout on POST /api/auth/token/ and /admin/login/: 5 failures per username and
address, more per address alone, then 429 with Retry-After until the window ends."""

import logging
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import RequestFactory
from knox.models import AuthToken

from accounts.lockout import client_address
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

HOME = "192.0.2.10"  # documentation addresses (RFC 5737): nothing is sent to them
ELSEWHERE = "192.0.2.20"
WRONG = "not-the-password-0451"


@pytest.fixture(autouse=True)
def policy(settings):
    """The default policy, with a fast hasher: each request checks one password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 30
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    settings.TRUSTED_PROXY_COUNT = 0
    return settings


def api_login(api, username="olivia", password=WRONG, address=HOME):
    return api().post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=address,
    )


def fail(api, times, **kwargs):
    for _ in range(times):
        assert api_login(api, **kwargs).status_code == 400


def assert_locked(response, window=900):
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= window


def test_the_sixth_wrong_password_is_429_with_retry_after(api, owner):
    fail(api, 5)
    locked = api_login(api)
    assert_locked(locked)
    assert locked.json()["detail"].startswith("Too many failed logins.")


def test_a_locked_out_correct_password_is_refused_too(api, owner):
    fail(api, 5)
    assert_locked(api_login(api, password=PASSWORD))
    assert AuthToken.objects.count() == 0


def test_the_lock_is_per_username_and_address(api, owner, agent):
    fail(api, 5)
    # The same account from elsewhere, and another account from here, still log in.
    assert api_login(api, password=PASSWORD, address=ELSEWHERE).status_code == 200
    assert api_login(api, username="arjun", password=PASSWORD).status_code == 200


def test_an_address_trying_many_usernames_is_locked_at_the_per_address_limit(
    api, owner, agent, policy
):
    policy.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 8
    for username in ["olivia", "olivia", "olivia", "nobody", "root", "admin", "arjun", "x"]:
        assert api_login(api, username=username).status_code == 400
    # Every username is refused from this address now, even one it never tried...
    assert_locked(api_login(api, username="arjun", password=PASSWORD))
    assert_locked(api_login(api, username="fresh-name"))
    # ...and none from another address.
    assert api_login(api, username="arjun", password=PASSWORD, address=ELSEWHERE).status_code == 200


def test_a_successful_login_resets_no_counter(api, owner, agent):
    fail(api, 4)
    assert api_login(api, username="arjun", password=PASSWORD).status_code == 200
    assert api_login(api, password=PASSWORD).status_code == 200
    fail(api, 1)  # the fifth failure: the earlier four still count
    assert_locked(api_login(api, password=PASSWORD))


def test_the_lock_ends_after_the_window_and_refusals_do_not_prolong_it(api, owner, policy):
    policy.LOGIN_FAILURE_WINDOW_SECONDS = 2
    fail(api, 5)
    locked_at = time.monotonic()
    first = api_login(api)
    assert_locked(first, window=2)
    time.sleep(0.5)
    again = api_login(api, password=PASSWORD)  # refused: not counted, the end stays put
    assert_locked(again, window=2)
    time.sleep(max(0.0, 2.1 - (time.monotonic() - locked_at)))
    assert api_login(api, password=PASSWORD).status_code == 200
    # A fresh window: four more failures are allowed before the next lock.
    fail(api, 4)


def test_failures_older_than_the_window_are_forgotten(api, owner, policy):
    policy.LOGIN_FAILURE_WINDOW_SECONDS = 1
    fail(api, 4)
    time.sleep(1.1)
    fail(api, 4)
    assert api_login(api, password=PASSWORD).status_code == 200


# -- the admin -------------------------------------------------------------------------


def admin_login(client, username="olivia", password=WRONG, address=HOME):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def test_the_admin_login_locks_after_five_failures_with_a_429_page(client, owner):
    for _ in range(5):
        page = admin_login(client)
        assert page.status_code == 200
        assert b"Please enter the correct username and password" in page.content
    locked = admin_login(client, password=PASSWORD)
    assert_locked(locked)
    html = locked.content.decode()
    assert "Too many failed logins" in html
    assert "refused for 15 more minutes, even with the right password" in html
    assert SESSION_KEY not in client.session  # the right password did not log in

    assert admin_login(client, password=PASSWORD, address=ELSEWHERE).status_code == 302
    assert client.session[SESSION_KEY] == str(owner.pk)


def test_the_admin_and_the_api_share_the_counters(api, client, owner):
    fail(api, 3)
    admin_login(client)
    admin_login(client)
    assert_locked(api_login(api, password=PASSWORD))
    assert_locked(admin_login(client, password=PASSWORD))


# -- logs and addresses ------------------------------------------------------------------


def test_each_lockout_is_logged_with_username_and_address_never_the_password(
    api, client, owner, caplog
):
    caplog.set_level(logging.DEBUG)
    fail(api, 5)
    api_login(api)
    api_login(api, password=PASSWORD)
    locks = [r for r in caplog.records if r.name == "accounts.lockout"]
    assert [r.getMessage() for r in locks] == [
        f"login locked for 900 s after 5 failed attempts per username and address: "
        f"username='olivia' address={HOME}"
    ]
    assert locks[0].levelno == logging.WARNING
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        assert WRONG not in text
        assert PASSWORD not in text


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "192.0.2.1"),  # no trusted proxy: the header is the client's word
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.66, 203.0.113.9", "203.0.113.9"),  # the left entry was forged
        (2, "198.51.100.66, 203.0.113.9, 192.0.2.7", "203.0.113.9"),
        (1, "", "192.0.2.1"),
    ],
)
def test_the_client_address_is_read_through_the_trusted_proxies_only(
    policy, proxies, forwarded, expected
):
    policy.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().post(
        "/api/auth/token/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=forwarded
    )
    assert client_address(request) == expected


def test_behind_a_proxy_each_client_has_its_own_counter(api, owner, policy):
    policy.TRUSTED_PROXY_COUNT = 1
    proxy = "192.0.2.250"

    def through_proxy(client_ip, password=WRONG):
        return api().post(
            "/api/auth/token/",
            {"username": "olivia", "password": password},
            format="json",
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=f"198.51.100.1, {client_ip}",
        )

    for _ in range(5):
        assert through_proxy("203.0.113.1").status_code == 400
    assert_locked(through_proxy("203.0.113.1", PASSWORD))
    assert through_proxy("203.0.113.2", PASSWORD).status_code == 200
