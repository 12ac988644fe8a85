"""A workspace-owned model with a secret, to test the shared tenancy and encryption parts."""

from django.db import models

from accounts.models import WorkspaceOwned
from config.fields import EncryptedTextField


class Gadget(WorkspaceOwned):
    name = models.CharField(max_length=100)
    api_key = EncryptedTextField(blank=True)

    def __str__(self) -> str:
        return self.name
