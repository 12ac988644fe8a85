"""Secrets are ciphertext in the database and never shown by the admin or the API."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from config import crypto
from tests.conftest import PASSWORD
from tests.testapp.models import Gadget

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.testapp.urls")]
SECRET = "EAAG-very-secret-token"


def raw_column(gadget) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM testapp_gadget WHERE id = %s", [gadget.pk])
        return cursor.fetchone()[0]


def test_the_database_holds_ciphertext_and_python_sees_plaintext(workspace):
    gadget = Gadget.objects.create(workspace=workspace, name="g", api_key=SECRET)
    stored = raw_column(gadget)
    assert stored.startswith("fernet:")
    assert SECRET not in stored
    assert Gadget.objects.get(pk=gadget.pk).api_key == SECRET


def test_the_api_never_returns_the_secret(api, owner, workspace):
    created = api(owner).post("/api/test/gadgets/", {"name": "g", "api_key": SECRET}, format="json")
    assert created.status_code == 201
    assert SECRET not in created.content.decode()
    shown = api(owner).get(f"/api/test/gadgets/{created.json()['id']}/")
    assert SECRET not in shown.content.decode()
    assert "api_key" not in shown.json()


def test_the_admin_form_never_renders_the_secret(client, owner, workspace):
    gadget = Gadget.objects.create(workspace=workspace, name="g", api_key=SECRET)
    client.login(username="olivia", password=PASSWORD)
    page = client.get(reverse("admin:testapp_gadget_change", args=[gadget.pk]))
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert 'type="password"' in page.content.decode()


def test_keys_rotate_without_losing_secrets(settings, workspace):
    gadget = Gadget.objects.create(workspace=workspace, name="g", api_key=SECRET)
    old_key = settings.FIELD_ENCRYPTION_KEY
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = f"{new_key},{old_key}"
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    settings.FIELD_ENCRYPTION_KEY = new_key  # the old key is gone now
    assert Gadget.objects.get(pk=gadget.pk).api_key == SECRET
    settings.FIELD_ENCRYPTION_KEY = old_key
    with pytest.raises(crypto.DecryptionError, match="FIELD_ENCRYPTION_KEY"):
        Gadget.objects.get(pk=gadget.pk)
