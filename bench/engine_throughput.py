"""Benchmark 1: end-to-end send throughput, 8 numbers, no latency, rate cap lifted.

Beside it, in the same run, a naive single `requests` loop posts the same
messages to the same simulator: the ratio says what the engine's lanes,
claims, marks and bulk recording cost or gain against the simplest sender.

Usage: python bench/engine_throughput.py [--numbers 8] [--messages 20000] [--workers 1]
       [--concurrency 8]
"""

import argparse
import time

import requests
import stack

from graph_simulator.seed import DEMO_TOKEN


def naive_loop(sim, numbers: list[str], count: int) -> float:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    started = time.monotonic()
    for i in range(count):
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": f"92{7000000000 + i}",
            "type": "template",
            "template": {
                "name": "seasonal_promo",
                "language": {"code": "en_US", "policy": "deterministic"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": f"Name{i}"},
                            {"type": "text", "text": "FALL25"},
                        ],
                    }
                ],
            },
        }
        response = session.post(
            f"{sim.base_url}/v23.0/{numbers[i % len(numbers)]}/messages",
            json=body,
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=8)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    stack.prepare_database()
    with stack.simulator(args.numbers) as sim:
        workspace, numbers, template = stack.setup_workspace(sim, args.numbers, max_mps=100_000)
        campaign = stack.create_campaign(workspace, numbers, template, args.messages)
        stack.set_rate(100_000)  # the cap lifted: measure the engine, not the limiter
        with stack.workers(sim, count=args.workers, concurrency=args.concurrency):
            started = stack.start(campaign)
            done = stack.wait_done(campaign, timeout=600)
        engine_rate = args.messages / (done - started)
        counts = stack.status_counts(campaign)
        accepted = sim.control.counts()
        duplicates = sim.control.counts(duplicates_only=True)["by_recipient"]
        sim.control.reset()
        naive = naive_loop(sim, [n.phone_number_id for n in numbers], min(args.messages, 20_000))

    print(f"command: {stack.command_line()}")
    print(f"engine: {args.messages} messages over {args.numbers} numbers in {done - started:.2f} s")
    print(f"engine throughput: {engine_rate:.0f} msg/s end to end (start to last recorded result)")
    print(f"naive single requests loop: {naive:.0f} msg/s")
    print(f"ratio engine / naive: {engine_rate / naive:.2f}")
    print(
        f"recipient states: {counts}; simulator accepted {accepted['total']}, duplicates {len(duplicates)}"
    )


if __name__ == "__main__":
    main()
