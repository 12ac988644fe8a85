"""The adaptive send rate's controller (beat) and the record of every rate change."""

from __future__ import annotations

import time

from django.conf import settings
from django.utils import timezone

from config.redis import get_redis
from messaging import ratelimit
from messaging.models import RateAdjustment


def rate_adjustment_record(*, old: float, new: float, reason: str) -> RateAdjustment:
    return RateAdjustment.objects.create(at=timezone.now(), old=old, new=new, reason=reason)


def rate_controller_tick(*, now: float | None = None) -> RateAdjustment | None:
    """+10% when the error share stayed under 1% for the last 5 minutes.

    The 5-minute clock restarts at every change and whenever errors reach 1%;
    nothing moves during the cool-down after a throttling cut, or without
    traffic (no evidence either way).
    """
    redis = get_redis()
    now = time.time() if now is None else now
    if redis.set(ratelimit.CLOCK_KEY, f"{now:.6f}", nx=True):
        return None
    if now < float(redis.get(ratelimit.COOLDOWN_KEY) or 0):
        return None
    since = float(redis.get(ratelimit.CLOCK_KEY))
    period = settings.SEND_RATE_RAISE_AFTER_SECONDS
    if now - since < period:
        return None
    attempts, errors = ratelimit.window_totals(period, now=now)
    if attempts == 0:
        return None
    share = errors / attempts
    if share >= settings.SEND_RATE_MAX_ERROR_SHARE:
        redis.set(ratelimit.CLOCK_KEY, f"{now:.6f}")
        return None
    current = ratelimit.current_rate()
    if current >= settings.SEND_RATE_MAX:
        redis.set(ratelimit.CLOCK_KEY, f"{now:.6f}")
        return None
    old, new = ratelimit.set_rate(current * settings.SEND_RATE_RAISE_FACTOR)
    return rate_adjustment_record(
        old=old,
        new=new,
        reason=f"errors {share:.2%} of {attempts} attempts over {period / 60:g} min",
    )
