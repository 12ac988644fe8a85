"""Benchmark: a flood of forged webhook POSTs against gunicorn on loopback: answers per
second, answer times, and how much the database grew.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/wac_flood python bench/webhook_flood.py
       [--threads 6] [--seconds 10] [--web-workers 2] [--header-chars 8000]
       [--body-bytes 4096] [--code-dir DIR] [--redis-url redis://127.0.0.1:6379/11]

It migrates the database (which must be a throw-away one: its name must contain "flood"),
starts gunicorn (``--web-workers`` x 4 threads, as procs.gunicorn) on a free loopback port
from the code to measure (``--code-dir``, default this checkout: point it at an export of
another commit, e.g. ``git archive HEAD | tar -x -C /tmp/head``, for a before / after
comparison), then ``--threads`` client threads POST unsigned bodies of ``--body-bytes``
with three headers of ``--header-chars`` each (User-Agent, X-Forwarded-For and a bogus
X-Hub-Signature-256: the worst case for whatever keeps headers; random hex, so that
compression hides nothing) as fast as answered for ``--seconds``, on keep-alive
connections. The growth is pg_total_relation_size of each webhook table and
pg_database_size, before and after (2 s later, and once the refusal counts kept in Redis
were flushed into PostgreSQL, as beat does every 10 s). gunicorn is stopped by its own
process group, and the Redis database (``--redis-url``, its own) is emptied.
Client and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from servers import free_port, in_dir, server_env  # noqa: E402

from config.env import parse_database_url  # noqa: E402
from config.procs import VENV_BIN, ManagedProcess, wait_http  # noqa: E402

TABLES = (
    "messaging_webhookevent",
    "webhooks_webhookrefusalcount",
    "webhooks_webhookrefusalsample",
)


def sizes(url: str) -> dict[str, int]:
    db = parse_database_url("DATABASE_URL", url)
    with psycopg.connect(
        dbname=db["NAME"], host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"]
    ) as conn:
        found = {
            table: conn.execute(
                "SELECT coalesce(pg_total_relation_size(to_regclass(%s)), 0)", [table]
            ).fetchone()[0]
            for table in TABLES
        }
        found["database"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[
            0
        ]
        found["event_rows"] = conn.execute(
            "SELECT count(*) FROM messaging_webhookevent"
        ).fetchone()[0]
    return found


def flush(code_dir: Path, env: dict[str, str]) -> str:
    """Run the periodic flush of refusal counts once (code that has one), as beat would."""
    if not (code_dir / "webhooks" / "refusals.py").exists():
        return "none in this code"
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            "from webhooks.refusals import webhook_refusals_flush; print(webhook_refusals_flush())",
        ],
        cwd=code_dir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return f"{done.stdout.strip()} refusals moved to PostgreSQL"


def flood(url: str, threads: int, seconds: float, body: bytes, header: str) -> dict:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    headers = {
        "Content-Type": "application/json",
        "User-Agent": header,
        "X-Forwarded-For": header,
        "X-Hub-Signature-256": "sha256=" + header,
    }

    def run() -> None:
        mine: list[float] = []
        mine_codes: dict[int, int] = {}
        with requests.Session() as session:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = session.post(url, data=body, headers=headers, timeout=30)
                mine.append(time.perf_counter() - started)
                mine_codes[response.status_code] = mine_codes.get(response.status_code, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, count in mine_codes.items():
                codes[code] = codes.get(code, 0) + count

    workers = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"elapsed": time.perf_counter() - started, "latencies": latencies, "codes": codes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--header-chars", type=int, default=8000)
    parser.add_argument("--body-bytes", type=int, default=4096)
    parser.add_argument("--code-dir", type=Path, default=ROOT)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if "flood" not in url:
        sys.exit("set DATABASE_URL to a throw-away database whose name contains 'flood'")
    code_dir = args.code_dir.resolve()
    env = {
        **server_env(database_url=url, redis_url=args.redis_url),
        "WHATSAPP_APP_SECRET": "flood-app-secret",
    }
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "createdb.py")],
        check=True,
        env={**os.environ, **env},
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=code_dir,
        check=True,
        env={**os.environ, **env},
    )
    port = free_port()
    web = ManagedProcess(
        "flood-web",
        in_dir(
            code_dir,
            [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.web_workers),
                "--threads",
                "4",
            ],
        ),
        env,
    ).start()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, expect=200)
        body = (
            b'{"object": "whatsapp_business_account", "entry": [], "pad": "'
            + secrets.token_hex(args.body_bytes).encode()
        )[: args.body_bytes - 2] + b'"}'
        before = sizes(url)
        result = flood(
            f"http://127.0.0.1:{port}/webhooks/whatsapp/",
            args.threads,
            args.seconds,
            body,
            # Random, so PostgreSQL's compression of big values does not hide their size.
            secrets.token_hex(args.header_chars)[: args.header_chars],
        )
        time.sleep(2)
        store = redis.Redis.from_url(args.redis_url, decode_responses=True)
        counted = sum(
            int(store.hget(key, "count") or 0) for key in store.smembers("webhooks:refused:pending")
        )
        flushed = flush(code_dir, {**os.environ, **env})
        after = sizes(url)
    finally:
        web.stop()
        redis.Redis.from_url(args.redis_url).flushdb()
    latencies = sorted(result["latencies"])
    count = len(latencies)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"code: {code_dir}; machine: {os.cpu_count()} cores shared by client and gunicorn")
    print(
        f"requests: {count} in {result['elapsed']:.1f} s = {count / result['elapsed']:.0f}/s; "
        f"answers {dict(sorted(result['codes'].items()))}"
    )
    print(
        f"answer time: p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[min(count - 1, int(0.99 * count))] * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )
    for key in (*TABLES, "database"):
        was, now = before[key] / 1e3, after[key] / 1e3
        print(f"{key}: {was:.0f} kB -> {now:.0f} kB ({now - was:+.0f} kB)")
    print(f"event rows: {before['event_rows']} -> {after['event_rows']}")
    print(f"refusals counted in Redis: {counted}; then the periodic flush: {flushed}")


if __name__ == "__main__":
    main()
