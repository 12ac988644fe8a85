"""Celery tasks of the automatic replies, on the inbox's ``replies`` queue."""

from celery import shared_task
from django.db import OperationalError
from redis.exceptions import RedisError

from automation import services


@shared_task(
    name="automation.inbound_automate",
    queue="replies",
    # The database or Redis blinked: the run released its claim, so try again soon
    # (a STOP must not be lost to a restart).
    autoretry_for=(OperationalError, RedisError),
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=5,
)
def inbound_automate(message_id: int) -> str:
    # Delivered twice (a lost worker, a redelivery), the second run finds the wamid
    # claimed or decided and does nothing.
    return services.inbound_automate(message_id=message_id)["outcome"]
