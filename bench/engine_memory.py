"""Benchmark 6: worker memory over a long campaign (default 200k messages): it must stay flat.

Samples the resident memory of every process of the worker (the main process
and its pool children) once a second while the campaign runs, and prints it
per tenth of the run.

Usage: python bench/engine_memory.py [--messages 200000] [--numbers 4]
"""

import argparse
import subprocess
import time
from pathlib import Path

import stack


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker_rss(main_pid: int) -> tuple[int, int]:
    """(main process RSS, largest pool child RSS) in KiB."""
    children = subprocess.run(
        ["ps", "--ppid", str(main_pid), "-o", "pid="], capture_output=True, text=True, check=False
    ).stdout.split()
    child_rss = [rss_kib(int(pid)) for pid in children if Path(f"/proc/{pid}").exists()]
    return rss_kib(main_pid), max(child_rss, default=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--numbers", type=int, default=4)
    args = parser.parse_args()

    stack.prepare_database()
    with stack.simulator(args.numbers, "--keep-messages", "1000") as sim:
        workspace, numbers, template = stack.setup_workspace(sim, args.numbers, max_mps=100_000)
        campaign = stack.create_campaign(workspace, numbers, template, args.messages)
        stack.set_rate(100_000)
        samples: list[tuple[float, int, int]] = []
        with stack.workers(sim, concurrency=args.numbers) as started:
            pid = started[0].pid
            began = stack.start(campaign)
            last = 0.0

            def sample() -> None:
                nonlocal last
                if time.monotonic() - last >= 1:
                    last = time.monotonic()
                    samples.append((last - began, *worker_rss(pid)))

            done = stack.wait_done(campaign, timeout=3600, on_tick=sample)
        counts = stack.status_counts(campaign)
    print(f"command: {stack.command_line()}")
    print(
        f"{args.messages} messages in {done - began:.0f} s ({args.messages / (done - began):.0f} msg/s)"
    )
    print("elapsed   main RSS   largest pool child RSS")
    step = max(1, len(samples) // 10)
    for elapsed, main_rss, child_rss in samples[::step] + samples[-1:]:
        print(f"{elapsed:6.0f} s {main_rss / 1024:8.1f} MiB {child_rss / 1024:10.1f} MiB")
    first = [s[2] for s in samples[: max(1, len(samples) // 10)]]
    final = [s[2] for s in samples[-max(1, len(samples) // 10) :]]
    print(
        f"pool child RSS, first tenth vs last tenth of the run: "
        f"{max(first) / 1024:.1f} MiB vs {max(final) / 1024:.1f} MiB"
    )
    print(f"recipient states: {counts}")


if __name__ == "__main__":
    main()
