"""Benchmark: notification outbox writes/s and signed webhook deliveries/s (loopback receiver).

Usage: python bench/notifications.py [--emits 2000] [--deliveries 1000] [--channels 3]

Runs against a database of its own (the name in DATABASE_URL with
``_bench_notifications`` appended; created and migrated when missing, emptied
afterwards). Two figures:

- **emit**: ``notification_emit`` each in its own transaction (as a campaign pause
  would write it), with ``--channels`` subscribed webhook channels, so each emit
  writes one notification and that many deliveries.
- **deliver**: ``delivery_attempt`` of pending webhook deliveries one after the
  other against a local HTTP server answering 200: lock, sign (Standard Webhooks),
  POST, record the attempt and the outcome.

Queueing the Celery task after commit is replaced by a no-op (no broker is
touched: this measures the database and HTTP work, not Redis).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import servers  # noqa: E402


def bench_database_url() -> str:
    return servers.bench_database_url("_bench_notifications")


def prepare_database() -> None:
    servers.prepare_database(bench_database_url())


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emits", type=int, default=2000)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=3)
    args = parser.parse_args()
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))

    prepare_database()
    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction

    settings.DEBUG = False
    settings.NOTIFY_ALLOW_HTTP = True
    from accounts.models import Workspace
    from notifications import services
    from notifications.delivery import delivery_attempt
    from notifications.models import Delivery

    services.delivery_queue = lambda *a, **k: None  # no broker (see the docstring)

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        workspace = Workspace.objects.create(name="Bench", slug="bench-notifications")
        for _ in range(args.channels):
            services.channel_create(workspace=workspace, kind="webhook", target=url)

        started = time.perf_counter()
        for n in range(args.emits):
            with transaction.atomic():
                services.notification_emit(
                    workspace_id=workspace.pk,
                    event="campaign.paused",
                    title=f"Campaign {n} was paused",
                    body="Paused by the product: 131048",
                    objects=[{"type": "campaign", "id": n, "name": f"c{n}", "admin_url": None}],
                )
        emit_seconds = time.perf_counter() - started

        ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True)[: args.deliveries])
        durations = []
        started = time.perf_counter()
        for pk in ids:
            one = time.perf_counter()
            delivery = delivery_attempt(delivery_id=pk, force=True)
            durations.append((time.perf_counter() - one) * 1000)
            assert delivery is not None and delivery.status == "delivered", delivery
        deliver_seconds = time.perf_counter() - started

        print(
            f"emit: {args.emits} notifications x {args.channels} channels in "
            f"{emit_seconds:.2f} s = {args.emits / emit_seconds:.0f} emits/s "
            f"({emit_seconds * 1000 / args.emits:.2f} ms each)"
        )
        durations.sort()
        print(
            f"deliver: {len(ids)} signed webhook deliveries in {deliver_seconds:.2f} s = "
            f"{len(ids) / deliver_seconds:.0f}/s sequential; per attempt median "
            f"{statistics.median(durations):.2f} ms, p95 {durations[int(len(durations) * 0.95)]:.2f} ms"
        )
    finally:
        server.shutdown()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE accounts_workspace CASCADE")


if __name__ == "__main__":
    main()
