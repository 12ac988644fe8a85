# The webhook models moved to the webhooks app, which keeps their tables: state only.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0002_webhooks'),
        ('webhooks', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # Models that point at others first, so no state ever holds a dangling reference.
            state_operations=[
                migrations.DeleteModel(name='InboundMessage'),
                migrations.DeleteModel(name='PendingStatus'),
                migrations.DeleteModel(name='StatusUpdate'),
                migrations.DeleteModel(name='WebhookEvent'),
            ],
            database_operations=[],
        ),
    ]
