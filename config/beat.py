"""Every periodic task, registered from code in one place.

``install_periodic_tasks`` runs after each ``migrate`` and upserts these rows in
django-celery-beat's tables (the DatabaseScheduler reads them), so the schedule
in the database always matches the code. Rows this module created earlier but
no longer lists are disabled, not deleted, so an operator's history survives.
"""

from dataclasses import dataclass

from django.db import transaction

CODE_PREFIX = "code: "


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str
    every_seconds: float
    queue: str = "periodic"
    # Beat skips a run still queued after this long: a stalled worker must not
    # come back to a pile of stale controller ticks.
    expires_seconds: float | None = None


PERIODIC_TASKS: list[Periodic] = [
    Periodic("beat heartbeat", "config.tasks.periodic_heartbeat", 30, expires_seconds=30),
    Periodic("numbers refresh", "numbers.tasks.refresh_all_numbers", 3600, expires_seconds=1800),
    Periodic(
        "start due scheduled campaigns",
        "campaigns.tasks.start_due_campaigns",
        30,
        expires_seconds=60,
    ),
    Periodic(
        "send rate controller", "messaging.tasks.periodic_rate_controller", 5, expires_seconds=5
    ),
    Periodic("sending sweeper", "messaging.tasks.periodic_sweep", 10, expires_seconds=10),
    Periodic(
        "webhooks retry",
        "webhooks.tasks.retry_webhook_work",
        10,
        queue="webhooks",
        expires_seconds=10,
    ),
    Periodic("templates sync", "templates_sync.tasks.sync_all_templates", 900, expires_seconds=600),
    Periodic(
        "webhook refusals flush",
        "webhooks.tasks.flush_webhook_refusals",
        10,
        queue="webhooks",
        expires_seconds=10,
    ),
    Periodic(
        "webhooks retention", "webhooks.tasks.prune_webhook_data", 86400, expires_seconds=3600
    ),
    Periodic(
        "wizard uploads prune", "campaigns.tasks.prune_wizard_uploads", 3600, expires_seconds=3600
    ),
    Periodic(
        "notifications sweep",
        "notifications.tasks.sweep_notifications",
        15,
        expires_seconds=30,
    ),
]


def install_periodic_tasks(**_signal_kwargs) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    with transaction.atomic():
        names = set()
        for periodic in PERIODIC_TASKS:
            name = CODE_PREFIX + periodic.name
            names.add(name)
            if periodic.every_seconds < 1:
                every, period = (
                    int(periodic.every_seconds * 1_000_000),
                    IntervalSchedule.MICROSECONDS,
                )
            else:
                every, period = int(periodic.every_seconds), IntervalSchedule.SECONDS
            schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
            PeriodicTask.objects.update_or_create(
                name=name,
                defaults={
                    "task": periodic.task,
                    "interval": schedule,
                    "crontab": None,
                    "queue": periodic.queue,
                    "expire_seconds": periodic.expires_seconds,
                    "enabled": True,
                },
            )
        PeriodicTask.objects.filter(name__startswith=CODE_PREFIX).exclude(name__in=names).update(
            enabled=False
        )
