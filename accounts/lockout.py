"""Login lockout: failed passwords counted in Redis per username and address, and per address.

Both ways in, ``/admin/login/`` and ``POST /api/auth/token/``, end in Django's
``authenticate()``, so the policy lives in two hooks on it:

- ``LoginLockoutBackend``, first in ``AUTHENTICATION_BACKENDS``, refuses any
  attempt while a lock holds, before a password is checked (a correct password
  too), and notes on the request how long the lock has left
  (``locked_for(request)``) for the views to answer 429 with ``Retry-After``.
- a ``user_login_failed`` receiver counts each failure in two counters:
  ``LOGIN_FAILURE_LIMIT`` per username and address (a guess at one account)
  and ``LOGIN_FAILURE_LIMIT_PER_ADDRESS`` per address alone (one address trying
  many accounts). A counter lives ``LOGIN_FAILURE_WINDOW_SECONDS`` from its
  first failure; the failure that reaches its limit restarts that clock, so
  the lock lasts one whole window and then ends by itself. Refused attempts
  are not counted, so hammering a lock does not prolong it, and a successful
  login resets nothing (no one's counter, not even its own).

Calls without a request (scripts, ``Client.login()``) have no address and are
neither counted nor refused. Several attempts already in flight when a lock
starts may each finish: the excess is bounded by the web workers' concurrency.
"""

from __future__ import annotations

import hashlib
import logging
import math

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest

from config.redis import get_redis

logger = logging.getLogger(__name__)

# Set on the Django request (not DRF's wrapper, which would hide it from the view
# that holds the Django one): seconds until the lock that refused this request ends.
LOCKED_ATTRIBUTE = "login_locked_for"

# KEYS: the counters; ARGV[1]: window in ms; ARGV[2..]: each counter's limit.
# Returns the 1-based indexes of the counters this failure brought to their limit.
_RECORD_FAILURE = """
local reached = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    local limit = tonumber(ARGV[i + 1])
    if count == 1 or count == limit then
        redis.call('PEXPIRE', key, ARGV[1])
    end
    if count == limit then
        table.insert(reached, i)
    end
end
return reached
"""


def client_address(request: HttpRequest) -> str:
    """The address the request came from, seen through ``TRUSTED_PROXY_COUNT`` proxies.

    Each trusted proxy appends the address it was reached from to
    ``X-Forwarded-For``, so the client is the entry that many places from the
    right; anything further left was written by the client and is ignored.
    Without trusted proxies the header is ignored and ``REMOTE_ADDR`` is used.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = settings.TRUSTED_PROXY_COUNT
    if not proxies:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]


def _counters(username: str, address: str) -> list[tuple[str, int, str]]:
    """(Redis key, limit, what it counts) for each counter an attempt belongs to."""
    # Hashed: a username is user input of any length and any characters.
    user = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
    return [
        (f"login:fail:user:{user}:{address}", settings.LOGIN_FAILURE_LIMIT, "username and address"),
        (f"login:fail:address:{address}", settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS, "address"),
    ]


def lock_seconds(*, username: str, address: str) -> int:
    """Seconds until the attempts of ``username`` from ``address`` are allowed again (0: now)."""
    counters = _counters(username, address)
    pipe = get_redis().pipeline(transaction=False)
    for key, _limit, _what in counters:
        pipe.get(key)
        pipe.pttl(key)
    replies = pipe.execute()
    waits = [0]
    for index, (_key, limit, _what) in enumerate(counters):
        count, pttl = replies[2 * index], replies[2 * index + 1]
        if count is not None and int(count) >= limit and pttl > 0:
            waits.append(math.ceil(pttl / 1000))
    return max(waits)


def login_failure_record(*, username: str, address: str) -> None:
    """Counts one failed login; logs (username and address, never the password) each lock."""
    counters = _counters(username, address)
    window_ms = settings.LOGIN_FAILURE_WINDOW_SECONDS * 1000
    script = get_redis().register_script(_RECORD_FAILURE)
    reached = script(
        keys=[key for key, _limit, _what in counters],
        args=[window_ms, *(limit for _key, limit, _what in counters)],
    )
    for index in reached:
        _key, limit, what = counters[int(index) - 1]
        logger.warning(
            "login locked for %d s after %d failed attempts per %s: username=%r address=%s",
            settings.LOGIN_FAILURE_WINDOW_SECONDS,
            limit,
            what,
            username,
            address,
        )


def _django_request(request) -> HttpRequest:
    # DRF's Request wraps Django's and forwards attribute reads to it, not writes.
    return getattr(request, "_request", request)


def locked_for(request) -> int:
    """Seconds left of the lock that refused this request's login attempt; 0 if none did."""
    return getattr(_django_request(request), LOCKED_ATTRIBUTE, 0)


def _username(credentials: dict) -> str | None:
    value = credentials.get(get_user_model().USERNAME_FIELD, credentials.get("username"))
    return value if isinstance(value, str) else None


class LoginLockoutBackend:
    """Refuses every login attempt of a locked username and address; authenticates no one.

    First in ``AUTHENTICATION_BACKENDS``: raising PermissionDenied makes
    ``authenticate()`` stop before the password backends and return None.
    """

    def authenticate(self, request, username=None, **credentials):
        if request is None:
            return None
        username = username if username is not None else _username(credentials)
        if username is None:
            return None
        seconds = lock_seconds(username=username, address=client_address(request))
        if seconds:
            setattr(_django_request(request), LOCKED_ATTRIBUTE, seconds)
            raise PermissionDenied("too many failed logins")
        return None

    # No get_user(): a session never names this backend (it logs no one in), and
    # Django's Client.force_login() takes the first backend that has one.


@receiver(user_login_failed, dispatch_uid="accounts.lockout.count_failure")
def _count_failure(sender, credentials: dict, request=None, **kwargs) -> None:
    """Counts a wrong password (not a refusal by the lock: it must not prolong the lock)."""
    if request is None or locked_for(request):
        return
    # Django hides the password in ``credentials``; the username is kept.
    username = _username(credentials)
    if username is None:
        return
    login_failure_record(username=username, address=client_address(request))
