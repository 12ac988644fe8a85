"""Benchmark 5: start latency, from the campaign start call to the first send at the simulator.

The original system polled for work every 5 s; lanes are queued on commit.

Usage: python bench/engine_start_latency.py [--runs 10]
"""

import argparse
import statistics
import time

import stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    stack.prepare_database()
    latencies = []
    with stack.simulator(1) as sim:
        workspace, numbers, template = stack.setup_workspace(sim, 1, max_mps=1000)
        stack.set_rate(1000)
        with stack.workers(sim, concurrency=2):
            for _ in range(args.runs):
                campaign = stack.create_campaign(workspace, numbers, template, 5)
                sim.control.reset()
                started_wall = time.time()
                stack.start(campaign)
                deadline = time.monotonic() + 30
                while not (messages := sim.control.messages(limit=1)):
                    if time.monotonic() > deadline:
                        raise TimeoutError("no send within 30 s")
                    time.sleep(0.005)
                latencies.append(messages[0]["accepted_at_wall"] - started_wall)
                stack.wait_done(campaign, timeout=30)
    print(f"command: {stack.command_line()}")
    print(
        f"start -> first send over {args.runs} runs: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms, min {min(latencies) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
