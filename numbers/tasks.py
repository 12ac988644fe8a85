"""Celery tasks of the numbers app: the periodic refresh of what Meta reports."""

from celery import shared_task

from numbers.models import Number
from numbers.services import number_test_connection


@shared_task(queue="periodic", ignore_result=True)
def refresh_all_numbers() -> int:
    """Queue one connection test per number (beat, hourly): quality and tier change at Meta.

    One task per number, so a slow Graph answer for one cannot push the others past
    the task time limit.
    """
    ids = list(Number.objects.order_by("pk").values_list("pk", flat=True))
    for number_id in ids:
        refresh_number.delay(number_id)
    return len(ids)


@shared_task(queue="periodic", ignore_result=True)
def refresh_number(number_id: int) -> None:
    """Run the connection test of one number (gone since it was queued: nothing to do)."""
    number = Number.objects.filter(pk=number_id).first()
    if number is not None:
        number_test_connection(number=number)
