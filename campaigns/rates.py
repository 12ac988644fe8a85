"""Each campaign's current send rate: messages finished per second, counted in Redis.

The engine adds what each flush finished; the API reads the last few seconds.
Kept in Redis, not on the campaign row: one write per flush per campaign at
1000 msg/s would make that row a lock hot spot.
"""

from __future__ import annotations

import time

from config.redis import get_redis

CAMPAIGN_RATE_PREFIX = "rate:campaign:"
CAMPAIGN_RATE_WINDOW = 10  # seconds averaged for a campaign's current rate


def campaign_sends_record(counts: dict[int, int], *, now: float | None = None) -> None:
    """Adds ``{campaign id: messages finished}`` to this second's count of each campaign."""
    if not counts:
        return
    second = int(time.time() if now is None else now)
    with get_redis().pipeline(transaction=False) as pipe:
        for campaign_id, count in counts.items():
            key = f"{CAMPAIGN_RATE_PREFIX}{campaign_id}:{second}"
            pipe.incrby(key, count)
            pipe.expire(key, CAMPAIGN_RATE_WINDOW * 3)
        pipe.execute()


def campaign_current_rate(campaign_id: int, *, now: float | None = None) -> float:
    """Messages the campaign finished per second over the last few seconds."""
    last = int(time.time() if now is None else now) - 1  # the current second is incomplete
    keys = [
        f"{CAMPAIGN_RATE_PREFIX}{campaign_id}:{s}"
        for s in range(last - CAMPAIGN_RATE_WINDOW + 1, last + 1)
    ]
    return sum(int(v) for v in get_redis().mget(keys) if v) / CAMPAIGN_RATE_WINDOW
