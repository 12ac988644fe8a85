"""Celery tasks of the sending engine: lane links, the rate controller, the sweeper."""

from celery import shared_task
from django.utils import timezone

from campaigns.services import campaign_finish_if_done
from messaging import controller, sweeper
from messaging.kick import lane_kick, lane_kick_clear
from messaging.lanes import lane_run, next_due_at, running_campaigns
from messaging.signals import sends_recorded


@shared_task(queue="sending", ignore_result=True)
def send_lane(number_id: int) -> str:
    """One link of the number's lane; queues its successor while there is due work."""
    lane_kick_clear(number_id=number_id)
    result = lane_run(number_id)
    if result.claimed:
        sends_recorded.send(sender=send_lane, number_id=number_id)
    if result.state == "more":
        lane_kick(number_id=number_id)
    elif result.state == "idle":
        due = next_due_at(number_id)
        if due is not None:
            wait = max(0.0, (due - timezone.now()).total_seconds())
            lane_kick(number_id=number_id, countdown=wait)
        for campaign in running_campaigns(number_id):
            campaign_finish_if_done(campaign=campaign)
    return result.state


@shared_task(queue="periodic", ignore_result=True, soft_time_limit=20, time_limit=30)
def periodic_rate_controller() -> None:
    controller.rate_controller_tick()


@shared_task(queue="periodic", ignore_result=True, soft_time_limit=50, time_limit=60)
def periodic_sweep() -> None:
    sweeper.sweep()
