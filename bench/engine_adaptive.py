"""Benchmark 4: adaptive rate. The simulator throttles above a total of T msg/s.

Starts the shared rate above T and lets the engine find its way under it: the
worker cuts 20% at every 3rd consecutive 130429, the controller (run here
every 5 s, as beat does) raises 10% after a clean period. Reports the time to
settle under T, goodput as a share of T, and the share of sends throttled.
The raise period is shortened (--raise-after) so a run shows several cycles.

Usage: python bench/engine_adaptive.py [--limit 300] [--start-rate 600] [--seconds 60]
       [--raise-after 15]
"""

import argparse
import contextlib
import time

import stack

from messaging import ratelimit
from messaging.controller import rate_controller_tick
from messaging.models import RateAdjustment


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--start-rate", type=float, default=600)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--raise-after", type=float, default=15)
    args = parser.parse_args()

    from django.conf import settings

    settings.SEND_RATE_RAISE_AFTER_SECONDS = args.raise_after
    settings.SEND_RATE_COOLDOWN_SECONDS = args.raise_after
    count = int(args.limit * args.seconds * 1.2)
    stack.prepare_database()
    # One number whose Meta cap is the limit; our own cap for it is set far above,
    # so only the shared adaptive rate can keep the engine under Meta's.
    with stack.simulator(1, "--throttle-status", "429", mps=args.limit) as sim:
        workspace, numbers, template = stack.setup_workspace(sim, 1, max_mps=100_000)
        campaign = stack.create_campaign(workspace, numbers, template, count)
        stack.set_rate(args.start_rate)
        env = {"SEND_RATE_COOLDOWN_SECONDS": args.raise_after}
        next_tick = time.monotonic()
        samples = []

        def tick() -> None:
            nonlocal next_tick
            if time.monotonic() >= next_tick:
                rate_controller_tick()
                next_tick += 5
            samples.append((time.monotonic(), ratelimit.current_rate(), throttled_so_far()))

        def throttled_so_far() -> int:
            return int(sim.control.counts()["rejected"].get("130429", 0))

        with stack.workers(sim, concurrency=2, **env):
            started = stack.start(campaign)
            # The run is bounded by --seconds, not by the campaign's size.
            with contextlib.suppress(TimeoutError):
                stack.wait_done(campaign, timeout=args.seconds, on_tick=tick)
            elapsed = time.monotonic() - started
            from campaigns.models import Campaign, CampaignStatus

            Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PAUSED)
            time.sleep(3)
        counts = sim.control.counts()
    accepted = counts["total"]
    throttled = int(counts["rejected"].get("130429", 0))
    # Settled: from then on, no 5-second stretch saw a throttled send.
    settled = None
    for i, (t, _, rejected) in enumerate(samples):
        later = [r for u, _, r in samples[i:] if u <= t + 5]
        if samples[-1][0] >= t + 5 and later[-1] == rejected:
            settled = t - started
            break
    adjustments = list(RateAdjustment.objects.order_by("at").values_list("old", "new", "reason"))
    print(f"command: {stack.command_line()}")
    print(
        f"limit {args.limit} msg/s at the simulator, start rate {args.start_rate:g}, ran {elapsed:.0f} s"
    )
    print(
        f"settled (first 5 s without a throttled send) after {settled:.1f} s"
        if settled is not None
        else "never settled"
    )
    print(
        f"goodput {accepted / elapsed:.1f} msg/s = {accepted / elapsed / args.limit * 100:.1f}% of the limit"
    )
    print(
        f"throttled: {throttled} of {accepted + throttled} sends ({throttled / max(1, accepted + throttled) * 100:.2f}%)"
    )
    print(
        "rate changes: "
        + "; ".join(f"{o:.0f}->{n:.0f} ({r.split(' over')[0]})" for o, n, r in adjustments)
    )


if __name__ == "__main__":
    main()
