"""Benchmark 3: rate accuracy. Shared rate fixed at R: mean rate and the busiest 1-second window.

The adaptive controller is not running (nothing raises or cuts the rate), so
the limiter alone paces 4 lanes sharing the one rate.

Usage: python bench/engine_rate.py [--rate 200] [--seconds 30] [--numbers 4]
"""

import argparse
import bisect

import stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--numbers", type=int, default=4)
    args = parser.parse_args()

    count = int(args.rate * args.seconds)
    stack.prepare_database()
    with stack.simulator(args.numbers) as sim:
        workspace, numbers, template = stack.setup_workspace(sim, args.numbers, max_mps=1000)
        campaign = stack.create_campaign(workspace, numbers, template, count)
        stack.set_rate(args.rate)
        with stack.workers(sim, concurrency=args.numbers):
            stack.start(campaign)
            stack.wait_done(campaign, timeout=args.seconds * 3 + 60)
        times = sorted(m["accepted_at"] for m in sim.control.messages())
    mean = (len(times) - 1) / (times[-1] - times[0])
    # Every 1-second window starting at a send: the most sends any second saw.
    busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    print(f"command: {stack.command_line()}")
    print(f"{len(times)} sends at a fixed rate of {args.rate:g} msg/s over {args.numbers} lanes")
    print(f"measured mean {mean:.1f} msg/s ({(mean / args.rate - 1) * 100:+.2f}% of the rate)")
    print(
        f"busiest 1-second window: {busiest} sends ({busiest / args.rate * 100:.1f}% of the rate)"
    )


if __name__ == "__main__":
    main()
