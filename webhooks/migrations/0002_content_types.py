# The moved models' content types follow them, so the permissions granted on them (and the
# admin log entries naming them) stay attached: the rows are relabelled, not recreated.

from django.conf import settings
from django.db import migrations

MODELS = ('webhookevent', 'statusupdate', 'pendingstatus', 'inboundmessage')


def relabel(apps, from_label, to_label, using):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    types = ContentType.objects.using(using)
    for model in MODELS:
        old = types.filter(app_label=from_label, model=model).first()
        if old is None:
            continue
        new = types.filter(app_label=to_label, model=model).first()
        if new is None:
            old.app_label = to_label
            old.save(update_fields=['app_label'])
        else:
            # Both exist after a rollback: post_migrate recreated the other label's rows.
            merge(apps, old, new, using)
    ContentType.objects.clear_cache()


def merge(apps, old, new, using):
    """Move the grants and admin log entries of ``old`` to ``new``, then delete ``old``."""
    Permission = apps.get_model('auth', 'Permission')
    grants = [
        (apps.get_model('auth', 'Group').permissions.through, 'group_id'),
        (apps.get_model(settings.AUTH_USER_MODEL).user_permissions.through, 'user_id'),
    ]
    for permission in Permission.objects.using(using).filter(content_type=old):
        target = Permission.objects.using(using).filter(
            content_type=new, codename=permission.codename
        ).first()
        if target is None:
            permission.content_type = new
            permission.save(update_fields=['content_type'])
            continue
        for through, owner in grants:
            rows = through.objects.using(using)
            granted = rows.filter(permission=target).values_list(owner, flat=True)
            rows.filter(permission=permission).exclude(**{f'{owner}__in': granted}).update(
                permission=target
            )
        permission.delete()
    apps.get_model('admin', 'LogEntry').objects.using(using).filter(content_type=old).update(
        content_type=new
    )
    old.delete()


def forwards(apps, schema_editor):
    relabel(apps, 'messaging', 'webhooks', schema_editor.connection.alias)


def backwards(apps, schema_editor):
    relabel(apps, 'webhooks', 'messaging', schema_editor.connection.alias)


class Migration(migrations.Migration):

    dependencies = [
        ('admin', '0003_logentry_add_action_flag_choices'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('messaging', '0003_webhooks_moved'),
        ('webhooks', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
