# Refused webhook POSTs become a counter per hour and reason and a ring of samples
# (webhooks/refusals.py), numbered by a sequence; events get an index for retention (0004).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0002_content_types'),
    ]

    operations = [
        migrations.CreateModel(
            name='WebhookRefusalCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('reason', models.CharField(choices=[('missing signature', 'Missing signature'), ('bad signature', 'Bad signature'), ('no app secret', 'No app secret configured'), ('body too large', 'Body too large')], max_length=20)),
                ('count', models.PositiveBigIntegerField(default=0)),
                ('last_at', models.DateTimeField()),
            ],
            options={
                'ordering': ['-hour', 'reason'],
            },
        ),
        migrations.CreateModel(
            name='WebhookRefusalSample',
            fields=[
                ('slot', models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ('number', models.BigIntegerField()),
                ('received_at', models.DateTimeField()),
                ('reason', models.CharField(choices=[('missing signature', 'Missing signature'), ('bad signature', 'Bad signature'), ('no app secret', 'No app secret configured'), ('body too large', 'Body too large')], max_length=20)),
                ('remote_addr', models.CharField(blank=True, max_length=64)),
                ('content_length', models.BigIntegerField(blank=True, null=True)),
                ('body', models.BinaryField()),
                ('headers', models.JSONField(blank=True, default=dict)),
            ],
            options={
                'ordering': ['-number'],
            },
        ),
        migrations.AddConstraint(
            model_name='webhookrefusalcount',
            constraint=models.UniqueConstraint(fields=('hour', 'reason'), name='unique_webhook_refusal_count'),
        ),
        migrations.RunSQL(
            sql='CREATE SEQUENCE webhooks_refusal_sample_number',
            reverse_sql='DROP SEQUENCE webhooks_refusal_sample_number',
        ),
        # Both tables are updated in place on every refusal: room on each page lets those
        # be HOT updates, whose old versions are pruned without waiting for a vacuum.
        migrations.RunSQL(
            sql=[
                'ALTER TABLE webhooks_webhookrefusalcount SET (fillfactor = 50)',
                'ALTER TABLE webhooks_webhookrefusalsample SET (fillfactor = 50)',
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
