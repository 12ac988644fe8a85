# The stored counters were written by six code paths and repaired by a
# reconcile step; counts are read from the recipient rows instead.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
    ]

    operations = [
        migrations.RemoveField(model_name="campaign", name=name)
        for name in ("total", "sent", "delivered", "read", "failed", "replied", "cancelled")
    ]
