"""Claim-time guards of the lanes: which claimed rows may go now (docs/deliverability.md).

- Tier budget: Meta lets a business portfolio reach a limited number of unique
  people by template per rolling 24 h (its messaging-limit tier). Each portfolio's
  people of the last 24 h are a sorted set in Redis (phone -> last send), shared by
  every lane of the portfolio's numbers; a batch takes its new people atomically, and
  the rows beyond the limit wait until the oldest person leaves the window.
  The portfolio is approximated by the WABA (the Graph API gives a number no
  portfolio id); everyone messaged counts, also people inside a customer-service
  window (Meta does not count those): the guard errs on the side of holding.
- Frequency: per workspace, at most ``Workspace.marketing_per_contact`` marketing
  templates per contact per ``marketing_window_hours``, across campaigns (a sorted
  set per contact of the recipient rows sent). Rows over it are skipped (cancelled
  with the reason): a promotion delivered a day late is not the promotion a marketer
  planned, and frequency caps in marketing tools drop, they do not delay.

Both use one Lua call per batch; a set lost with Redis is seeded again from the
database for the budget (the sends of the last 24 h), and starts empty for the
frequency guard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

from django.utils import timezone

from campaigns.models import Recipient
from campaigns.preflight import TIER_LIMITS
from config.redis import get_redis

DAY = 24 * 3600
# TIER_LIMITS (unique people per rolling 24 h a business may reach by template, per
# tier) is preflight's table: the estimate and the guard must agree.

_SCRIPTS: dict[tuple[int, str], object] = {}


def _script(source: str):
    """The script registered on this process's Redis client: called by EVALSHA, so the
    body is not sent and hashed at every batch (reloaded by redis-py after a restart)."""
    redis = get_redis()
    key = (id(redis), source)
    script = _SCRIPTS.get(key)
    if script is None:
        script = _SCRIPTS[key] = redis.register_script(source)
    return script


def budget_key(waba_id: str) -> str:
    return f"budget:{waba_id}"


def budget_seeded_key(waba_id: str) -> str:
    return f"budget:{waba_id}:seeded"


def portfolio_limit(tiers: Sequence[str]) -> int | None:
    """The limit the tiers shown by a portfolio's numbers imply (the highest; None when
    unlimited or unknown: nothing to enforce)."""
    known = [TIER_LIMITS[tier] for tier in tiers if tier in TIER_LIMITS]
    if not known or None in known:
        return None
    return max(value for value in known if value is not None)


# KEYS[1]: the portfolio's set. ARGV[1]: now, ARGV[2]: window, ARGV[3]: limit, then the
# batch's phones in order. Phones already in the window are free (their time is
# renewed); new ones are taken while the limit allows. Returns {held phones...,
# oldest score} (oldest "" when nothing is held).
_BUDGET = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local held = {}
local seen = {}
for i = 4, #ARGV do
  local phone = ARGV[i]
  if not seen[phone] then
    seen[phone] = true
    if redis.call('ZSCORE', KEYS[1], phone) then
      redis.call('ZADD', KEYS[1], now, phone)
    elseif count < limit then
      redis.call('ZADD', KEYS[1], now, phone)
      count = count + 1
    else
      table.insert(held, phone)
    end
  end
end
redis.call('EXPIRE', KEYS[1], window + 3600)
local oldest = ''
if #held > 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  oldest = first[2] or tostring(now)
end
table.insert(held, oldest)
return held
"""


def _seed_budget(waba_id: str, workspace_id: int, now: float) -> None:
    """After a Redis loss (or at first use), the window is rebuilt from the sends of the
    last 24 h on the WABA's numbers, so a restart does not hand out a fresh budget."""
    redis = get_redis()
    if not redis.set(budget_seeded_key(waba_id), "1", nx=True, ex=DAY):
        return
    since = timezone.now() - timedelta(seconds=DAY)
    rows = (
        Recipient.objects.filter(
            number__waba_id=waba_id,
            number__workspace_id=workspace_id,
            sent_at__gte=since,
        )
        .values_list("phone", "sent_at")
        .order_by()
    )
    mapping: dict[str, float] = {}
    for phone, sent_at in rows.iterator(chunk_size=5000):
        mapping[phone] = max(mapping.get(phone, 0.0), sent_at.timestamp())
        if len(mapping) >= 5000:
            redis.zadd(budget_key(waba_id), mapping, gt=True)
            mapping = {}
    if mapping:
        redis.zadd(budget_key(waba_id), mapping, gt=True)


def budget_take(
    *, waba_id: str, workspace_id: int, limit: int, phones: Sequence[str]
) -> tuple[set[str], float | None]:
    """Takes the batch's people from the portfolio's budget; returns the phones that must
    wait and when the first place frees (epoch seconds; None when none waits)."""
    if not phones:
        return set(), None
    now = time.time()
    _seed_budget(waba_id, workspace_id, now)
    reply = _script(_BUDGET)(keys=[budget_key(waba_id)], args=[f"{now:.3f}", DAY, limit, *phones])
    *held, oldest = [v.decode() if isinstance(v, bytes) else str(v) for v in reply]
    if not held:
        return set(), None
    return set(held), float(oldest) + DAY


def budget_used(waba_id: str) -> int:
    """People in the portfolio's window now (for pre-flight and the API)."""
    redis = get_redis()
    redis.zremrangebyscore(budget_key(waba_id), "-inf", time.time() - DAY)
    return int(redis.zcard(budget_key(waba_id)))


def frequency_key(workspace_id: int, phone: str) -> str:
    return f"freq:{workspace_id}:{phone}"


# For each (key, recipient id) pair: trim the window, and take a place when fewer than
# the limit were sent. ARGV[1]: now, ARGV[2]: window, ARGV[3]: limit, then recipient ids
# one per key. Returns the recipient ids refused.
_FREQUENCY = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local refused = {}
for i = 1, #KEYS do
  local key, member = KEYS[i], ARGV[i + 3]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZSCORE', key, member) then
    -- The same row again (a retry): it holds its place already.
  elseif redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now, member)
    redis.call('EXPIRE', key, window + 60)
  else
    table.insert(refused, member)
  end
end
return refused
"""


def frequency_take(
    *, workspace_id: int, limit: int, window_hours: int, rows: Sequence[tuple[int, str]]
) -> set[int]:
    """Takes a place for each (recipient id, phone) of marketing rows; returns the ids
    over the workspace's limit (to skip)."""
    if not rows or limit <= 0:
        return set()
    keys = [frequency_key(workspace_id, phone) for _, phone in rows]
    reply = _script(_FREQUENCY)(
        keys=keys,
        args=[
            f"{time.time():.3f}",
            int(window_hours) * 3600,
            limit,
            *[str(recipient_id) for recipient_id, _ in rows],
        ],
    )
    return {int(v) for v in reply}
