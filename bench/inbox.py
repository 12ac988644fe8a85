"""Benchmark: the inbox while one number sends a big campaign at its cap.

Reply latency (the API call -> the simulator accepted the message) p50/p99, target p99
< 1 s, and inbound messages processed per second into conversations.

Usage: python bench/inbox.py [--contacts 20000] [--mps 80] [--replies 200]
       [--reply-rate 5] [--inbound 2000] [--duration 180]

Runs the whole stack on this machine (database ``wac_bench_engine``, Redis db 8 unless
DATABASE_URL/REDIS_URL say otherwise): the Graph simulator with one number capped at
``--mps``, gunicorn (webhooks and the API), a worker on ``sending,default`` (the lanes),
one on ``webhooks`` and one on ``replies`` (as docker-compose's worker-events and
worker-replies), all on loopback and stopped by pid. The campaign of ``--contacts`` starts at the number's cap; once it is
sending, ``--inbound`` messages from other users arrive through the simulator's signed
webhooks (their conversations are where the agents answer), then agents send
``--replies`` text replies through the REST API at ``--reply-rate`` per second while
the campaign still saturates the number. The campaign is cancelled at the end (or after
``--duration`` seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack  # sets up Django on the benchmark database
from servers import free_port

APP_SECRET = "bench-app-secret"  # noqa: S105 - signs loopback test traffic only


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20000)
    parser.add_argument("--mps", type=int, default=80)
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--reply-rate", type=float, default=5.0)
    parser.add_argument("--inbound", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=180)
    args = parser.parse_args()

    import requests
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken

    from accounts.models import Membership, Role
    from campaigns.services import campaign_cancel
    from config import procs
    from conversations.models import Conversation, Message

    stack.prepare_database()
    with stack.simulator(1, mps=args.mps) as sim:
        control = sim.control
        workspace, numbers, template = stack.setup_workspace(sim, 1, max_mps=args.mps)
        get_user_model().objects.filter(username="bench-agent").delete()
        user = get_user_model().objects.create_user("bench-agent", is_staff=True)
        Membership.objects.create(workspace=workspace, user=user, role=Role.AGENT)
        _, token = AuthToken.objects.create(user)
        campaign = stack.create_campaign(workspace, numbers, template, args.contacts)
        stack.set_rate(1000)

        port = free_port()
        env = {
            "DEBUG": "0",
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": os.environ["REDIS_URL"],
            "CELERY_BROKER_URL": os.environ["REDIS_URL"],
            "WHATSAPP_GRAPH_URL": sim.base_url,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "API_WRITE_RATE": "100000/min",
            "LOG_LEVEL": "WARNING",
        }
        web = procs.gunicorn(bind=f"127.0.0.1:{port}", workers=2, env=env)
        lanes = procs.celery_worker("bench-lanes", "sending,default", concurrency=4, env=env)
        events = procs.celery_worker("bench-events", "webhooks", concurrency=4, env=env)
        # Replies get workers of their own (docker-compose's worker-replies): a webhook
        # backlog (the campaign's receipts) must not hold them either.
        replies = procs.celery_worker("bench-replies", "replies", concurrency=2, env=env)
        started = [web, lanes, events, replies]
        try:
            for process in started:
                process.start()
            procs.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
            for worker in (lanes, events, replies):
                deadline = time.monotonic() + 60
                while "ready." not in worker.log_path.read_text(errors="replace"):
                    if time.monotonic() > deadline or not worker.alive():
                        raise RuntimeError(f"worker did not start; see {worker.log_path}")
                    time.sleep(0.1)
            control.set_faults(
                callback_url=f"http://127.0.0.1:{port}/webhooks/whatsapp/",
                app_secret=APP_SECRET,
                # Receipts in batches, as Meta sends them under load.
                webhook_batch=20,
            )
            t_start = stack.start(campaign)
            deadline = t_start + args.duration
            while len(control.messages(limit=50)) < 50:
                time.sleep(0.2)

            # Inbound from other users while the campaign sends.
            senders = [f"9190{i:08d}" for i in range(args.inbound)]
            t_in = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda s: control.inbound(s, text="Hello, a question"), senders))
            while Message.objects.filter(direction="in").count() < args.inbound:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            t_in_done = time.monotonic()
            threaded = Message.objects.filter(direction="in").count()

            # Agents reply while the campaign saturates the number.
            conversations = list(
                Conversation.objects.filter(workspace=workspace)
                .order_by("pk")
                .values_list("pk", "contact__wa_id")[: args.replies]
            )
            http = requests.Session()
            http.trust_env = False
            http.headers["Authorization"] = f"Token {token}"
            calls: dict[str, float] = {}
            refused: list[str] = []
            lock = threading.Lock()

            def reply(item: tuple[int, str]) -> None:
                pk, wa_id = item
                at = time.time()
                answer = http.post(
                    f"http://127.0.0.1:{port}/api/conversations/{pk}/reply/",
                    json={"text": "Thanks, here is the answer"},
                    timeout=30,
                )
                with lock:
                    if answer.status_code == 201:
                        calls[wa_id] = at
                    else:
                        refused.append(f"{answer.status_code} {answer.text[:200]}")

            threads = []
            for item in conversations:
                thread = threading.Thread(target=reply, args=(item,))
                thread.start()
                threads.append(thread)
                time.sleep(1 / args.reply_rate)
            for thread in threads:
                thread.join()
            while (
                Message.objects.filter(direction="out", sent_by="agent", wamid="").count()
                and time.monotonic() < deadline + 30
            ):
                time.sleep(0.2)
            campaign_sent_during = stack.Recipient.objects.filter(
                campaign=campaign, sent_at__isnull=False
            ).count()
            campaign_cancel(campaign=campaign, user=None)
            elapsed = time.monotonic() - t_start

            latencies = []
            for wa_id, at in calls.items():
                for message in control.messages(to=wa_id):
                    if message["type"] == "text":
                        latencies.append(message["accepted_at_wall"] - at)
        finally:
            for process in reversed(started):
                process.stop(timeout=20)

    print(f"command: {stack.command_line()}")
    print(
        f"campaign: {args.contacts} contacts on one number capped at {args.mps} msg/s; "
        f"{campaign_sent_during} sent in {elapsed:.0f} s "
        f"({campaign_sent_during / elapsed:.1f} msg/s), then cancelled"
    )
    print(
        f"inbound: {threaded}/{args.inbound} threaded into conversations in "
        f"{t_in_done - t_in:.1f} s = {threaded / (t_in_done - t_in):.1f} inbound/s "
        "(simulator -> signed webhook -> gunicorn -> webhooks worker -> conversation)"
    )
    if latencies:
        print(
            f"replies: {len(latencies)}/{len(conversations)} accepted by the simulator; "
            f"latency (API call -> accepted) p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms (target p99 < 1000 ms)"
        )
    else:
        print("replies: none accepted")
    if refused:
        print(f"refused replies: {len(refused)}, e.g. {refused[0]}")
    print(f"machine: {os.cpu_count()} cores shared by everything above")


if __name__ == "__main__":
    main()
