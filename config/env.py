"""Typed reads of the environment: a wrong value stops start-up naming its variable."""

import os
import re
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: set[str]) -> str:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    if value.strip() not in choices:
        raise ImproperlyConfigured(
            f"{name} must be one of {', '.join(sorted(choices))}, got {value!r}"
        )
    return value.strip()


_RATE = re.compile(r"^[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate: requests per period, e.g. ``600/min`` or ``10/s``."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    rate = value.strip().replace(" ", "")
    if not _RATE.match(rate):
        raise ImproperlyConfigured(
            f"{name} must be a rate like 600/min (per s, min, hour or day), got {value!r}"
        )
    return rate


_HEADER = re.compile(r"^[A-Za-z0-9-]+$")


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """Django's SECURE_PROXY_SSL_HEADER from a header name (e.g. ``X-Forwarded-Proto``)
    that the TLS proxy sets to ``https``; None when unset."""
    value = (os.environ.get(name) or "").strip()
    if not value:
        return None
    if not _HEADER.match(value):
        raise ImproperlyConfigured(
            f"{name} must be a header name such as X-Forwarded-Proto, got {value!r}"
        )
    return ("HTTP_" + value.upper().replace("-", "_"), "https")


def parse_database_url(name: str, url: str) -> dict:
    """Django DATABASES entry from a ``postgres://user:pass@host:port/db?opt=v`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"{name} must be a postgres:// URL (PostgreSQL is the only supported database), "
            f"got scheme {parts.scheme!r}"
        )
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ImproperlyConfigured(f"{name} must name a database, e.g. postgres://host/wacampaigns")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port") from None
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    conn_max_age = options.pop("conn_max_age", "60")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        "CONN_MAX_AGE": int(conn_max_age),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }


def check_redis_url(name: str, url: str) -> str:
    if urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(
            f"{name} must be a redis://, rediss:// or unix:// URL, got {url!r}"
        )
    return url
