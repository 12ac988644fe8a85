"""config.procs supervision: restarts with back-off, stops for good, leaks no process; a real
worker restarted after a broker restart finishes its campaign with nothing sent twice."""

import contextlib
import itertools
import sys
import time
from pathlib import Path

import pytest

from campaigns.models import NOT_DONE_STATES, CampaignStatus, RecipientStatus
from campaigns.services import campaign_start
from config import procs
from config.redis import get_redis
from messaging import ratelimit
from messaging.sweeper import sweep


def wait_until(predicate, *, timeout: float, step: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)
    return value


def group_running(pgid: int) -> bool:
    """Whether a process of the group is still running. A killed orphan stays a zombie until
    PID 1 reaps it (here up to ~2 s later), and killpg(pgid, 0) still finds zombies."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after it.
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == pgid and state != "Z":
                return True
    return False


def python(name: str, code: str, tmp_path, **options) -> procs.ManagedProcess:
    return procs.ManagedProcess(
        name, [sys.executable, "-c", code], log_dir=tmp_path, restart=True, **options
    )


# A pool process of a worker: it lives on in the group after its parent has exited.
SPAWN_LINGERING_CHILD = (
    "import subprocess, sys; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])"
)


def test_a_process_that_keeps_exiting_is_restarted_after_a_doubling_back_off_up_to_its_cap(
    tmp_path,
):
    events: list[str] = []
    process = python(
        "flaky",
        "import sys; sys.exit(3)",
        tmp_path,
        backoff_first=0.1,
        backoff_max=0.4,
        on_event=events.append,
    )
    process.start()
    try:
        wait_until(lambda: len(process.restarts) >= 5, timeout=30, what="five restarts")
    finally:
        process.stop()

    restarts = process.restarts[:5]
    assert [r.delay for r in restarts] == [0.1, 0.2, 0.4, 0.4, 0.4]
    assert {r.returncode for r in restarts} == {3}
    assert len({r.pid for r in restarts}) == 5
    for before, after in itertools.pairwise(restarts):
        assert after.exited_at - before.exited_at >= before.delay
    first = restarts[0]
    said = f"flaky (pid {first.pid}) exited unexpectedly at "
    log = process.log_path.read_text()
    assert said in log
    assert "with exit code 3 after " in log
    assert "; restarting it in 0.1 s" in log
    assert any(e.startswith(said) and e.endswith("restarting it in 0.1 s") for e in events)
    assert f"flaky restarted (pid {restarts[1].pid})" in events
    assert not process.up()


def test_the_back_off_starts_again_from_the_first_delay_once_a_run_has_lasted(tmp_path):
    process = python(
        "steady",
        "import sys, time; time.sleep(0.3); sys.exit(1)",
        tmp_path,
        backoff_first=0.1,
        stable_after=0.2,
    )
    process.start()
    try:
        wait_until(lambda: len(process.restarts) >= 3, timeout=30, what="three restarts")
    finally:
        process.stop()
    assert [r.delay for r in process.restarts[:3]] == [0.1, 0.1, 0.1]


def test_stop_ends_a_supervised_process_and_its_group_and_never_restarts_it(tmp_path):
    process = python("steady", SPAWN_LINGERING_CHILD + "; import time; time.sleep(60)", tmp_path)
    process.start()
    pid = process.pid
    time.sleep(0.5)
    assert group_running(pid)

    process.stop(timeout=5)

    assert not group_running(pid)  # the child it started went with it
    assert process.restarts == []
    assert process.popen.pid == pid  # nothing was started after the stop
    assert not process.up()
    assert "SUPERVISOR" not in process.log_path.read_text()


def test_stop_during_the_back_off_starts_nothing_more(tmp_path):
    process = python("crasher", "import sys; sys.exit(2)", tmp_path, backoff_first=30)
    process.start()
    wait_until(lambda: process.restarts, timeout=10, what="the exit")
    started = time.monotonic()

    process.stop()

    assert time.monotonic() - started < 2  # the 30 s wait was cut short
    assert [r.pid for r in process.restarts] == [process.popen.pid]
    assert not process.alive()
    assert not process.up()


def test_what_is_left_of_a_crashed_process_group_is_killed_before_the_restart(tmp_path):
    marker = tmp_path / "crashed-once"
    # The first run leaves a child behind and exits 1; the second runs until stopped.
    code = (
        f"import os, sys, time\nif not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n    {SPAWN_LINGERING_CHILD}\n    sys.exit(1)\n"
        "time.sleep(60)\n"
    )
    process = python("leaky", code, tmp_path, backoff_first=0.1, group_grace=0.5)
    process.start()
    first = process.pid
    try:
        wait_until(lambda: process.alive() and process.pid != first, timeout=10, what="restart")
        assert not group_running(first)  # its lingering child was killed first
        assert [r.returncode for r in process.restarts] == [1]
    finally:
        process.stop()
    assert not group_running(process.pid)


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_exits_on_a_broker_restart_is_restarted_and_finishes_the_campaign(
    engine, sim, start_worker, settings, private_redis
):
    settings.SWEEP_GRACE_SECONDS = 1
    worker = start_worker("phoenix", concurrency=2, restart=True, TEST_REDIS_URL=private_redis.url)
    sim.set_faults(latency_ms=[8, 8])
    get_redis().set(ratelimit.RATE_KEY, "1000")
    campaign = engine.campaign(count=300, status=CampaignStatus.DRAFT)
    campaign_start(campaign=campaign, user=None)
    # Halfway through the second link (batches of 100), far from an ack: with
    # a link in hand, kombu makes the worker exit when the broker goes away (at
    # an ack it may ride it out instead; docs/production.md).
    assert settings.LANE_BATCH_SIZE == 100
    wait_until(lambda: sim.counts()["total"] >= 150, timeout=30, step=0.01, what="sends")
    first_pid = worker.pid

    private_redis.restart()
    get_redis().connection_pool.disconnect()
    assert sim.counts()["total"] < 300  # mid-run

    # Only beat's sweeper is played by the test: the restart is the helper's.
    def done() -> bool:
        sweep()
        campaign.refresh_from_db()
        return campaign.status == CampaignStatus.COMPLETED

    wait_until(done, timeout=120, step=0.3, what=f"campaign {campaign.pk} to complete")

    assert sim.counts(duplicates_only=True)["by_recipient"] == {}
    assert not campaign.recipients.filter(status__in=NOT_DONE_STATES).exists()
    statuses = dict(campaign.recipients.values_list("phone", "status"))
    assert set(statuses.values()) <= {RecipientStatus.SENT, RecipientStatus.UNKNOWN}
    unknown = [p for p, s in statuses.items() if s == RecipientStatus.UNKNOWN]
    # Redis lost the marks of the claim in flight: its rows may all be unknown.
    assert len(unknown) <= settings.LANE_BATCH_SIZE

    # The worker exited (kombu's "Unrecoverable error", docs/production.md), and
    # the helper said so and started another, which finished the campaign.
    assert [r.pid for r in worker.restarts] == [first_pid]
    assert worker.restarts[0].returncode != 0
    assert worker.pid != first_pid
    assert worker.alive()
    log = worker.log_path.read_text(errors="replace")
    assert "Unrecoverable error" in log
    assert f"phoenix (pid {first_pid}) exited unexpectedly at " in log
    assert "; restarting it in 1 s" in log
    assert f"phoenix restarted (pid {worker.pid})" in log
    assert log.count(" ready.") == 2
