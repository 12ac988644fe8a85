"""Fixtures for the admin pages: an admin persona and logged-in test clients."""

import pytest
from django.test import Client

from accounts.models import Role
from tests.conftest import _member


@pytest.fixture
def admin_user(workspace):
    """An admin (not owner) of ``workspace``: manages it like the owner."""
    return _member("ada", workspace, Role.ADMIN)


@pytest.fixture
def login():
    """``login(user)`` is a Django test client with ``user`` logged in to the admin."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
