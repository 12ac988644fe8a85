"""Celery tasks of the sending engine: lane links, the rate controller, the sweeper."""

from celery import shared_task
from django.utils import timezone

from messaging import services
from messaging.lanes import lane_run, next_due_at, running_campaigns
from messaging.webhook_processing import pending_statuses_apply


@shared_task(queue="sending", ignore_result=True)
def send_lane(number_id: int) -> str:
    """One link of the number's lane; queues its successor while there is due work."""
    services.lane_kick_clear(number_id=number_id)
    result = lane_run(number_id)
    # A campaign paused or cancelled while this link sent: its last in-flight
    # results are in now, so this is when its counters can be made exact.
    for campaign in services.stopped_campaigns(result.campaigns):
        services.campaign_counters_reconcile(campaign=campaign)
    if result.claimed:
        # Receipts that raced this link's answers were parked; their messages are
        # recorded now, so apply them here rather than at the next periodic retry.
        pending_statuses_apply()
    if result.state == "more":
        services.lane_kick(number_id=number_id)
    elif result.state == "idle":
        due = next_due_at(number_id)
        if due is not None:
            wait = max(0.0, (due - timezone.now()).total_seconds())
            services.lane_kick(number_id=number_id, countdown=wait)
        for campaign in running_campaigns(number_id):
            services.campaign_finish(campaign=campaign)
    return result.state


@shared_task(queue="periodic", ignore_result=True, soft_time_limit=20, time_limit=30)
def periodic_rate_controller() -> None:
    services.rate_controller_tick()


@shared_task(queue="periodic", ignore_result=True, soft_time_limit=50, time_limit=60)
def periodic_sweep() -> None:
    services.sweep()
