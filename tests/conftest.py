"""Shared test fixtures: named personas, API clients and a clean Redis per test."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.models import Membership, Role, Workspace
from config.redis import get_redis
from messaging.simulator.testing import SimulatorControl, SimulatorProcess

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def clean_redis(settings):
    """Every test starts with an empty (test-only) Redis database."""
    assert settings.REDIS_URL.endswith("/15") or settings.TESTING
    get_redis().flushdb()
    yield
    get_redis.cache_clear()


def _member(username: str, workspace: Workspace, role: Role, **extra):
    user = get_user_model().objects.create_user(
        username=username, password=PASSWORD, is_staff=True, **extra
    )
    Membership.objects.create(workspace=workspace, user=user, role=role)
    return user


@pytest.fixture
def workspace(db):
    return Workspace.objects.create(name="Acme", slug="acme")


@pytest.fixture
def other_workspace(db):
    return Workspace.objects.create(name="Globex", slug="globex")


@pytest.fixture
def owner(workspace):
    """Owns ``workspace``."""
    return _member("olivia", workspace, Role.OWNER)


@pytest.fixture
def agent(workspace):
    """A teammate in ``workspace`` who may read and answer, not configure."""
    return _member("arjun", workspace, Role.AGENT)


@pytest.fixture
def outsider(other_workspace):
    """Owns ``other_workspace``; must never see ``workspace``'s objects."""
    return _member("oscar", other_workspace, Role.OWNER)


@pytest.fixture
def api():
    """``api(user)`` is an APIClient authenticated as ``user`` (or anonymous for None)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture(scope="session")
def simulator():
    """The Graph API simulator in a child process shared by the session; use ``sim``."""
    with SimulatorProcess("--random-seed", "7") as process:
        yield process


@pytest.fixture
def sim(simulator, settings) -> SimulatorControl:
    """The session's simulator, reset before and after the test, and the product pointed at it."""
    simulator.control.reset()
    settings.WHATSAPP_GRAPH_URL = simulator.base_url
    yield simulator.control
    simulator.control.reset()
