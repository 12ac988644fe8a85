"""Refused webhook POSTs: counted per hour and reason, and sampled cut short.

A refused POST is anyone's: storing each one whole let a flood of forged requests fill the
disk (6 threads wrote 66 MB in 10 s, about 24 GB an hour). Now a refusal costs one Redis
round trip: its count goes to a hash per hour and reason, moved into WebhookRefusalCount
by the periodic ``webhook_refusals_flush`` (every 10 s); and at most once a second per
reason the request, cut short, overwrites the oldest slot of a ring of REFUSAL_SAMPLES
rows (WebhookRefusalSample). A flood therefore writes a few rows a second to PostgreSQL
whatever its rate. Without Redis, each refusal is counted and sampled in PostgreSQL by
one statement instead.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone
from redis.exceptions import RedisError, ResponseError

from config.redis import get_redis
from webhooks.models import WebhookRefusalCount, WebhookRefusalSample

logger = logging.getLogger(__name__)

# How many refused requests are kept for a person to look at (the newest overwrite the
# oldest), how much of each, and how often one is kept per reason (milliseconds; 0: all).
REFUSAL_SAMPLES = 100
SAMPLE_BODY_BYTES = 512
SAMPLE_HEADER_CHARS = 200
SAMPLE_INTERVAL_MS = 1000
# Numbers the samples; a sample's slot is its number modulo REFUSAL_SAMPLES (created by
# migration 0003).
SAMPLE_SEQUENCE = "webhooks_refusal_sample_number"
# Redis: a hash {count, last} per hour and reason, the set of those not flushed yet, the
# sample and log gates. Unflushed counts outlive a stopped beat for two days.
_COUNT_KEY = "webhooks:refused:{hour}:{reason}"
_PENDING_KEY = "webhooks:refused:pending"
_SAMPLED_KEY = "webhooks:refused:sampled:{reason}"
_LOGGED_KEY = "webhooks:refused:logged:{hour}:{reason}"
_COUNT_TTL_SECONDS = 2 * 86400


def webhook_refusal_record(
    *,
    reason: str,
    body: bytes,
    headers: dict[str, str],
    remote_addr: str,
    content_length: int | None,
    now: datetime | None = None,
) -> bool:
    """Count one refused POST for ``reason`` in the current hour, and keep it as the newest
    sample unless one was kept for ``reason`` less than SAMPLE_INTERVAL_MS ago. Returns
    True for the first refusal of the hour for ``reason`` (the caller logs that one)."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    hour_id = int(hour.timestamp())
    count_key = _COUNT_KEY.format(hour=hour_id, reason=reason)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.hincrby(count_key, "count", 1)
        pipe.hset(count_key, "last", now.isoformat())
        pipe.expire(count_key, _COUNT_TTL_SECONDS)
        pipe.sadd(_PENDING_KEY, count_key)
        pipe.set(_LOGGED_KEY.format(hour=hour_id, reason=reason), 1, nx=True, ex=3600)
        if SAMPLE_INTERVAL_MS:
            pipe.set(_SAMPLED_KEY.format(reason=reason), 1, nx=True, px=SAMPLE_INTERVAL_MS)
        replies = pipe.execute()
    except RedisError as error:
        first_of_hour = _record_in_database(
            reason=reason,
            hour=hour,
            now=now,
            sample=_sample_values(reason, body, headers, remote_addr, content_length, now),
        )
        if first_of_hour:
            # Not once per refusal: a flood while Redis is down must not fill the logs.
            logger.warning("Redis unavailable (%s): refusals are counted in PostgreSQL", error)
        return first_of_hour
    first_of_hour = bool(replies[4])
    sampled = bool(replies[5]) if SAMPLE_INTERVAL_MS else True
    if sampled:
        _write_sample(_sample_values(reason, body, headers, remote_addr, content_length, now))
    return first_of_hour


def webhook_refusals_flush() -> int:
    """Move the counts kept in Redis into WebhookRefusalCount (added to what is there);
    returns how many refusals were moved. Safe beside refusals being counted: each hash is
    renamed away before it is read, so a refusal counted meanwhile starts a new one."""
    redis = get_redis()
    moved = 0
    for key in sorted(redis.smembers(_PENDING_KEY)):
        # Out of the set first: a refusal counted after this re-adds the key.
        redis.srem(_PENDING_KEY, key)
        taken = f"{key}:flushing:{secrets.token_hex(4)}"
        try:
            redis.rename(key, taken)
        except ResponseError:
            continue  # flushed already (by another run), or expired
        values = redis.hgetall(taken)
        redis.delete(taken)
        _, _, hour, reason = key.split(":", 3)
        count = int(values.get("count") or 0)
        if count:
            _add_count(
                hour=datetime.fromtimestamp(int(hour), tz=UTC),
                reason=reason,
                count=count,
                last_at=datetime.fromisoformat(values["last"]),
            )
            moved += count
    return moved


def _sample_values(
    reason: str,
    body: bytes,
    headers: dict[str, str],
    remote_addr: str,
    content_length: int | None,
    now: datetime,
) -> dict:
    return {
        "now": now,
        "reason": reason,
        "size": REFUSAL_SAMPLES,
        "remote_addr": remote_addr[:64],
        "content_length": content_length,
        "body": body[:SAMPLE_BODY_BYTES],
        "headers": json.dumps(
            {name: value[:SAMPLE_HEADER_CHARS] for name, value in headers.items()}
        ),
    }


# Overwrites the oldest slot of the ring: an upsert keyed by the slot, numbered by the
# sequence (no read-modify-write, safe under any concurrency).
_SAMPLE_UPSERT = f"""
    INSERT INTO {WebhookRefusalSample._meta.db_table} AS s (
        slot, number, received_at, reason, remote_addr, content_length, body, headers
    )
    SELECT n %% %(size)s, n, %(now)s, %(reason)s, %(remote_addr)s, %(content_length)s,
        %(body)s, %(headers)s::jsonb
    FROM nextval('{SAMPLE_SEQUENCE}') AS n
    ON CONFLICT (slot) DO UPDATE SET
        number = EXCLUDED.number, received_at = EXCLUDED.received_at,
        reason = EXCLUDED.reason, remote_addr = EXCLUDED.remote_addr,
        content_length = EXCLUDED.content_length, body = EXCLUDED.body,
        headers = EXCLUDED.headers
"""  # noqa: S608 - the names are ours, every value is a parameter
_COUNT_UPSERT = f"""
    INSERT INTO {WebhookRefusalCount._meta.db_table} AS c (hour, reason, count, last_at)
    VALUES (%(hour)s, %(reason)s, %(count)s, %(last_at)s)
    ON CONFLICT (hour, reason) DO UPDATE
    SET count = c.count + EXCLUDED.count, last_at = GREATEST(c.last_at, EXCLUDED.last_at)
    RETURNING c.count
"""  # noqa: S608 - the table name is ours, every value is a parameter


def _write_sample(values: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_SAMPLE_UPSERT, values)


def _add_count(*, hour: datetime, reason: str, count: int, last_at: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNT_UPSERT, {"hour": hour, "reason": reason, "count": count, "last_at": last_at}
        )
        return cursor.fetchone()[0]


def _record_in_database(*, reason: str, hour: datetime, now: datetime, sample: dict) -> bool:
    """Without Redis: count and sample in PostgreSQL, in one statement; True for the first
    refusal of the hour for ``reason``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH counted AS ({_COUNT_UPSERT})
            {_SAMPLE_UPSERT}
            RETURNING (SELECT count FROM counted)
            """,  # noqa: S608 - the statements above: our names, every value a parameter
            {**sample, "hour": hour, "count": 1, "last_at": now},
        )
        return cursor.fetchone()[0] == 1
