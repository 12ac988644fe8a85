"""Benchmark: the web process's memory while it takes a big contact CSV upload.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/wac_upload python bench/upload_memory.py
       [--megabytes 100] [--debug 1|0] [--code-dir DIR] [--redis-url redis://127.0.0.1:6379/11]

It recreates and migrates the database (a throw-away one: its name must contain "upload";
it is dropped first), creates a superuser owning a workspace with a number, a template and
a draft campaign, writes a ``--megabytes`` CSV to a temporary file (deleted at the end),
starts gunicorn (one sync worker, from the code to measure: ``--code-dir``, default this
checkout; point it at ``git archive HEAD | tar -x -C /tmp/head`` for a before / after
comparison) with DEBUG as ``--debug`` says, gets an API token, warms the worker up with one
API GET, then POSTs the file to ``/api/campaigns/<id>/contacts/`` and samples the worker's
RSS (/proc/<pid>/status) every 50 ms. It prints the RSS before, the peak (VmHWM) and the
RSS 2 s after the answer and after one more small request. Nothing consumes the queued
import: the job, its stored chunks and the broker database are emptied at the end, and
gunicorn is stopped by its own process group.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import redis
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from servers import free_port, in_dir, server_env  # noqa: E402

from config.env import parse_database_url  # noqa: E402
from config.procs import VENV_BIN, ManagedProcess, wait_http  # noqa: E402

PASSWORD = secrets.token_urlsafe(16)
SETUP = """
from django.contrib.auth import get_user_model
from django.utils import timezone
from accounts.models import Membership, Workspace
from campaigns.models import Campaign, CampaignTemplate
from numbers.models import Number
from templates_sync.models import Template
from templates_sync.rendering import parse_parameters

{cleanup}
user = get_user_model().objects.create_superuser("bench-upload", "b@example.com", {password!r})
workspace = Workspace.objects.create(name="bench upload", slug="bench-upload")
Membership.objects.create(workspace=workspace, user=user, role="owner")
number = Number.objects.create(
    workspace=workspace, label="bench", phone_number_id="901000000000001",
    waba_id="901000000000009", access_token="bench-placeholder",
)
components = [{{"type": "BODY", "text": "Hi {{{{first_name}}}}, your code is {{{{code}}}}"}}]
now = timezone.now()
template = Template.objects.create(
    workspace=workspace, waba_id="901000000000009", name="bench_upload", language="en_US",
    category="UTILITY", status="APPROVED", parameter_format="NAMED", components=components,
    parameters=parse_parameters(components, "NAMED"), synced_at=now, last_seen_at=now,
    status_changed_at=now,
)
campaign = Campaign.objects.create(workspace=workspace, name="bench upload")
campaign.numbers.set([number])
CampaignTemplate.objects.create(campaign=campaign, template=template)
print("CAMPAIGN", campaign.pk)
"""
CLEANUP = """
from django.contrib.auth import get_user_model
from accounts.models import Workspace
from campaigns.models import Campaign
from numbers.models import Number
from templates_sync.models import Template

# Campaigns first (their imports and stored chunks go with them): templates are protected.
for workspace in Workspace.objects.filter(slug="bench-upload"):
    Campaign.objects.filter(workspace=workspace).delete()
    Template.objects.filter(workspace=workspace).delete()
    Number.objects.filter(workspace=workspace).delete()
    workspace.delete()
get_user_model().objects.filter(username="bench-upload").delete()
"""


def write_csv(path: Path, megabytes: float) -> int:
    target = int(megabytes * 1_000_000)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,first_name,code,city,notes\n")
        written, i = 0, 0
        while written < target:
            lines = "".join(
                f"+91 9{(i + k) % 10**9:09d},Name{i + k},C{(i + k) * 7919 % 10**6},Pune,"
                f"{'n' * 40}\n"
                for k in range(10_000)
            )
            out.write(lines)
            written += len(lines)
            i += 10_000
    return path.stat().st_size


def worker_pid(master: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    return int(entry)
        time.sleep(0.1)
    raise TimeoutError(f"no gunicorn worker under {master}")


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def recreate_database(url: str) -> None:
    """Drop and create the throw-away database: its secrets are this run's."""
    db = parse_database_url("DATABASE_URL", url)
    with psycopg.connect(
        dbname="postgres",
        autocommit=True,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
    ) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db["NAME"])))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))


def manage_shell(code_dir: Path, env: dict[str, str], script: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=code_dir,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"manage.py shell failed:\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=100)
    parser.add_argument("--debug", choices=["1", "0"], default="1")
    parser.add_argument("--code-dir", type=Path, default=ROOT)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if "upload" not in url:
        sys.exit("set DATABASE_URL to a throw-away database whose name contains 'upload'")
    code_dir = args.code_dir.resolve()
    env = server_env(database_url=url, redis_url=args.redis_url, debug=args.debug)
    recreate_database(url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=code_dir,
        check=True,
        env={**os.environ, **env},
    )
    campaign_id = int(
        manage_shell(code_dir, env, SETUP.format(password=PASSWORD, cleanup=CLEANUP)).split(
            "CAMPAIGN"
        )[1]
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    csv_path = tmp / "contacts.csv"
    size = write_csv(csv_path, args.megabytes)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = ManagedProcess(
        "upload-web",
        in_dir(
            code_dir,
            [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--timeout",
                "900",
            ],
        ),
        env,
    ).start()
    try:
        wait_http(f"{base}/healthz", timeout=60, expect=200)
        pid = worker_pid(web.pid)
        session = requests.Session()
        login = session.post(
            f"{base}/api/auth/token/",
            data={"username": "bench-upload", "password": PASSWORD},
            timeout=30,
        )
        login.raise_for_status()
        session.headers["Authorization"] = f"Token {login.json()['token']}"
        session.get(f"{base}/api/campaigns/", timeout=30).raise_for_status()
        before = status_mb(pid, "VmRSS")
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(status_mb(pid, "VmRSS"))
                stop.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        with csv_path.open("rb") as handle:
            response = session.post(
                f"{base}/api/campaigns/{campaign_id}/contacts/",
                files={"file": ("contacts.csv", handle, "text/csv")},
                timeout=900,
            )
        elapsed = time.perf_counter() - started
        time.sleep(2)
        stop.set()
        sampler.join()
        after = status_mb(pid, "VmRSS")
        peak = status_mb(pid, "VmHWM")
        session.get(f"{base}/api/campaigns/", timeout=30)
        after_next = status_mb(pid, "VmRSS")
    finally:
        web.stop()
        csv_path.unlink(missing_ok=True)
        tmp.rmdir()
        manage_shell(code_dir, env, CLEANUP)
        redis.Redis.from_url(args.redis_url).flushdb()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"code: {code_dir}; DEBUG={args.debug}; file {size / 1e6:.1f} MB")
    print(f"answer: {response.status_code} {response.text[:120]!r} after {elapsed:.1f} s")
    print(
        f"worker RSS: before {before:.0f} MB, peak {peak:.0f} MB (sampled max "
        f"{max(samples):.0f} MB), 2 s after {after:.0f} MB, after the next request "
        f"{after_next:.0f} MB"
    )


if __name__ == "__main__":
    main()
