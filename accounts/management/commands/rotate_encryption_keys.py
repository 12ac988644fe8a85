"""Re-encrypts every stored secret under the first key of FIELD_ENCRYPTION_KEY."""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from config.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-encrypts secrets at rest with the newest key. Put the new key first in "
        "FIELD_ENCRYPTION_KEY, run this, then drop the old key."
    )

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if not isinstance(field, EncryptedTextField):
                    continue
                name = field.attname
                rows = model._base_manager.exclude(**{name: ""}).exclude(
                    **{f"{name}__isnull": True}
                )
                with transaction.atomic():
                    # Reading decrypts with any listed key; writing encrypts with the first.
                    for pk, plaintext in rows.values_list("pk", name).iterator():
                        model._base_manager.filter(pk=pk).update(**{name: plaintext})
                        total += 1
        self.stdout.write(f"{total} secrets re-encrypted under the newest key")
