"""Benchmark: signed status webhook POSTs per second the endpoint accepts under gunicorn,
answer time p50/p99, the lag until a Celery worker on the webhooks queue applied all, and
the statuses applied per second.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/wac_bench python bench/webhooks.py
       [--messages 3000] [--connections 16] [--duration 60] [--web-workers 2]
       [--celery-concurrency 2] [--statuses-per-post 1] [--rate 0] [--process-after]
       [--redis-url redis://127.0.0.1:6379/14]

It migrates the benchmark database, creates a running campaign with ``--messages`` sent
recipients, starts gunicorn on a free loopback port and one Celery worker (webhooks queue),
then POSTs sent, delivered and read for every message (one status per POST by default:
Meta's worst case; ``--statuses-per-post`` batches them as Meta does under load), in
shuffled order, from ``--connections`` keep-alive connections, as fast as answered or at
``--rate`` POSTs per second. ``--process-after`` starts the worker only once every POST
was answered, so processing is measured alone (statuses applied per second, from the
first to the last event processed). Both processes are stopped by pid at the end.
Everything shares this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from servers import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

APP_SECRET = "bench-app-secret"  # noqa: S105 - signs loopback test traffic only
PNID = "209000000000001"
WABA_ID = "109000000000001"
T0 = 1735689600


def setup_database(messages: int) -> list[str]:
    """A running campaign with ``messages`` sent recipients; returns their wamids."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.utils import timezone

    from accounts.models import Workspace
    from campaigns.models import Campaign, CampaignTemplate, Recipient
    from numbers.models import Number
    from templates_sync.models import Template
    from webhooks.models import InboundMessage, StatusUpdate, WebhookEvent

    now = timezone.now()
    Campaign.objects.filter(workspace__slug="bench-webhooks").delete()
    Workspace.objects.filter(slug="bench-webhooks").delete()
    StatusUpdate.objects.all().delete()
    InboundMessage.objects.all().delete()
    WebhookEvent.objects.all().delete()
    workspace = Workspace.objects.create(name="Bench webhooks", slug="bench-webhooks")
    number = Number.objects.create(
        workspace=workspace,
        phone_number_id=PNID,
        waba_id=WABA_ID,
        access_token="unused",  # noqa: S106
    )
    template = Template.objects.create(
        workspace=workspace,
        waba_id=WABA_ID,
        name="bench",
        language="en_US",
        status="APPROVED",
        synced_at=now,
        last_seen_at=now,
        status_changed_at=now,
    )
    campaign = Campaign.objects.create(
        workspace=workspace, name="bench", status="running", started_at=now
    )
    campaign.numbers.set([number])
    CampaignTemplate.objects.create(campaign=campaign, template=template)
    wamids = [f"wamid.bench.{i}" for i in range(messages)]
    Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign,
            phone=f"+9198{i:08d}",
            template=template,
            number=number,
            status="sent",
            wamid=wamid,
            sent_at=now,
            attempts=1,
        )
        for i, wamid in enumerate(wamids)
    )
    return wamids


def bodies(wamids: list[str], per_post: int) -> list[bytes]:
    items = [
        {
            "id": wamid,
            "status": state,
            "timestamp": str(T0 + offset),
            "recipient_id": "919800000000",
        }
        for wamid in wamids
        for offset, state in enumerate(("sent", "delivered", "read"))
    ]
    random.Random(7).shuffle(items)
    posts = []
    for start in range(0, len(items), per_post):
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": PNID},
            "statuses": items[start : start + per_post],
        }
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
        }
        posts.append(json.dumps(body).encode())
    return posts


async def post_all(
    url: str, posts: list[bytes], connections: int, duration: float, rate: float
) -> dict:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    queue = iter(enumerate(posts))
    began = time.monotonic()
    deadline = began + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        for index, body in queue:
            if rate:
                # Open loop: POST number i leaves at i / rate, whatever the answers take.
                await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
            if time.monotonic() > deadline:
                return
            signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                codes[response.status] = codes.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "codes": codes}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="max seconds of posting")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--statuses-per-post", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0, help="POSTs per second; 0: max")
    parser.add_argument(
        "--process-after", action="store_true", help="start the worker after the last POST"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--lag-timeout", type=float, default=300.0)
    args = parser.parse_args()
    if "wac_bench" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("set DATABASE_URL to the benchmark database (…/wac_bench)")

    os.environ["REDIS_URL"] = args.redis_url
    os.environ["WHATSAPP_APP_SECRET"] = APP_SECRET
    wamids = setup_database(args.messages)
    posts = bodies(wamids, args.statuses_per_post)

    from django.db.models import Count, Max, Min

    from config import procs
    from webhooks.models import StatusUpdate, WebhookEvent

    secrets = json.loads((ROOT / "var" / "dev-secrets.json").read_text())
    env = {
        "DEBUG": "0",
        "SECRET_KEY": secrets["SECRET_KEY"],
        "FIELD_ENCRYPTION_KEY": secrets["FIELD_ENCRYPTION_KEY"],
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain http on the loopback: no TLS to redirect to.
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
    }
    port = free_port()
    web = procs.gunicorn(bind=f"127.0.0.1:{port}", workers=args.web_workers, env=env)
    web.argv = [a for a in web.argv if a not in ("--access-logfile", "-")]
    web.name = "bench-webhooks-web"
    worker = procs.celery_worker(
        "bench-webhooks", "webhooks", concurrency=args.celery_concurrency, env=env
    )
    started_processes = [web.start()]
    if not args.process_after:
        started_processes.append(worker.start())
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        result = asyncio.run(
            post_all(
                f"http://127.0.0.1:{port}/webhooks/whatsapp/",
                posts,
                args.connections,
                args.duration,
                args.rate,
            )
        )
        if args.process_after:
            started_processes.append(worker.start())
        answered_at = time.monotonic()
        sent = len(result["latencies"])
        lag = None
        while time.monotonic() - answered_at < args.lag_timeout:
            waiting = WebhookEvent.objects.filter(status="received").count()
            if waiting == 0:
                lag = time.monotonic() - answered_at
                break
            time.sleep(0.1)
        outcome = dict(
            WebhookEvent.objects.values_list("status").annotate(n=Count("pk")).order_by()
        )
        span = WebhookEvent.objects.aggregate(first=Min("processed_at"), last=Max("processed_at"))
        statuses = dict(
            StatusUpdate.objects.values_list("outcome").annotate(n=Count("pk")).order_by()
        )
    finally:
        for process in started_processes:
            process.stop(timeout=20)

    from campaigns.models import Campaign
    from campaigns.selectors import campaign_counts

    campaign = Campaign.objects.get(workspace__slug="bench-webhooks")
    recorded = sum(statuses.values())
    latencies = result["latencies"]
    print(
        f"command: DATABASE_URL={os.environ['DATABASE_URL']} {shlex.join([sys.executable, *sys.argv])}"
    )
    print(
        f"machine: {os.cpu_count()} cores shared by client, gunicorn ({args.web_workers} workers x 4 threads), "
        f"celery ({args.celery_concurrency}), PostgreSQL, Redis"
    )
    print(
        f"POSTs answered: {sent} in {result['elapsed']:.2f} s = {sent / result['elapsed']:.0f}/s "
        f"({args.statuses_per_post} status per POST"
        f"{f', paced at {args.rate:.0f}/s' if args.rate else ''}"
        f"{', worker started after the last answer' if args.process_after else ''}); "
        f"codes {result['codes']}"
    )
    print(
        f"answer time: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms, "
        f"mean {statistics.mean(latencies) * 1000:.1f} ms"
    )
    if lag is None:
        print(f"lag: events still unprocessed after {args.lag_timeout:.0f} s: {outcome}")
    else:
        end_to_end = result["elapsed"] + lag
        print(
            f"lag after the last answer until every event was applied: {lag:.2f} s; "
            f"end to end {end_to_end:.2f} s = {sent / end_to_end:.0f} POSTs/s, "
            f"{recorded / end_to_end:.0f} statuses/s applied; events {outcome}"
        )
    if span["first"] and span["last"] and span["last"] > span["first"]:
        busy = (span["last"] - span["first"]).total_seconds()
        print(
            f"processing: {recorded} statuses {statuses} in {busy:.2f} s from the first event "
            f"processed to the last = {recorded / busy:.0f} statuses/s, "
            f"{sum(outcome.values()) / busy:.0f} events/s"
        )
    counts = campaign_counts([campaign.pk])[campaign.pk]
    print(
        f"recipients by status: {', '.join(f'{k} {v}' for k, v in counts.items() if v)} "
        f"(expected read {args.messages} when every POST was sent)"
    )


if __name__ == "__main__":
    main()
