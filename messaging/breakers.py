"""Circuit breakers per number: stop a number's campaigns before an account-wide problem
burns the audience row by row (docs/deliverability.md).

- Consecutive: BREAKER_CONSECUTIVE_FAILURES identical failures in a row on a number,
  of a code the error table does not know or marks as possibly account-wide
  (``ErrorRule.breaker``). Kept apart for the send answers and the status webhooks
  (each path's own order), reset by a success on that path or any other outcome.
- Failure rate (status webhooks): over BREAKER_FAILURE_WINDOW_SECONDS, at least
  BREAKER_FAILURE_MIN_STATUSES final statuses (delivered or failed) of which a share
  of BREAKER_FAILURE_RATE or more failed.

Both live in Redis (one script call per lane flush or webhook pass and number), and
trip once: the streak or window is cleared when it trips, so a number's campaigns are
paused once per breach, through ``campaigns.services.lifecycle``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from config.redis import get_redis

logger = logging.getLogger(__name__)

STREAK_TTL_SECONDS = 24 * 3600


def streak_key(number_id: int, via: str) -> str:
    return f"breaker:streak:{via}:{number_id}"


# KEYS[1]: the streak ("<code>:<count>"). ARGV[1]: threshold, ARGV[2]: ttl, then one
# token per outcome in order: a code counts, "" resets. Returns {code, count} when the
# threshold was reached (and clears the streak), else {}.
_STREAK = """
local threshold = tonumber(ARGV[1])
local stored = redis.call('GET', KEYS[1])
local code, count = '', 0
if stored then
  local sep = string.find(stored, ':', 1, true)
  code, count = string.sub(stored, 1, sep - 1), tonumber(string.sub(stored, sep + 1))
end
for i = 3, #ARGV do
  local token = ARGV[i]
  if token == '' then
    code, count = '', 0
  elseif token == code then
    count = count + 1
  else
    code, count = token, 1
  end
  if count >= threshold then
    redis.call('DEL', KEYS[1])
    return {code, count}
  end
end
if code == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], code .. ':' .. count, 'EX', tonumber(ARGV[2]))
end
return {}
"""


_SCRIPTS: dict[int, object] = {}


def _streak_script():
    """The streak script registered on this process's client (EVALSHA at each call)."""
    redis = get_redis()
    script = _SCRIPTS.get(id(redis))
    if script is None:
        script = _SCRIPTS[id(redis)] = redis.register_script(_STREAK)
    return script


@dataclass(frozen=True)
class Trip:
    """A breaker that tripped: the code (None for the failure-rate breaker) and why."""

    number_id: int
    code: int | None
    reason: str


def streak_record(*, number_id: int, via: str, tokens: Sequence[str]) -> int | None:
    """Folds outcomes (in order; a code string for a breaker failure, "" for anything
    else) into the number's streak. Returns the code when the streak reached
    BREAKER_CONSECUTIVE_FAILURES (the streak starts again from zero)."""
    if not tokens:
        return None
    result = _streak_script()(
        keys=[streak_key(number_id, via)],
        args=[int(settings.BREAKER_CONSECUTIVE_FAILURES), STREAK_TTL_SECONDS, *tokens],
    )
    if not result:
        return None
    code = result[0].decode() if isinstance(result[0], bytes) else str(result[0])
    return int(code)


def rate_key(number_id: int, bucket: int) -> str:
    return f"breaker:rate:{number_id}:{bucket}"


BUCKET_SECONDS = 60


def failure_rate_record(
    *, number_id: int, final: int, failed: Counter, now: float | None = None
) -> Trip | None:
    """Adds a webhook pass's final statuses of the number (``final`` delivered or failed,
    ``failed`` counted by error code) to the window, and returns a Trip when the window
    holds enough statuses and too large a share failed (the window is cleared then)."""
    if final <= 0:
        return None
    now = time.time() if now is None else now
    window = int(settings.BREAKER_FAILURE_WINDOW_SECONDS)
    buckets = [int(now // BUCKET_SECONDS) - i for i in range(max(1, window // BUCKET_SECONDS))]
    redis = get_redis()
    key = rate_key(number_id, buckets[0])
    with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(key, "final", final)
        for code, count in failed.items():
            pipe.hincrby(key, f"c:{code}", count)
        pipe.expire(key, window + BUCKET_SECONDS)
        for bucket in buckets:
            pipe.hgetall(rate_key(number_id, bucket))
        replies = pipe.execute()
    total = 0
    by_code: Counter = Counter()
    for reply in replies[-len(buckets) :]:
        for field, value in (reply or {}).items():
            name = field.decode() if isinstance(field, bytes) else field
            if name == "final":
                total += int(value)
            elif name.startswith("c:"):
                by_code[name[2:]] += int(value)
    failures = sum(by_code.values())
    if total < int(settings.BREAKER_FAILURE_MIN_STATUSES) or not total:
        return None
    share = failures / total
    if share < float(settings.BREAKER_FAILURE_RATE):
        return None
    redis.delete(*(rate_key(number_id, bucket) for bucket in buckets))
    top, top_count = by_code.most_common(1)[0]
    code = None if top == "none" else int(top)
    return Trip(
        number_id,
        code,
        f"{failures} of the last {total} messages on this number failed at Meta within "
        f"{window // 60} minutes ({share:.0%}, mostly error {top}: {top_count})",
    )


def streak_trip(number_id: int, code: int) -> Trip:
    count = int(settings.BREAKER_CONSECUTIVE_FAILURES)
    return Trip(number_id, code, f"{count} messages in a row failed with Meta error {code}")
