"""Drops rest_framework.authtoken's table: it held every API token in plain text.

They are not carried over into knox (whose digest of an old key would work): they
have been readable by anyone with the database, its backups or the superuser
admin, and hashing them now would keep those copies valid. API clients log in
again (POST /api/auth/token/) after this release: README, "Upgrading".
The migration records go too, so reinstalling that app would create its table anew.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=[
                "DROP TABLE IF EXISTS authtoken_token",
                "DELETE FROM django_migrations WHERE app = 'authtoken'",
            ],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
