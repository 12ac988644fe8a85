"""Shared test fixtures: named personas, API clients, a clean Redis per test, the Graph API
simulator (``sim``) and the demo number."""

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.models import Membership, Role, Workspace
from config.redis import get_redis
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID, demo_seed
from graph_simulator.testing import SimulatorControl, SimulatorProcess
from numbers.services import number_add
from tests.factories import make_workspace

PASSWORD = "correct-horse-battery-staple"
# The second WABA of the "two_wabas" seed, so "this id is not in that WABA" can be tested.
OTHER_WABA_ID = "100000000000002"
OTHER_PHONE_NUMBER_ID = "200000000000003"


@pytest.fixture(autouse=True)
def clean_redis(settings):
    """Every test starts with an empty (test-only) Redis database."""
    test_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    # Flushing the product's own Redis would wipe a developer's queues and rates.
    assert settings.REDIS_URL == test_url != os.environ.get("REDIS_URL"), (
        f"tests flush {settings.REDIS_URL}: set TEST_REDIS_URL to a Redis database of its own"
    )
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
    return make_workspace(name="Acme", slug="acme")


@pytest.fixture
def other_workspace(db):
    return make_workspace(name="Globex", slug="globex")


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


# -- the Graph API simulator ------------------------------------------------------------


def two_wabas_seed() -> dict[str, Any]:
    """The demo data plus a second WABA, ``OTHER_WABA_ID``, with one number of its own."""
    seed = demo_seed()
    seed["wabas"].append(
        {
            "id": OTHER_WABA_ID,
            "name": "Other Business",
            "phone_numbers": [
                {
                    "id": OTHER_PHONE_NUMBER_ID,
                    "display_phone_number": "+91 98765 00003",
                    "verified_name": "Other Shop",
                    "quality_rating": "RED",
                    "name_status": "APPROVED",
                    "throughput": {"level": "STANDARD"},
                    "messaging_limit_tier": "TIER_250",
                    "platform_type": "CLOUD_API",
                    "status": "CONNECTED",
                }
            ],
            "templates": [],
        }
    )
    return seed


# The seeds a test may ask ``sim`` for, by name, with @pytest.mark.sim_seed(name).
SIM_SEEDS: dict[str, Callable[[], dict[str, Any]]] = {
    "demo": demo_seed,
    "two_wabas": two_wabas_seed,
}
DEFAULT_SIM_SEED = "demo"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sim_seed(name): the seed the test's ``sim`` simulator runs with (SIM_SEEDS)"
    )


class Simulators:
    """The session's simulator processes: one per seed, started on first use."""

    def __init__(self, seed_dir: Path) -> None:
        self._seed_dir = seed_dir
        self._processes: dict[str, SimulatorProcess] = {}

    def get(self, seed: str) -> SimulatorProcess:
        """The running simulator serving ``seed`` (a key of SIM_SEEDS); raises KeyError if unknown."""
        if seed not in SIM_SEEDS:
            raise KeyError(f"unknown simulator seed {seed!r}; known: {sorted(SIM_SEEDS)}")
        if seed not in self._processes:
            path = self._seed_dir / f"{seed}.json"
            path.write_text(json.dumps(SIM_SEEDS[seed]()))
            # A fixed random seed: fault and webhook rolls repeat from run to run.
            process = SimulatorProcess("--seed", str(path), "--random-seed", "7")
            self._processes[seed] = process.start()
        return self._processes[seed]

    def stop_all(self) -> None:
        for process in self._processes.values():
            process.stop()
        self._processes.clear()


@pytest.fixture(scope="session")
def simulators(tmp_path_factory) -> Iterator[Simulators]:
    """The registry of simulator processes, all stopped at session end; tests use ``sim``."""
    registry = Simulators(tmp_path_factory.mktemp("graph-simulator"))
    yield registry
    registry.stop_all()


@pytest.fixture
def sim(simulators, request, settings) -> Iterator[SimulatorControl]:
    """The Graph API simulator, reset to its seed before and after the test, with the
    product's Graph client (``settings.WHATSAPP_GRAPH_URL``) pointed at it.

    It serves the "demo" seed (graph_simulator.seed.demo_seed) unless the test, its
    class or its module carries ``@pytest.mark.sim_seed(name)`` naming another key of
    SIM_SEEDS, e.g. ``@pytest.mark.sim_seed("two_wabas")`` for a second WABA. Each seed
    gets one process for the whole session, started the first time a test needs it.
    Faults, callback URLs and the like are set per test with ``sim.set_faults(...)``;
    the reset undoes them. ``sim.base_url`` is the simulator's address.
    """
    marker = request.node.get_closest_marker("sim_seed")
    seed = marker.args[0] if marker else DEFAULT_SIM_SEED
    process = simulators.get(seed)
    process.control.reset()
    settings.WHATSAPP_GRAPH_URL = process.base_url
    yield process.control
    process.control.reset()


@pytest.fixture
def token(sim) -> str:
    """The access token ``number`` is added with; modules override it with their own."""
    return DEMO_TOKEN


@pytest.fixture
def number(workspace, token):
    """The first demo number, added through the service (connection test included)."""
    return number_add(
        workspace=workspace,
        label="Main",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
        waba_id=DEMO_WABA_ID,
        access_token=token,
    )
