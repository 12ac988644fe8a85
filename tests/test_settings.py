"""Settings come from the environment, and a wrong value names its variable at start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, parse_database_url

ROOT = Path(__file__).resolve().parent.parent


def start_django(**env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL must be a postgres:// URL"),
        ({"DATABASE_URL": "postgres://localhost"}, "DATABASE_URL must name a database"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL must be a redis://"),
        ({"FIELD_ENCRYPTION_KEY": "not-a-key"}, "FIELD_ENCRYPTION_KEY must be comma-separated"),
        ({"GRAPH_READ_TIMEOUT": "soon"}, "GRAPH_READ_TIMEOUT must be a number"),
        ({"DEBUG": "0", "SECRET_KEY": ""}, "SECRET_KEY must be set when DEBUG is off"),
        (
            {"DEBUG": "0", "SECRET_KEY": "x" * 50, "FIELD_ENCRYPTION_KEY": ""},
            "FIELD_ENCRYPTION_KEY must be set when DEBUG is off",
        ),
    ],
)
def test_a_wrong_setting_stops_start_up_naming_the_variable(env, message):
    result = start_django(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_defaults_start_a_local_development_setup():
    result = start_django(DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_database_url_is_parsed_into_django_settings():
    parsed = parse_database_url(
        "DATABASE_URL", "postgres://app:s%40cret@db.internal:6543/wa?sslmode=require"
    )
    assert parsed["NAME"] == "wa"
    assert parsed["USER"] == "app"
    assert parsed["PASSWORD"] == "s@cret"
    assert parsed["HOST"] == "db.internal"
    assert parsed["PORT"] == "6543"
    assert parsed["OPTIONS"] == {"sslmode": "require"}


def test_typed_readers_reject_bad_values(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")
    monkeypatch.setenv("SOME_COUNT", "-3")
    assert env_bool("SOME_FLAG", False) is True
    with pytest.raises(ImproperlyConfigured, match="SOME_COUNT must be at least 1, got -3"):
        env_int("SOME_COUNT", 5, minimum=1)
