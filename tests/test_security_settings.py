"""Production security settings: HTTPS, HSTS, secure cookies and headers, each from the
environment; and the middleware acting on them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "test-only-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH",
    "FIELD_ENCRYPTION_KEY": "Y2hlY2stZGVwbG95LW9ubHktbm90LWEtcmVhbC1rZXk=",
    "ALLOWED_HOSTS": "wa.example.com",
}
NAMES = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "X_FRAME_OPTIONS",
    "SECURE_REFERRER_POLICY",
    "SECURE_PROXY_SSL_HEADER",
]
SETTINGS_VARIABLES = {*NAMES, *PRODUCTION, "API_WRITE_RATE", "LOGIN_FAILURE_LIMIT"}


def django_settings(**env) -> subprocess.CompletedProcess:
    environ = {
        k: v for k, v in os.environ.items() if k != "PYTEST_VERSION" and k not in SETTINGS_VARIABLES
    }
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {NAMES!r}}}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**environ, **env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def values(**env) -> dict:
    result = django_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_defaults_are_https_with_hsts_and_strict_headers():
    assert values(**PRODUCTION) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_hsts_is_sent_by_default_only_when_https_is_declared():
    plain = values(**PRODUCTION, SECURE_SSL_REDIRECT="0")
    assert (plain["SECURE_SSL_REDIRECT"], plain["SECURE_HSTS_SECONDS"]) == (False, 0)
    # An operator whose proxy redirects may still declare HSTS.
    assert (
        values(**PRODUCTION, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="600")[
            "SECURE_HSTS_SECONDS"
        ]
        == 600
    )


def test_local_development_has_no_redirect_no_hsts_and_plain_cookies():
    local = values(DEBUG="1")
    assert (
        local["SECURE_SSL_REDIRECT"],
        local["SECURE_HSTS_SECONDS"],
        local["SESSION_COOKIE_SECURE"],
        local["CSRF_COOKIE_SECURE"],
        local["X_FRAME_OPTIONS"],
    ) == (False, 0, False, False, "DENY")


def test_each_setting_is_read_from_the_environment():
    changed = values(
        **PRODUCTION,
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        SECURE_HSTS_PRELOAD="1",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_CONTENT_TYPE_NOSNIFF="0",
        X_FRAME_OPTIONS="SAMEORIGIN",
        SECURE_REFERRER_POLICY="no-referrer",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    assert changed == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_CONTENT_TYPE_NOSNIFF": False,
        "X_FRAME_OPTIONS": "SAMEORIGIN",
        "SECURE_REFERRER_POLICY": "no-referrer",
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"X_FRAME_OPTIONS": "ALLOWALL"}, "X_FRAME_OPTIONS must be one of DENY, SAMEORIGIN"),
        ({"SECURE_PROXY_SSL_HEADER": "X Forwarded"}, "SECURE_PROXY_SSL_HEADER must be a header"),
        ({"SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS must be at least 0"),
        ({"API_WRITE_RATE": "fast"}, "API_WRITE_RATE must be a rate like 600/min"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT must be at least 1"),
    ],
)
def test_a_wrong_value_stops_start_up_naming_the_variable(env, message):
    result = django_settings(**PRODUCTION, **env)
    assert result.returncode != 0
    assert message in result.stderr


# -- the middleware with those settings ------------------------------------------------------


@pytest.fixture
def https_declared(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


@pytest.mark.django_db
def test_http_is_redirected_to_https_except_the_health_check(client, https_declared):
    redirected = client.get("/api/workspaces/")
    assert (redirected.status_code, redirected["Location"]) == (
        301,
        "https://testserver/api/workspaces/",
    )
    assert client.get("/healthz").status_code in (200, 503)  # answered, not redirected


@pytest.mark.django_db
def test_https_through_the_proxy_gets_hsts_and_the_headers(client, https_declared):
    response = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
