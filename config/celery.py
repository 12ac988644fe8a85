"""The Celery app: JSON only, late acks, one task per worker slot, separate queues.

Queues: ``sending`` (lanes), ``replies`` (the inbox's replies and read receipts,
which must never wait behind a campaign's lane links), ``webhooks`` (event
processing), ``periodic`` (beat tasks such as the rate controller and sweeper)
and ``default``. A send
backlog must never delay the rate controller or receipt processing, so
operators run at least one worker per queue group (see docs/production.md).
Each task names its queue in its decorator.
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("wacampaigns")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [
    Queue(name) for name in ("sending", "replies", "webhooks", "periodic", "default")
]
app.conf.task_default_queue = "default"
app.conf.imports = ("config.tasks",)
app.autodiscover_tasks()
