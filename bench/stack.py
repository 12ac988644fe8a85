"""Shared harness of the engine benchmarks: its own database, simulator, workers, campaign.

Each benchmark runs the whole stack on this machine: PostgreSQL (database
``wac_bench_engine``), Redis (database 8), the Graph API simulator with N numbers and
real Celery workers; everything on loopback, bounded in time, and stopped by
its own pids at the end.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wac_bench_engine")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("PYTEST_VERSION", None)
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Workspace  # noqa: E402
from campaigns.models import (  # noqa: E402
    NOT_DONE_STATES,
    Campaign,
    CampaignStatus,
    CampaignTemplate,
    Recipient,
)
from campaigns.services import campaign_start  # noqa: E402
from config import procs  # noqa: E402
from config.redis import get_redis  # noqa: E402
from graph_simulator.seed import DEMO_TOKEN, DEMO_WABA_ID, demo_seed  # noqa: E402
from graph_simulator.testing import SimulatorProcess  # noqa: E402
from messaging import ratelimit  # noqa: E402
from numbers.models import Number  # noqa: E402
from templates_sync.services import templates_sync  # noqa: E402

TERMINAL = ("sent", "delivered", "read", "failed", "unknown", "cancelled")


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def prepare_database() -> None:
    """Creates and migrates the benchmark database, then empties it."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "createdb.py")], check=True)
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE campaigns_recipient, campaigns_campaigntemplate, campaigns_campaignevent, "
            "campaigns_campaign_numbers, campaigns_campaign, templates_sync_templatestatuschange, "
            "templates_sync_template, numbers_number, accounts_workspace, messaging_rateadjustment CASCADE"
        )
    get_redis().flushdb()


def seed_file(numbers: int, mps: int) -> str:
    """A simulator seed with ``numbers`` phone numbers of the demo WABA, each capped at ``mps``."""
    seed = demo_seed()
    waba = seed["wabas"][0]
    template = waba["phone_numbers"][0]
    waba["phone_numbers"] = [
        {
            **template,
            "id": f"2000000000{i:05d}",
            "display_phone_number": f"+1 555-100-{i:04d}",
            "mps": mps,
        }
        for i in range(1, numbers + 1)
    ]
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    json.dump(seed, handle)
    handle.close()
    return handle.name


@contextmanager
def simulator(numbers: int, *flags: str, mps: int = 0):
    path = seed_file(numbers, mps)
    try:
        with SimulatorProcess("--seed", path, "--keep-messages", "2000000", *flags) as sim:
            yield sim
    finally:
        os.unlink(path)


def setup_workspace(sim, numbers: int, *, max_mps: int = 1000):
    workspace = Workspace.objects.create(name="Bench", slug="bench")
    phone_numbers = [
        Number.objects.create(
            workspace=workspace,
            label=f"bench {i}",
            phone_number_id=f"2000000000{i:05d}",
            waba_id=DEMO_WABA_ID,
            access_token=DEMO_TOKEN,
            max_mps=max_mps,
        )
        for i in range(1, numbers + 1)
    ]
    from django.conf import settings

    settings.WHATSAPP_GRAPH_URL = sim.base_url
    templates_sync(workspace=workspace, number=phone_numbers[0])
    template = workspace_template(workspace)
    return workspace, phone_numbers, template


def workspace_template(workspace):
    from templates_sync.models import Template

    return Template.objects.get(workspace=workspace, name="seasonal_promo", language="en_US")


def create_campaign(workspace, numbers, template, count: int) -> Campaign:
    campaign = Campaign.objects.create(workspace=workspace, name=f"bench {count}")
    campaign.numbers.set(numbers)
    CampaignTemplate.objects.create(campaign=campaign, template=template, weight=1)
    batch = []
    for i in range(count):
        batch.append(
            Recipient(
                campaign=campaign,
                phone=f"+91{7000000000 + i}",
                variables={"body.1": f"Name{i}", "body.2": "FALL25"},
                template=template,
                number=numbers[i % len(numbers)],
                row_number=i + 2,
            )
        )
        if len(batch) == 5000:
            Recipient.objects.bulk_create(batch)
            batch = []
    Recipient.objects.bulk_create(batch)
    return campaign


@contextmanager
def workers(sim, *, count: int = 1, concurrency: int = 8, **env):
    started = []
    from django.conf import settings

    worker_env = {
        # As in production: with DEBUG on, Django keeps every query's text.
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "WHATSAPP_GRAPH_URL": sim.base_url,
        "LOG_LEVEL": "WARNING",
        **{k: str(v) for k, v in env.items()},
    }
    try:
        for i in range(count):
            worker = procs.celery_worker(
                f"bench{i}", "sending,default", concurrency=concurrency, env=worker_env
            )
            worker.start()
            started.append(worker)
        for worker in started:
            deadline = time.monotonic() + 60
            while "ready." not in worker.log_path.read_text(errors="replace"):
                if time.monotonic() > deadline or not worker.alive():
                    raise RuntimeError(f"worker did not start; see {worker.log_path}")
                time.sleep(0.1)
        yield started
    finally:
        for worker in started:
            worker.stop(timeout=20)


def set_rate(rate: float) -> None:
    get_redis().set(ratelimit.RATE_KEY, f"{rate:.4f}")


def start(campaign) -> float:
    """Starts the campaign through the product's own service; returns the monotonic start."""
    started = time.monotonic()
    campaign_start(campaign=campaign, user=None)
    return started


def wait_done(campaign, *, timeout: float, on_tick=None) -> float:
    """Waits until no recipient is left to send; returns the monotonic time it happened."""
    deadline = time.monotonic() + timeout
    while True:
        left = Recipient.objects.filter(campaign=campaign, status__in=NOT_DONE_STATES).count()
        if on_tick is not None:
            on_tick()
        if left == 0:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} recipients still unsent after {timeout:.0f} s")
        time.sleep(0.05)


def status_counts(campaign) -> dict[str, int]:
    from django.db.models import Count

    return dict(campaign.recipients.values_list("status").annotate(n=Count("pk")).order_by())


def now():
    return timezone.now()


__all__ = [
    "TERMINAL",
    "CampaignStatus",
    "command_line",
    "create_campaign",
    "now",
    "prepare_database",
    "set_rate",
    "setup_workspace",
    "simulator",
    "start",
    "status_counts",
    "wait_done",
    "workers",
]
