# The index retention deletes by, oldest first (webhooks/retention.py). Built concurrently:
# the events table can be large (refused POSTs used to be stored in it) and a plain CREATE
# INDEX would hold the endpoint's INSERTs for as long as the build takes.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('webhooks', '0003_refusals_and_retention'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='webhookevent',
            index=models.Index(fields=['received_at'], name='webhook_event_received_at'),
        ),
    ]
