"""Queueing a link of a number's lane: the one thing the layers below the engine ask of it.

Campaign start, resume and resend (``campaigns``) need lanes to run, but
campaigns sit below the engine, which calls their services. So this module
imports nothing of the project but ``config``, and queues the engine's task by
its name; ``tests/engine`` checks that the name is the task's.
"""

from __future__ import annotations

from celery import current_app

from config.commit import after_commit
from config.redis import get_redis

SEND_LANE_TASK = "messaging.tasks.send_lane"
SEND_LANE_QUEUE = "sending"
# Set while a link of the number is queued: at most one waits per lane, so the
# sweeper and every start/resume can kick freely without piling up links.
KICK_PREFIX = "lane:kick:"
KICK_TTL_SECONDS = 30


def lane_kick(*, number_id: int, countdown: float = 0) -> bool:
    """Queues a link of the number's lane unless one is already queued. True when queued."""
    ttl = int(KICK_TTL_SECONDS + countdown)
    if not get_redis().set(f"{KICK_PREFIX}{number_id}", "1", nx=True, ex=ttl):
        return False
    current_app.send_task(
        SEND_LANE_TASK,
        args=(number_id,),
        queue=SEND_LANE_QUEUE,
        countdown=countdown if countdown > 0 else None,
    )
    return True


def lane_kick_clear(*, number_id: int) -> None:
    """Called by the link as it starts: the next kick may queue another."""
    get_redis().delete(f"{KICK_PREFIX}{number_id}")


def lanes_kick(*, number_ids: list[int]) -> None:
    for number_id in number_ids:
        lane_kick(number_id=number_id)


def lanes_kick_after_commit(*, number_ids: list[int]) -> None:
    """One link for each of the numbers, once the state change that needs them is committed."""
    after_commit(lanes_kick, number_ids=list(number_ids))
