"""Project-wide periodic tasks that belong to no single app."""

import time

from celery import shared_task

from config.redis import get_redis

BEAT_HEARTBEAT_KEY = "beat:heartbeat"


@shared_task(queue="periodic", ignore_result=True)
def periodic_heartbeat() -> None:
    """Records that beat and a periodic worker are alive; /healthz reports its age."""
    get_redis().set(BEAT_HEARTBEAT_KEY, f"{time.time():.3f}", ex=3600)
