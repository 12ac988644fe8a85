"""Fixtures for the sending engine: numbers and templates from the simulator, a running campaign."""

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest
import redis
from django.db import connection

from campaigns.models import Campaign, CampaignStatus
from config import procs
from config.celery import app as celery_app
from config.redis import get_redis
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from numbers.models import Number
from templates_sync.models import Template
from templates_sync.services import templates_sync
from tests.factories import make_campaign, make_number, make_recipients


@dataclass
class Setup:
    workspace: object
    numbers: list[Number]
    promo: Template  # seasonal_promo en_US: body.1, body.2
    hello: Template  # hello_world: no parameters

    def campaign(self, *, count: int, numbers=None, status=CampaignStatus.RUNNING, phones=None):
        """A campaign sending ``promo`` to ``count`` recipients (or one per phone of
        ``phones``), spread round-robin over ``numbers`` (default: the first)."""
        numbers = numbers or self.numbers[:1]
        campaign = make_campaign(
            workspace=self.workspace,
            name=f"c{Campaign.objects.count() + 1}",
            numbers=numbers,
            templates=[self.promo],
            status=status,
        )
        make_recipients(
            campaign=campaign, count=count, phones=phones, template=self.promo, numbers=numbers
        )
        return campaign


@pytest.fixture
def engine(sim, workspace) -> Setup:
    """Both demo numbers (uncapped here) and the simulator's templates, synced for real."""
    sim.set_faults(mps=0)
    numbers = [
        make_number(
            workspace=workspace,
            label=f"demo {i + 1}",
            phone_number_id=phone_number_id,
            waba_id=DEMO_WABA_ID,
            access_token=DEMO_TOKEN,
            # Nothing from Meta's profile: no tier, so pre-flight only warns about headroom.
            display_phone_number="",
            messaging_limit_tier="",
            max_mps=1000,
        )
        for i, phone_number_id in enumerate(DEMO_PHONE_NUMBER_IDS)
    ]
    result = templates_sync(workspace=workspace, number=numbers[0])
    assert not result.errors, result.errors
    templates = Template.objects.filter(workspace=workspace)
    return Setup(
        workspace=workspace,
        numbers=numbers,
        promo=templates.get(name="seasonal_promo", language="en_US"),
        hello=templates.get(name="hello_world"),
    )


def worker_env(sim, settings, **extra) -> dict[str, str]:
    """Environment for a real Celery worker on the test database, Redis and simulator."""
    db = connection.settings_dict
    return {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_REDIS_URL": settings.REDIS_URL,
        "WHATSAPP_GRAPH_URL": sim.base_url,
        # A dead worker's lease must lapse quickly for the sweeper to step in.
        "LANE_LEASE_SECONDS": "3",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture
def start_worker(sim, settings, tmp_path):
    """``start_worker(name)`` runs a real worker (sending, replies, webhooks, default queues); stopped after
    the test. ``restart=True``: config.procs restarts it when it exits, as the demo's are."""
    started: list[procs.ManagedProcess] = []

    def start(
        name: str = "w1", *, concurrency: int = 4, restart: bool = False, **env
    ) -> procs.ManagedProcess:
        worker = procs.celery_worker(
            name,
            "sending,replies,webhooks,default",
            concurrency=concurrency,
            env=worker_env(sim, settings, **env),
            restart=restart,
        )
        worker.log_dir = tmp_path
        started.append(worker.start())
        wait_worker_ready(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=10)


def wait_worker_ready(worker, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while "ready." not in worker.log_path.read_text(errors="replace"):
        if not worker.alive():
            raise RuntimeError(f"worker died: {worker.log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker not ready: {worker.log_path.read_text()[-2000:]}")
        time.sleep(0.1)


class PrivateRedis:
    """A redis-server of the test's own, which it may stop and restart empty."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis did not start"
                time.sleep(0.05)

    def restart(self) -> None:
        """Stops it (everything in it is lost, as it keeps nothing on disk) and starts it again."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(settings):
    """Points this process (rate store and Celery broker) at a Redis of the test's own."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed here (Redis runs elsewhere)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = PrivateRedis(port)
    server.start()
    old_broker = celery_app.conf.broker_url
    settings.REDIS_URL = server.url
    settings.CELERY_BROKER_URL = server.url
    _use_broker(server.url)
    get_redis.cache_clear()
    yield server
    _use_broker(old_broker)
    get_redis.cache_clear()
    server.stop()


def _use_broker(url: str) -> None:
    # Celery caches its connection and producer pools per app; drop them so the
    # next send opens a connection to ``url``.
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
