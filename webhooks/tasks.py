"""Celery tasks: drain stored events in batches and retry what waits (``webhooks`` queue);
prune what is past retention (``periodic`` queue)."""

from __future__ import annotations

import logging
import os
import time

from celery import shared_task
from django.db import OperationalError
from redis.exceptions import RedisError

from config.redis import get_redis
from webhooks.ingest import DRAIN_BATCH, webhook_events_drain, webhook_events_requeue
from webhooks.refusals import webhook_refusals_flush
from webhooks.retention import webhook_data_prune
from webhooks.statuses import pending_statuses_apply

logger = logging.getLogger(__name__)

# A deadlock or a lost connection is retried soon; past this the sweeper takes over.
MAX_QUICK_RETRIES = 5
# Set while a drain task is queued and has not started: POSTs arriving meanwhile queue
# nothing (one Redis SET instead of a broker publish each; a backlog of thousands of
# one-event tasks is what made processing trail the endpoint). It expires in case that
# task is lost, so the next POST queues another.
DRAIN_QUEUED_KEY = "webhooks:drain-queued"
DRAIN_QUEUED_TTL_MS = 30_000
# A drain requested by a POST starts this much later, so the events of a burst gather into
# one batch: drains started per handful of events cost more CPU per event (task, claim and
# marking statements) and slowed the endpoint sharing the cores (bench/webhooks.py).
DRAIN_GATHER_SECONDS = float(os.environ.get("WEBHOOK_DRAIN_GATHER", "0.2"))
# A drain stops after this long and queues its successor, so a link stays short and the
# queue's other tasks (the periodic retry) get a worker.
DRAIN_SECONDS = 20.0
# A prune stops after this long (well inside the task time limits) and queues the next.
PRUNE_SECONDS = 60.0


def request_drain(*, gather: bool = True, urgent: bool = False) -> None:
    """Make sure a drain task will run after this point (``gather``: after
    DRAIN_GATHER_SECONDS); never raises (the endpoint must answer 200). Call after the
    events to drain are committed.

    ``urgent`` (an event with inbound messages: a person waits for the answer, automatic
    or an agent's) queues a drain at once even when a gathering one is queued: inbound
    traffic is a small share of the events, so the extra tasks cost little, and the
    gathered drain finds what is left.

    Without a broker the events stay "received" and the periodic sweeper queues a drain.
    """
    if urgent:
        gather = False
    else:
        try:
            first = get_redis().set(DRAIN_QUEUED_KEY, "1", nx=True, px=DRAIN_QUEUED_TTL_MS)
        except RedisError:
            # No flag to coalesce on: queue anyway, a drain too many finds nothing and exits.
            first = True
        if not first:
            return
    try:
        # No publish retries: a broker outage must not hold Meta's request open.
        countdown = DRAIN_GATHER_SECONDS if gather else None
        drain_webhook_events.apply_async(countdown=countdown, retry=False)
    except Exception:
        logger.warning("could not queue a webhook drain", exc_info=True)
        if not urgent:
            _forget_queued_drain()


def _forget_queued_drain() -> None:
    try:
        get_redis().delete(DRAIN_QUEUED_KEY)
    except RedisError:
        logger.warning("could not clear %s; it expires by itself", DRAIN_QUEUED_KEY)


@shared_task(queue="webhooks", bind=True, ignore_result=True, max_retries=MAX_QUICK_RETRIES)
def drain_webhook_events(self) -> None:
    """Process received events in batches until none are left (see
    ingest.webhook_events_drain); a backlog brings in a second worker."""
    # Cleared before the first claim: an event committed after this point either sees the
    # flag gone and queues a new drain, or is committed before the claim and is seen.
    _forget_queued_drain()
    deadline = time.monotonic() + DRAIN_SECONDS
    helped = False
    try:
        while webhook_events_drain(limit=DRAIN_BATCH) == DRAIN_BATCH:
            if not helped:
                # A full batch means a backlog: another worker can drain beside this one
                # (SKIP LOCKED keeps their batches apart).
                request_drain(gather=False)
                helped = True
            if time.monotonic() > deadline:
                request_drain(gather=False)
                return
    except OperationalError as error:
        # The batch's transaction rolled back whole: its events are still "received".
        if self.request.retries >= MAX_QUICK_RETRIES:
            logger.warning("webhook drain still failing (%s); the sweeper re-queues", error)
            return
        raise self.retry(exc=error, countdown=1 + 2 * self.request.retries) from error


@shared_task(queue="webhooks", ignore_result=True)
def retry_webhook_work() -> None:
    """Periodic: apply statuses whose message has appeared, re-queue a drain for events a
    lost task left behind."""
    applied = pending_statuses_apply()
    if applied:
        logger.info("applied %d pending statuses", applied)
    if webhook_events_requeue():
        # The queued flag may belong to the lost task: queue regardless of it.
        _forget_queued_drain()
        request_drain()


@shared_task(queue="webhooks", ignore_result=True)
def flush_webhook_refusals() -> None:
    """Periodic: move the refusal counts kept in Redis into the admin's counters."""
    webhook_refusals_flush()


@shared_task(queue="periodic", ignore_result=True)
def prune_webhook_data() -> None:
    """Daily: delete webhook events, refusal samples and counters older than
    WEBHOOK_RETENTION_DAYS (webhooks/retention.py); a run with more left queues the next."""
    result = webhook_data_prune(seconds=PRUNE_SECONDS)
    logger.info(
        "webhook retention: deleted %d events (%d never processed), %d refusal samples, "
        "%d refusal counters older than %s",
        result.events,
        result.unprocessed,
        result.samples,
        result.counters,
        result.cutoff.isoformat(),
    )
    if result.more:
        prune_webhook_data.apply_async()
