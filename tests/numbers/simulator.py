"""The Graph API simulator as pytest fixtures for the numbers and templates tests.

One simulator process per test session, seeded with the demo data plus a second
WABA (so "this id is not in that WABA" can be tested), and reset before each test.
"""

import json

import pytest

from messaging.simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID, demo_seed
from messaging.simulator.testing import SimulatorControl, SimulatorProcess
from numbers.services import number_add

OTHER_WABA_ID = "100000000000002"
OTHER_PHONE_NUMBER_ID = "200000000000003"
__all__ = [
    "DEMO_PHONE_NUMBER_IDS",
    "DEMO_TOKEN",
    "DEMO_WABA_ID",
    "OTHER_PHONE_NUMBER_ID",
    "OTHER_WABA_ID",
    "graph_simulator",
    "number",
    "sim",
    "token",
]


def _seed() -> dict:
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


@pytest.fixture(scope="session")
def graph_simulator(tmp_path_factory):
    seed = tmp_path_factory.mktemp("graph-simulator") / "seed.json"
    seed.write_text(json.dumps(_seed()))
    with SimulatorProcess("--seed", str(seed)) as process:
        yield process


@pytest.fixture
def sim(graph_simulator, settings) -> SimulatorControl:
    """The simulator, reset to its seed, and the product's Graph client pointed at it."""
    graph_simulator.control.reset()
    settings.WHATSAPP_GRAPH_URL = graph_simulator.base_url
    return graph_simulator.control


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
