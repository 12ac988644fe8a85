# The webhook models, moved from messaging: their tables stay as they are (state only).

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0001_initial'),
        ('campaigns', '0001_initial'),
        ('numbers', '0001_initial'),
        # The tables, created by messaging when the models lived there.
        ('messaging', '0002_webhooks'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='StatusUpdate',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('message_key', models.CharField(max_length=160)),
                        ('status', models.CharField(max_length=16)),
                        ('wamid', models.CharField(blank=True, max_length=128)),
                        ('phone_number_id', models.CharField(blank=True, max_length=32)),
                        ('wa_id', models.CharField(blank=True, max_length=32)),
                        ('callback_data', models.CharField(blank=True, max_length=512)),
                        ('at', models.DateTimeField()),
                        ('conversation', models.JSONField(blank=True, null=True)),
                        ('pricing', models.JSONField(blank=True, null=True)),
                        ('errors', models.JSONField(blank=True, null=True)),
                        ('outcome', models.CharField(choices=[('applied', 'Applied'), ('unchanged', 'Unchanged'), ('pending', 'Waiting for its message'), ('ignored', 'Ignored'), ('expired', 'Expired unmatched')], default='pending', max_length=10)),
                        ('note', models.CharField(blank=True, max_length=255)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('recipient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='status_updates', to='campaigns.recipient')),
                    ],
                    options={
                        'db_table': 'messaging_statusupdate',
                        'ordering': ['at', 'pk'],
                    },
                ),
                migrations.CreateModel(
                    name='PendingStatus',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('wamid', models.CharField(blank=True, db_index=True, max_length=128)),
                        ('callback_recipient_id', models.BigIntegerField(blank=True, db_index=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('last_tried_at', models.DateTimeField(blank=True, null=True)),
                        ('update', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='pending', to='webhooks.statusupdate')),
                    ],
                    options={
                        'verbose_name_plural': 'pending statuses',
                        'db_table': 'messaging_pendingstatus',
                        'ordering': ['pk'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('body', models.BinaryField()),
                        ('headers', models.JSONField(blank=True, default=dict)),
                        ('signature_valid', models.BooleanField()),
                        ('status', models.CharField(choices=[('received', 'Received'), ('processed', 'Processed'), ('failed', 'Failed'), ('flagged', 'Flagged')], default='received', max_length=10)),
                        ('error', models.TextField(blank=True)),
                        ('outcome', models.JSONField(blank=True, default=dict)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('processed_at', models.DateTimeField(blank=True, null=True)),
                        ('requeued_at', models.DateTimeField(blank=True, null=True)),
                        ('dedupe_key', models.CharField(db_index=True, max_length=64)),
                    ],
                    options={
                        'db_table': 'messaging_webhookevent',
                        'ordering': ['-pk'],
                        'permissions': [('reprocess_webhookevent', 'Can reprocess webhook events')],
                        'indexes': [models.Index(condition=models.Q(('status', 'received')), fields=['received_at'], name='webhook_event_unprocessed')],
                    },
                ),
                migrations.AddField(
                    model_name='statusupdate',
                    name='event',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='webhooks.webhookevent'),
                ),
                migrations.CreateModel(
                    name='InboundMessage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('message_id', models.CharField(max_length=128)),
                        ('wa_id', models.CharField(max_length=32)),
                        ('contact_name', models.CharField(blank=True, max_length=256)),
                        ('type', models.CharField(max_length=32)),
                        ('text', models.TextField(blank=True)),
                        ('payload', models.TextField(blank=True)),
                        ('media', models.JSONField(blank=True, null=True)),
                        ('context_wamid', models.CharField(blank=True, max_length=128)),
                        ('raw', models.JSONField(blank=True, default=dict)),
                        ('at', models.DateTimeField()),
                        ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('campaign', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='inbound_messages', to='campaigns.campaign')),
                        ('number', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='inbound_messages', to='numbers.number')),
                        ('recipient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='inbound_messages', to='campaigns.recipient')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.workspace')),
                        ('event', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='webhooks.webhookevent')),
                    ],
                    options={
                        'db_table': 'messaging_inboundmessage',
                        'ordering': ['-at', '-pk'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='statusupdate',
                    constraint=models.UniqueConstraint(fields=('message_key', 'status'), name='unique_status_update'),
                ),
                migrations.AddIndex(
                    model_name='inboundmessage',
                    index=models.Index(fields=['number', 'wa_id', 'at'], name='inbound_conversation'),
                ),
                migrations.AddIndex(
                    model_name='inboundmessage',
                    index=models.Index(condition=models.Q(('recipient__isnull', True), models.Q(('context_wamid', ''), _negated=True)), fields=['context_wamid'], name='inbound_unlinked_context'),
                ),
                migrations.AddConstraint(
                    model_name='inboundmessage',
                    constraint=models.UniqueConstraint(fields=('number', 'message_id'), name='unique_inbound_message'),
                ),
            ],
            database_operations=[],
        ),
    ]
