"""At most one message per second per Slack hook, across every worker (Redis).

Slack answers 429 above about one message per second per incoming webhook.
One ``SET NX PX`` per message: the first caller in a second gets the slot; the
others are told how long the slot is still taken and try again then. The key
is a digest of the URL: the URL is the hook's credential and is never a Redis key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from config.redis import get_redis

SLACK_INTERVAL_MS = 1000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # When refused: milliseconds until the hook's slot is free.
    retry_after_ms: int = 0


def slack_key(url: str) -> str:
    return "notify:slack:" + hashlib.sha256(url.encode()).hexdigest()[:32]


def slack_slot_take(url: str, *, interval_ms: int = SLACK_INTERVAL_MS) -> Decision:
    """Take the hook's slot for the next ``interval_ms``, or say how long it is taken."""
    client = get_redis()
    key = slack_key(url)
    if client.set(key, "1", nx=True, px=interval_ms):
        return Decision(True)
    remaining = client.pttl(key)
    # -2: expired between the two calls; -1 cannot happen (always set with a TTL).
    return Decision(False, max(1, remaining if remaining > 0 else 1))
