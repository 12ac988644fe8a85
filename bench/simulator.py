"""Benchmark: template sends per second the Graph API simulator serves to keep-alive clients.

Usage: python bench/simulator.py [--connections 32] [--requests 40000] [--duration 15]
       [--processes 1] [--url http://127.0.0.1:8900] [--sim-arg=--latency-ms=0 ...]

Without --url it starts its own simulator (no throughput cap, no webhooks) on a free
loopback port and stops it afterwards. Client processes are separate from the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN
from graph_simulator.testing import SimulatorControl, SimulatorProcess


def _body(i: int) -> bytes:
    return json.dumps(
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": f"91{7000000000 + i}",
            "type": "template",
            "biz_opaque_callback_data": f"bench-{i}",
            "template": {
                "name": "seasonal_promo",
                "language": {"code": "en_US", "policy": "deterministic"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Asha"},
                            {"type": "text", "text": "FALL25"},
                        ],
                    }
                ],
            },
        }
    ).encode()


async def _client(
    url: str, connections: int, count: int, duration: float, offset: int
) -> dict[str, object]:
    send_url = f"{url}/v23.0/{DEMO_PHONE_NUMBER_IDS[0]}/messages"
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0
    deadline = time.monotonic() + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < count and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            started = time.perf_counter()
            async with session.post(send_url, data=_body(offset + i), headers=headers) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm the keep-alive connections so the timing measures requests, not handshakes.
        await asyncio.gather(*(session.get(f"{url}/_sim/health") for _ in range(connections)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "statuses": statuses}


def _run_client(args: tuple[str, int, int, float, int]) -> dict[str, object]:
    return asyncio.run(_client(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running simulator (default: start one)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--requests", type=int, default=40_000, help="sends in total")
    parser.add_argument("--duration", type=float, default=15.0, help="max seconds of sending")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument(
        "--sim-arg", action="append", default=[], help="extra simulator flag (repeatable)"
    )
    args = parser.parse_args()

    simulator = None
    url = args.url
    if url is None:
        simulator = SimulatorProcess("--mps", "0", "--keep-messages", "200000", *args.sim_arg)
        simulator.start()
        url = simulator.base_url
    control = SimulatorControl(url)
    try:
        control.reset()
        per_process = args.requests // args.processes
        jobs = [
            (
                url,
                max(1, args.connections // args.processes),
                per_process,
                args.duration,
                n * per_process,
            )
            for n in range(args.processes)
        ]
        wall = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.processes) as pool:
            results = pool.map(_run_client, jobs)
        wall = time.perf_counter() - wall
        counts = control.counts(duplicates_only=True)
    finally:
        control.close()
        if simulator is not None:
            simulator.stop()

    latencies = sorted(x for r in results for x in r["latencies"])  # type: ignore[union-attr]
    statuses: dict[int, int] = {}
    for result in results:
        for status, n in result["statuses"].items():  # type: ignore[union-attr]
            statuses[status] = statuses.get(status, 0) + n
    done = len(latencies)
    elapsed = max(float(r["elapsed"]) for r in results)  # type: ignore[arg-type]
    rate = done / elapsed if elapsed else 0.0

    def pct(p: float) -> float:
        return latencies[min(done - 1, int(p * done))] * 1000

    print(f"command: {shlex.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(
        f"requests: {done} over {args.connections} keep-alive connections in "
        f"{args.processes} client process(es); statuses {statuses}"
    )
    print(
        f"simulator accepted: {counts['total']} (duplicate recipients: "
        f"{len(counts['by_recipient'])})"
    )
    print(
        f"latency ms: p50 {pct(0.50):.2f}  p99 {pct(0.99):.2f}  "
        f"mean {statistics.fmean(latencies) * 1000:.2f}"
    )
    print(f"throughput: {rate:,.0f} requests/s (sending {elapsed:.2f} s, wall {wall:.2f} s)")


if __name__ == "__main__":
    main()
