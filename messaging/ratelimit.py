"""The shared adaptive send rate and the per-number caps, kept in Redis.

Every worker on every machine paces its sends through one atomic Lua script
(GCRA: each limiter keeps a "theoretical arrival time"), called once per batch
with the batch size as cost. The script reads the current shared rate from
Redis itself, so a change applies at the next call everywhere.

Throttling feedback is also atomic: outcomes of a batch are folded into a
streak counter in the order they happened; the third consecutive throttling
error cuts the rate by 20% at once and starts a cool-down, and any success
resets the streak. Raising the rate is the beat controller's job (tasks.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from config.redis import get_redis

RATE_KEY = "rate:current"
STREAK_KEY = "rate:throttle_streak"
COOLDOWN_KEY = "rate:cooldown_until"
CUT_HOLD_KEY = "rate:cut_hold_until"  # no second cut before the first took effect
CLOCK_KEY = "rate:clock_since"  # when the "errors under 1% for 5 minutes" clock (re)started
SHARED_TAT_KEY = "rl:tat:shared"
WINDOW_PREFIX = "rate:win:"  # per-WINDOW_SECONDS buckets of attempts / errors
WINDOW_SECONDS = 10


def number_tat_key(number_id: int) -> str:
    return f"rl:tat:number:{number_id}"


_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local cost = tonumber(ARGV[1])
local number_rate = tonumber(ARGV[2])
local rate = tonumber(redis.call('GET', KEYS[1]) or ARGV[3])
local function reserve(key, per_second)
  local interval = 1.0 / per_second
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  redis.call('SET', key, string.format('%.6f', new_tat), 'PX',
             math.ceil((new_tat - now) * 1000) + 60000)
  return {string.format('%.6f', tat - now), string.format('%.6f', interval)}
end
local shared = reserve(KEYS[2], rate)
local own = reserve(KEYS[3], number_rate)
return {shared[1], shared[2], own[1], own[2], string.format('%.6f', rate)}
"""

# ARGV: outcomes string ("S" success, "T" throttle, "E" other error, "N" neutral),
# threshold, cut factor, floor, default rate, cool-down seconds, window seconds,
# cut hold seconds. At most one cut per call: its outcomes share one "now".
_RECORD = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local outcomes = ARGV[1]
local threshold = tonumber(ARGV[2])
local streak = tonumber(redis.call('GET', KEYS[1]) or '0')
local attempts, errors, cut = 0, 0, nil
for i = 1, #outcomes do
  local o = string.sub(outcomes, i, i)
  if o ~= 'N' then attempts = attempts + 1 end
  if o == 'S' then
    streak = 0
  elseif o == 'T' then
    errors = errors + 1
    streak = streak + 1
    if streak >= threshold and now < tonumber(redis.call('GET', KEYS[6]) or '0') then
      -- Throttles answered to sends paced at the rate before the last cut:
      -- they say nothing about the new rate, so they do not cut again.
      streak = 0
    elseif streak >= threshold then
      streak = 0
      redis.call('SET', KEYS[6], string.format('%.6f', now + tonumber(ARGV[8])))
      local old = tonumber(redis.call('GET', KEYS[2]) or ARGV[5])
      local new = math.max(tonumber(ARGV[4]), old * tonumber(ARGV[3]))
      redis.call('SET', KEYS[2], string.format('%.4f', new))
      redis.call('SET', KEYS[3], string.format('%.6f', now + tonumber(ARGV[6])))
      redis.call('SET', KEYS[4], string.format('%.6f', now))
      cut = {string.format('%.4f', old), string.format('%.4f', new)}
    end
  elseif o == 'E' then
    errors = errors + 1
  end
end
redis.call('SET', KEYS[1], streak)
if attempts > 0 then
  local window = KEYS[5] .. math.floor(now / tonumber(ARGV[7]))
  redis.call('HINCRBY', window, 'attempts', attempts)
  if errors > 0 then redis.call('HINCRBY', window, 'errors', errors) end
  redis.call('EXPIRE', window, 900)
end
if cut then return cut end
return {}
"""


def reply_tat_key(number_id: int) -> str:
    return f"rl:tat:reply:{number_id}"


def pair_tat_key(number_id: int, wa_id: str) -> str:
    return f"rl:tat:pair:{number_id}:{wa_id}"


# A reply (the inbox's fast path) takes the next slot of its own queue at the number's
# rate, not the end of the campaign's reserved backlog; it still counts against the
# number's throughput and the shared rate (their TATs move one slot on, so the
# campaign's next batch is paced around it) and against the pair rate of its user
# (GCRA with a burst). ARGV: number rate, shared default rate, pair seconds, pair burst.
_RESERVE_REPLY = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local number_interval = 1.0 / tonumber(ARGV[1])
local rate = tonumber(redis.call('GET', KEYS[1]) or ARGV[2])
local function push(key, interval)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  redis.call('SET', key, string.format('%.6f', new_tat), 'PX',
             math.ceil((new_tat - now) * 1000) + 60000)
end
local reply_tat = tonumber(redis.call('GET', KEYS[4]) or '0')
if reply_tat < now then reply_tat = now end
local at = reply_tat
local pair_seconds = tonumber(ARGV[3])
if pair_seconds > 0 then
  local burst = tonumber(ARGV[4])
  local pair_tat = tonumber(redis.call('GET', KEYS[5]) or '0')
  if pair_tat < now then pair_tat = now end
  local pair_at = pair_tat - (burst - 1) * pair_seconds
  if pair_at > at then at = pair_at end
  local new_pair = math.max(pair_tat, at) + pair_seconds
  redis.call('SET', KEYS[5], string.format('%.6f', new_pair), 'PX',
             math.ceil((new_pair - now) * 1000) + 60000)
end
local new_reply = at + number_interval
redis.call('SET', KEYS[4], string.format('%.6f', new_reply), 'PX',
           math.ceil((new_reply - now) * 1000) + 60000)
push(KEYS[2], 1.0 / rate)
push(KEYS[3], number_interval)
return string.format('%.6f', at - now)
"""


# Inbound messages count against a number's throughput at Meta as sends do: each one
# moves the number's TAT on by one slot (never into the past), so the next campaign
# batch is paced around them. ARGV: the number's rate, the count.
_TAKE_INBOUND = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[2]) / tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX',
           math.ceil((new_tat - now) * 1000) + 60000)
return 1
"""


def inbound_take(counts: dict[int, tuple[float, int]]) -> None:
    """Counts inbound messages against their numbers' throughput: ``{number id:
    (number's messages/s, inbound count)}``, one pipelined script call per number."""
    if not counts:
        return
    redis = get_redis()
    script = redis.register_script(_TAKE_INBOUND)
    with redis.pipeline(transaction=False) as pipe:
        for number_id, (mps, count) in counts.items():
            script(
                keys=[number_tat_key(number_id)], args=[max(float(mps), 0.1), count], client=pipe
            )
        pipe.execute()


@dataclass(frozen=True)
class Reservation:
    """When each message of a reserved batch may go, relative to the call."""

    shared_wait: float
    shared_interval: float
    number_wait: float
    number_interval: float
    rate: float

    def offset(self, index: int) -> float:
        """Seconds from the reservation until message ``index`` (0-based) may be sent."""
        return max(
            self.shared_wait + index * self.shared_interval,
            self.number_wait + index * self.number_interval,
        )


class RateLimiter:
    """The Redis-side limiter and rate feedback; one instance per process is enough."""

    def __init__(self, redis=None) -> None:
        self.redis = redis or get_redis()
        self._reserve = self.redis.register_script(_RESERVE)
        self._record = self.redis.register_script(_RECORD)
        self._reserve_reply = self.redis.register_script(_RESERVE_REPLY)

    def reserve(self, *, number_id: int, number_mps: float, cost: int) -> Reservation:
        """Reserves ``cost`` send slots under both the shared rate and the number's cap."""
        values = self._reserve(
            keys=[RATE_KEY, SHARED_TAT_KEY, number_tat_key(number_id)],
            args=[cost, max(float(number_mps), 0.1), settings.SEND_RATE_START],
        )
        return Reservation(*(float(v) for v in values))

    def reserve_reply(
        self,
        *,
        number_id: int,
        number_mps: float,
        wa_id: str,
        pair_seconds: float,
        pair_burst: int,
    ) -> float:
        """Reserves one slot for a reply ahead of the campaign backlog; returns the seconds
        to wait before sending it (the number's reply pacing and the user's pair rate)."""
        value = self._reserve_reply(
            keys=[
                RATE_KEY,
                SHARED_TAT_KEY,
                number_tat_key(number_id),
                reply_tat_key(number_id),
                pair_tat_key(number_id, wa_id),
            ],
            args=[
                max(float(number_mps), 0.1),
                settings.SEND_RATE_START,
                max(float(pair_seconds), 0.0),
                max(int(pair_burst), 1),
            ],
        )
        return max(float(value), 0.0)

    def record(self, outcomes: str) -> tuple[float, float] | None:
        """Folds a batch's outcomes (in send order) into the streak and window counts.

        Returns (old, new) rate when this call made the 20% cut, else None; the
        caller records the change (messaging.controller.rate_adjustment_record).
        """
        if not outcomes:
            return None
        result = self._record(
            keys=[STREAK_KEY, RATE_KEY, COOLDOWN_KEY, CLOCK_KEY, WINDOW_PREFIX, CUT_HOLD_KEY],
            args=[
                outcomes,
                settings.SEND_RATE_THROTTLE_STREAK,
                settings.SEND_RATE_CUT_FACTOR,
                settings.SEND_RATE_MIN,
                settings.SEND_RATE_START,
                settings.SEND_RATE_COOLDOWN_SECONDS,
                WINDOW_SECONDS,
                settings.SEND_RATE_CUT_HOLD_SECONDS,
            ],
        )
        return (float(result[0]), float(result[1])) if result else None


def current_rate() -> float:
    value = get_redis().get(RATE_KEY)
    return float(value) if value is not None else float(settings.SEND_RATE_START)


def set_rate(new: float) -> tuple[float, float]:
    """Sets the shared rate, clamped to the configured bounds, and restarts the clock.

    Returns (old, new); the caller records the change with its reason.
    """
    redis = get_redis()
    new = min(max(new, settings.SEND_RATE_MIN), settings.SEND_RATE_MAX)
    old = current_rate()
    with redis.pipeline() as pipe:
        pipe.set(RATE_KEY, f"{new:.4f}")
        pipe.set(CLOCK_KEY, f"{time.time():.6f}")
        pipe.execute()
    return old, new


def window_totals(seconds: float, *, now: float | None = None) -> tuple[int, int]:
    """(attempts, errors) over the last ``seconds``."""
    now = time.time() if now is None else now
    last = int(now // WINDOW_SECONDS)
    first = int((now - seconds) // WINDOW_SECONDS) + 1
    redis = get_redis()
    with redis.pipeline() as pipe:
        for bucket in range(first, last + 1):
            pipe.hgetall(f"{WINDOW_PREFIX}{bucket}")
        rows = pipe.execute()
    attempts = sum(int(r.get("attempts", 0)) for r in rows)
    errors = sum(int(r.get("errors", 0)) for r in rows)
    return attempts, errors
