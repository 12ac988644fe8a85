"""The per-campaign PostgreSQL advisory lock that keeps imports and state changes apart.

An import holds it (session level) for its whole run; a state change or a
settings change takes it for its transaction only, and is refused while an
import holds it. A crashed process's connection closes and the lock goes with
it, so nothing can stay locked by a dead worker.
"""

from django.db import connection

# "CAMP": keeps these keys apart from any other advisory lock in the database.
_NAMESPACE = 0x43414D50


def campaign_lock_try(campaign_id: int) -> bool:
    """Takes the campaign's lock for this session (until released); False when held elsewhere."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_NAMESPACE, campaign_id])
        return bool(cursor.fetchone()[0])


def campaign_lock_release(campaign_id: int) -> None:
    if connection.needs_rollback:
        # Inside a broken outer transaction nothing can run; the lock ends with the session.
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_NAMESPACE, campaign_id])


def campaign_lock_for_transaction(campaign_id: int) -> bool:
    """Takes the lock until the current transaction ends; False while an import holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_NAMESPACE, campaign_id])
        return bool(cursor.fetchone()[0])
