"""Benchmark: inbound webhook -> automatic (LLM) reply accepted by the Graph simulator, p50/p99,
with the LLM answering in 0 ms and in 500 ms (issue 13's target: under 300 ms p50 on top of
the LLM's own time).

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/wac_bench python bench/autoreply.py
       [--messages 60] [--llm-latency-ms 0,500] [--web-workers 2] [--celery-concurrency 2]
       [--redis-url redis://127.0.0.1:6379/13] [--drain-gather 0.2]

It migrates the benchmark database, creates a workspace with the simulator's first number
and the LLM agent on, then starts gunicorn, the Graph simulator (posting its webhooks to
gunicorn, signed), the LLM simulator and one Celery worker on the ``webhooks`` and
``replies`` queues, all on free loopback ports. For each LLM latency, ``--messages``
different contacts write "What is the price?" one after the other; each time is measured
from just before the simulator posts the inbound webhook to the moment the simulator
accepted the bot's reply (its own wall-clock record), so polling adds nothing. Every
process is stopped by pid at the end. Everything shares this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

from servers import free_port, server_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

APP_SECRET = "bench-app-secret"  # noqa: S105 - signs loopback test traffic only
QUESTION = "What is the price?"
ANSWER = "Our festive offer is 20% off everything until Sunday."


def setup_database(llm_url: str) -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from accounts.models import Workspace
    from automation.services import settings_for
    from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
    from numbers.models import Number

    Workspace.objects.filter(slug="bench-autoreply").delete()
    # One workspace owns the simulator's number in this database: inbound goes to it only.
    Number.objects.filter(phone_number_id=DEMO_PHONE_NUMBER_IDS[0]).delete()
    workspace = Workspace.objects.create(name="Bench autoreply", slug="bench-autoreply")
    Number.objects.create(
        workspace=workspace,
        label="bench",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
        display_phone_number="+1 555-000-0001",
    )
    settings = settings_for(workspace.pk)
    settings.llm_enabled = True
    settings.llm_base_url = llm_url
    settings.llm_model = "bench-model"
    settings.llm_knowledge = "20% off until Sunday."
    settings.llm_max_replies_per_10_minutes = 100
    settings.save()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_round(graph, llm, latency_ms: float, messages: int, first_sender: int) -> list[float]:
    """Seconds from inbound webhook to reply accepted, per contact, in order."""
    llm.configure(latency_ms=latency_ms)
    times = []
    for i in range(messages):
        sender = f"9197{first_sender + i:08d}"
        started = time.time()
        answer = graph.inbound(sender, text=QUESTION)
        if not answer["delivered"]:
            raise RuntimeError(f"the webhook was not accepted: {answer}")
        deadline = time.monotonic() + 30
        while True:
            sent = [m for m in graph.messages(to=sender) if m["type"] == "text"]
            if sent:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no automatic reply to {sender} within 30 s")
            time.sleep(0.005)
        if sent[0]["text"] != ANSWER:
            raise RuntimeError(f"unexpected reply {sent[0]['text']!r}")
        times.append(sent[0]["accepted_at_wall"] - started)
    return times


def phases(first_sender: int, messages: int) -> dict[str, float]:
    """Median milliseconds of each leg, from what the product recorded: webhook received ->
    drained (stored and threaded), -> pipeline started (the task's trip through the
    broker), the pipeline without the LLM (settings, rules, guards, context, the send to
    Meta), and the LLM call."""
    from datetime import datetime, timedelta

    from conversations.models import Direction, Message
    from webhooks.models import InboundMessage

    senders = [f"9197{first_sender + i:08d}" for i in range(messages)]
    legs: dict[str, list[float]] = {"drain": [], "queue": [], "pipeline": [], "llm": []}
    for message in Message.objects.filter(
        direction=Direction.IN, conversation__contact__wa_id__in=senders
    ):
        decision = message.automation
        inbound = InboundMessage.objects.filter(message_id=message.wamid).select_related("event")
        event = inbound.first().event if inbound.exists() else None
        if not decision.get("at") or event is None or event.processed_at is None:
            continue
        started = datetime.fromisoformat(decision["at"]) - timedelta(
            milliseconds=decision["elapsed_ms"]
        )
        legs["drain"].append((event.processed_at - event.received_at).total_seconds() * 1000)
        legs["queue"].append((started - event.processed_at).total_seconds() * 1000)
        legs["pipeline"].append(decision["elapsed_ms"] - decision.get("latency_ms", 0))
        legs["llm"].append(decision.get("latency_ms", 0))
    return {k: statistics.median(v) for k, v in legs.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60, help="contacts per LLM latency")
    parser.add_argument("--llm-latency-ms", default="0,500", help="comma-separated")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--drain-gather",
        type=float,
        default=None,
        help="WEBHOOK_DRAIN_GATHER seconds for the servers (default: the product's, 0.2)",
    )
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url:
        sys.exit("set DATABASE_URL to a benchmark database (e.g. …/wac_bench)")
    latencies = [float(x) for x in args.llm_latency_ms.split(",") if x.strip()]

    env = {
        **server_env(database_url=database_url, redis_url=args.redis_url),
        "WHATSAPP_APP_SECRET": APP_SECRET,
    }
    if args.drain_gather is not None:
        env["WEBHOOK_DRAIN_GATHER"] = str(args.drain_gather)
    # This process writes the encrypted token and key the servers read: the same secrets.
    os.environ.update(env)

    from config import procs
    from graph_simulator.testing import SimulatorProcess
    from llm_simulator.testing import LLMSimulatorProcess

    web_port = free_port()
    llm = LLMSimulatorProcess().start()
    graph = SimulatorProcess(
        "--callback-url",
        f"http://127.0.0.1:{web_port}/webhooks/whatsapp/",
        "--app-secret",
        APP_SECRET,
        "--mps",
        "0",
        "--pair-rate-seconds",
        "0",
    ).start()
    env["WHATSAPP_GRAPH_URL"] = graph.base_url
    started = [llm, graph]
    try:
        setup_database(llm.control.openai_base_url)
        web = procs.gunicorn(bind=f"127.0.0.1:{web_port}", workers=args.web_workers, env=env)
        web.argv = [a for a in web.argv if a not in ("--access-logfile", "-")]
        web.name = "bench-autoreply-web"
        worker = procs.celery_worker(
            "bench-autoreply", "webhooks,replies", concurrency=args.celery_concurrency, env=env
        )
        started += [web.start(), worker.start()]
        procs.wait_http(f"http://127.0.0.1:{web_port}/healthz", timeout=60)
        # Warm up: first imports, connections and the worker's SDK client.
        run_round(graph.control, llm.control, 0, 3, 90_000_000)
        results, legs = {}, {}
        for index, latency in enumerate(latencies):
            results[latency] = run_round(
                graph.control, llm.control, latency, args.messages, index * 1_000_000
            )
            # The last decision is recorded just after its reply was accepted.
            time.sleep(1)
            legs[latency] = phases(index * 1_000_000, args.messages)
    finally:
        for process in reversed(started):
            process.stop()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"command: DATABASE_URL={database_url} {shlex.join([sys.executable, *sys.argv])}")
    print(f"load average at the end (1, 5, 15 min): {load}")
    print(
        f"machine: {os.cpu_count()} cores shared by the client, gunicorn ({args.web_workers} "
        f"workers x 4 threads), celery ({args.celery_concurrency}), both simulators, "
        "PostgreSQL, Redis; webhook drain gather "
        f"{env.get('WEBHOOK_DRAIN_GATHER', '0.2 (default)')} s"
    )
    for latency, times in results.items():
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        print(
            f"LLM {latency:.0f} ms: {len(times)} contacts, inbound webhook -> reply accepted "
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, "
            f"mean {statistics.mean(times) * 1000:.0f} ms; on top of the LLM: "
            f"p50 {p50 * 1000 - latency:.0f} ms, p99 {p99 * 1000 - latency:.0f} ms"
        )
        print(
            "  median legs: "
            + ", ".join(f"{name} {ms:.0f} ms" for name, ms in legs[latency].items())
        )


if __name__ == "__main__":
    main()
