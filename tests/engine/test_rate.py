"""The Redis rate limiter (GCRA in Lua), the throttle streak and the adaptive controller."""

import pytest

from config.redis import get_redis
from messaging import ratelimit
from messaging.controller import rate_controller_tick
from messaging.models import RateAdjustment
from messaging.ratelimit import RateLimiter

pytestmark = pytest.mark.django_db


def test_a_reservation_spaces_sends_at_the_slower_of_shared_rate_and_number_cap(settings):
    get_redis().set(ratelimit.RATE_KEY, "200")
    limiter = RateLimiter()
    first = limiter.reserve(number_id=1, number_mps=80, cost=10)
    assert first.rate == 200
    assert first.shared_interval == pytest.approx(1 / 200)
    assert first.number_interval == pytest.approx(1 / 80)
    assert first.offset(0) == pytest.approx(0, abs=0.002)
    assert first.offset(9) == pytest.approx(9 / 80, abs=0.002)

    # The next batch of the same number queues behind the first one's slots...
    second = limiter.reserve(number_id=1, number_mps=80, cost=10)
    assert second.offset(0) == pytest.approx(10 / 80, abs=0.01)
    # ...and another number only behind the shared rate's.
    other = limiter.reserve(number_id=2, number_mps=80, cost=1)
    assert other.offset(0) == pytest.approx(20 / 200, abs=0.01)


def test_a_new_rate_applies_at_the_next_reservation():
    limiter = RateLimiter()
    assert limiter.reserve(number_id=1, number_mps=1000, cost=1).rate == 60  # the start rate
    get_redis().set(ratelimit.RATE_KEY, "500")
    assert limiter.reserve(number_id=1, number_mps=1000, cost=1).rate == 500


@pytest.mark.parametrize(
    ("outcomes", "cut"),
    [
        ("TTT", (100.0, 80.0)),
        ("TTST", None),
        ("TT", None),
        ("TETET", (100.0, 80.0)),
        ("TNTNT", (100.0, 80.0)),
        ("STTTS", (100.0, 80.0)),
    ],
)
def test_three_throttles_without_a_success_between_cut_the_rate(outcomes, cut):
    # Only a success resets the streak (engine.md); other errors neither count nor reset.
    get_redis().set(ratelimit.RATE_KEY, "100")
    assert RateLimiter().record(outcomes) == cut
    assert ratelimit.current_rate() == (cut[1] if cut else 100.0)


def test_the_streak_carries_across_batches_and_a_success_resets_it():
    get_redis().set(ratelimit.RATE_KEY, "100")
    limiter = RateLimiter()
    assert limiter.record("TT") is None
    assert limiter.record("T") == (100.0, 80.0)
    assert limiter.record("TTS") is None
    assert limiter.record("T") is None
    assert ratelimit.current_rate() == 80.0


def test_the_cut_never_goes_below_the_floor():
    get_redis().set(ratelimit.RATE_KEY, "11")
    assert RateLimiter().record("TTT") == (11.0, 10.0)
    get_redis().set(ratelimit.CUT_HOLD_KEY, "0")
    assert RateLimiter().record("TTT") == (10.0, 10.0)


def test_the_cut_starts_a_cool_down(settings):
    redis = get_redis()
    redis.set(ratelimit.RATE_KEY, "100")
    RateLimiter().record("TTT")
    now = float(redis.get(ratelimit.COOLDOWN_KEY)) - settings.SEND_RATE_COOLDOWN_SECONDS
    assert float(redis.get(ratelimit.CLOCK_KEY)) == pytest.approx(now, abs=0.01)


def fill_windows(now: float, seconds: float, attempts: int, errors: int) -> None:
    """Spread attempts/errors over the buckets covering [now - seconds, now]."""
    redis = get_redis()
    first = int((now - seconds) // ratelimit.WINDOW_SECONDS) + 1
    last = int(now // ratelimit.WINDOW_SECONDS)
    buckets = list(range(first, last + 1))
    for i, bucket in enumerate(buckets):
        key = f"{ratelimit.WINDOW_PREFIX}{bucket}"
        redis.hincrby(key, "attempts", attempts // len(buckets))
        if i < errors:
            redis.hincrby(key, "errors", 1)


def test_the_controller_raises_10_percent_after_5_clean_minutes():
    redis = get_redis()
    start = 1_000_000.0
    assert rate_controller_tick(now=start) is None  # starts the clock at 60
    fill_windows(start + 299, 300, attempts=3000, errors=0)
    assert rate_controller_tick(now=start + 299) is None
    fill_windows(start + 301, 300, attempts=3000, errors=29)
    adjustment = rate_controller_tick(now=start + 301)
    assert (adjustment.old, adjustment.new) == (60.0, pytest.approx(66.0))
    assert adjustment.reason.startswith("errors 0.")
    assert ratelimit.current_rate() == pytest.approx(66.0)
    # The 5-minute clock restarted with the change.
    assert rate_controller_tick(now=start + 400) is None
    assert float(redis.get(ratelimit.CLOCK_KEY)) > start + 300
    assert RateAdjustment.objects.count() == 1


def test_one_percent_errors_restart_the_clock_instead_of_raising():
    start = 2_000_000.0
    rate_controller_tick(now=start)
    fill_windows(start + 301, 300, attempts=1000, errors=10)
    assert rate_controller_tick(now=start + 301) is None
    assert ratelimit.current_rate() == 60.0
    assert float(get_redis().get(ratelimit.CLOCK_KEY)) == pytest.approx(start + 301)


def test_no_raise_without_traffic_or_during_a_cool_down():
    redis = get_redis()
    start = 3_000_000.0
    rate_controller_tick(now=start)
    assert rate_controller_tick(now=start + 600) is None  # no attempts at all
    fill_windows(start + 600, 300, attempts=1000, errors=0)
    redis.set(ratelimit.COOLDOWN_KEY, f"{start + 700}")
    assert rate_controller_tick(now=start + 600) is None
    assert ratelimit.current_rate() == 60.0


def test_the_rate_never_exceeds_the_maximum(settings):
    start = 4_000_000.0
    get_redis().set(ratelimit.RATE_KEY, "950")
    rate_controller_tick(now=start)
    fill_windows(start + 301, 300, attempts=1000, errors=0)
    adjustment = rate_controller_tick(now=start + 301)
    assert adjustment.new == settings.SEND_RATE_MAX == 1000
    fill_windows(start + 700, 300, attempts=1000, errors=0)
    assert rate_controller_tick(now=start + 700) is None


def test_throttles_right_after_a_cut_do_not_cut_again():
    redis = get_redis()
    redis.set(ratelimit.RATE_KEY, "100")
    limiter = RateLimiter()
    assert limiter.record("TTTTTTTTT") == (100.0, 80.0)
    assert limiter.record("TTT") is None  # answers to sends paced at the old rate
    assert ratelimit.current_rate() == 80.0
    redis.set(ratelimit.CUT_HOLD_KEY, "0")  # the hold is over
    assert limiter.record("TTT") == (80.0, 64.0)
