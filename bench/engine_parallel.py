"""Benchmark 2: lanes in parallel. N numbers, latency L per send: achieved / (N / L).

Each lane sends one message at a time (window 1), so a number can do at most
1/L messages a second; N lanes side by side should get close to N/L.

Usage: python bench/engine_parallel.py [--numbers 8] [--latency-ms 50] [--messages 2400]
"""

import argparse

import stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2400)
    args = parser.parse_args()

    stack.prepare_database()
    latency = f"{args.latency_ms}"
    with stack.simulator(args.numbers, "--latency-ms", latency) as sim:
        workspace, numbers, template = stack.setup_workspace(sim, args.numbers, max_mps=100_000)
        campaign = stack.create_campaign(workspace, numbers, template, args.messages)
        stack.set_rate(100_000)
        with stack.workers(sim, concurrency=args.numbers):
            stack.start(campaign)
            stack.wait_done(campaign, timeout=600)
        messages = sim.control.messages()
    first, last = messages[0]["accepted_at"], messages[-1]["accepted_at"]
    # Rate between the first and the last accepted send, so worker start-up is not counted.
    achieved = (len(messages) - 1) / (last - first)
    ideal = args.numbers / (args.latency_ms / 1000)
    print(f"command: {stack.command_line()}")
    print(f"{len(messages)} sends over {args.numbers} numbers with {args.latency_ms} ms latency")
    print(f"achieved {achieved:.1f} msg/s; ideal N/L = {ideal:.1f} msg/s")
    print(f"ratio achieved / ideal: {achieved / ideal:.3f}")


if __name__ == "__main__":
    main()
