"""Benchmark: the cost of the lanes' claim-time guards per batch (docs/deliverability.md).

Times the Redis side of one batch's guards, as a lane link runs them: the 131049
back-off read (MGET), the frequency guard (one Lua call) and the tier budget (one Lua
call), for batches of distinct marketing phones, against the configured Redis.

Usage: REDIS_URL=redis://127.0.0.1:6379/9 python bench/guards.py [--batch 100] [--batches 500]
(the Redis database given is flushed).
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from config.redis import get_redis  # noqa: E402
from messaging.consequences import recipients_backed_off  # noqa: E402
from messaging.guards import budget_seeded_key, budget_take, frequency_take  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--batches", type=int, default=500)
    args = parser.parse_args()
    redis = get_redis()
    redis.flushdb()
    redis.set(budget_seeded_key("bench"), "1")
    limit = args.batch * args.batches + 1
    started = time.perf_counter()
    for b in range(args.batches):
        phones = [f"+9190{b:05d}{i:04d}" for i in range(args.batch)]
        recipients_backed_off(1, phones)
        frequency_take(
            workspace_id=1,
            limit=1,
            window_hours=24,
            rows=[(b * args.batch + i, p) for i, p in enumerate(phones)],
        )
        budget_take(waba_id="bench", workspace_id=1, limit=limit, phones=phones)
    elapsed = time.perf_counter() - started
    per_message_us = elapsed / (args.batch * args.batches) * 1e6
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(
        f"{args.batches} batches of {args.batch}: {elapsed / args.batches * 1000:.2f} ms per "
        f"batch, {per_message_us:.1f} us per message for the three guards"
    )
    redis.flushdb()


if __name__ == "__main__":
    main()
