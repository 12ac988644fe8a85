"""Benchmark: contact import rows/s and peak memory for generated CSVs (100k and 1M rows by default).

Usage: python bench/import.py [--rows 100000 1000000] [--numbers 2] [--tracemalloc]

Each size runs in a fresh child process against a database of its own (the
name in DATABASE_URL with ``_bench_import`` appended; created and migrated when
missing, emptied after each run, so a developer's data is never touched): it writes a CSV (phone, first_name, code, city; 1% invalid phones, 1% duplicates)
to a temporary file, creates a throw-away workspace with a number, two
templates (weights 2:1) and a campaign, imports the file with the same service
the API and the command use, prints the figures.
Peak RSS is the child's ru_maxrss; RSS is also sampled every 0.2 s during the
import so growth with the file would show. --tracemalloc adds Python's own
peak allocation (and slows the run about twofold).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import servers  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(rows)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,first_name,code,city\n")
        for i in range(rows):
            if i % 100 == 37:
                phone = "12345"  # invalid
            elif i % 100 == 73 and i > 100:
                phone = f"+91 9{(i - 50):09d}"  # duplicate of an earlier row
            else:
                phone = f"+91 9{i:09d}"
            out.write(f"{phone},Name{i},C{rng.randrange(10**6)},Pune\n")


def bench_database_url() -> str:
    return servers.bench_database_url("_bench_import")


def prepare_database() -> None:
    servers.prepare_database(bench_database_url())


def child(rows: int, numbers: int, use_tracemalloc: bool) -> dict:
    import django

    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection

    # As in production: with DEBUG on, Django keeps every query's text (each batch's
    # lookup carries 5,000 phones), which would show as memory growing with the file.
    settings.DEBUG = False
    from django.utils import timezone

    from accounts.models import Workspace
    from campaigns.models import Campaign, CampaignTemplate
    from campaigns.services import contacts_import
    from numbers.models import Number
    from templates_sync.models import Template
    from templates_sync.rendering import parse_parameters

    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    path = tmp / "contacts.csv"
    write_csv(path, rows)
    size = path.stat().st_size

    stamp = f"{os.getpid()}-{int(time.time())}"
    workspace = Workspace.objects.create(name=f"bench import {stamp}", slug=f"bench-import-{stamp}")
    try:
        waba = "900000000000001"
        number_rows = [
            Number.objects.create(
                workspace=workspace,
                label=f"bench {n}",
                phone_number_id=f"90000000000{n:04d}",
                waba_id=waba,
                access_token="bench-placeholder",  # noqa: S106 - never sent anywhere
            )
            for n in range(numbers)
        ]
        now = timezone.now()
        templates = []
        for name, body in (
            ("bench_a", "Hi {{first_name}}, your code is {{code}}"),
            ("bench_b", "Hello {{first_name}}! Use {{code}} today"),
        ):
            components = [{"type": "BODY", "text": body}]
            templates.append(
                Template.objects.create(
                    workspace=workspace,
                    waba_id=waba,
                    name=name,
                    language="en_US",
                    category="UTILITY",
                    status="APPROVED",
                    parameter_format="NAMED",
                    components=components,
                    parameters=parse_parameters(components, "NAMED"),
                    synced_at=now,
                    last_seen_at=now,
                    status_changed_at=now,
                )
            )
        campaign = Campaign.objects.create(workspace=workspace, name="bench")
        campaign.numbers.set(number_rows)
        for template, weight in zip(templates, (2, 1), strict=True):
            CampaignTemplate.objects.create(campaign=campaign, template=template, weight=weight)

        if use_tracemalloc:
            import tracemalloc

            tracemalloc.start()
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(_rss_mb())
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        rss_before = _rss_mb()
        sampler.start()
        started = time.perf_counter()
        with path.open("rb") as first:
            opened = [first]

            def opener():
                handle = path.open("rb")
                opened.append(handle)
                return handle

            job = contacts_import(
                campaign=campaign, user=None, opener=opener, filename=path.name, size=size
            )
            for handle in opened:
                handle.close()
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        traced_peak = None
        if use_tracemalloc:
            import tracemalloc

            traced_peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
        quarter = max(1, len(samples) // 4)
        return {
            "rows": rows,
            "file_mb": round(size / 1e6, 1),
            "seconds": round(elapsed, 1),
            "rows_per_second": round(rows / elapsed),
            "accepted": job.accepted,
            "rejected": job.rejected,
            "duplicates": job.duplicates,
            "rss_before_mb": round(rss_before, 1),
            "rss_first_quarter_max_mb": round(max(samples[:quarter]), 1),
            "rss_last_quarter_max_mb": round(max(samples[-quarter:]), 1),
            "peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6, 1
            ),
            "tracemalloc_peak_mb": None if traced_peak is None else round(traced_peak, 1),
        }
    finally:
        with connection.cursor() as cursor:
            # The bench database holds nothing else: empty it in one statement.
            cursor.execute("TRUNCATE accounts_workspace CASCADE")
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--numbers", type=int, default=2)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.numbers, args.tracemalloc)))
        return
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}")
    prepare_database()
    for rows in args.rows:
        command = [sys.executable, __file__, "--child", str(rows), "--numbers", str(args.numbers)]
        if args.tracemalloc:
            command.append("--tracemalloc")
        output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=900)
        result = json.loads(output.stdout.strip().splitlines()[-1])
        print(
            f"{result['rows']:>9,} rows ({result['file_mb']} MB): {result['seconds']} s, "
            f"{result['rows_per_second']:,} rows/s; accepted {result['accepted']:,}, rejected "
            f"{result['rejected']:,}, duplicates {result['duplicates']:,}; RSS before "
            f"{result['rss_before_mb']} MB, max in first/last quarter "
            f"{result['rss_first_quarter_max_mb']}/{result['rss_last_quarter_max_mb']} MB, "
            f"peak {result['peak_rss_mb']} MB"
            + (
                f", tracemalloc peak {result['tracemalloc_peak_mb']} MB"
                if result["tracemalloc_peak_mb"] is not None
                else ""
            )
        )


if __name__ == "__main__":
    main()
