"""Starting, supervising and stopping the stack's processes (demo, tests, benchmarks) by their own pids."""

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restart:
    """One unexpected exit of a supervised process, and the delay before it was started again."""

    number: int
    pid: int
    returncode: int
    exited_at: float  # time.time()
    delay: float


@dataclass(eq=False)  # compared and hashed by identity: one object, one process group
class ManagedProcess:
    """A child process in its own process group, logging to a file.

    Only this process group is ever signalled: never a pattern match on names,
    which could hit someone else's processes.

    With ``restart=True`` a monitor thread waits on the process and starts it
    again when it exits on its own (a crash, ``kill()``, Celery's
    "Unrecoverable error" when the Redis broker restarts; see
    docs/production.md), after ``backoff_first`` seconds, doubling up to
    ``backoff_max`` while it keeps failing, and back to ``backoff_first`` once
    a run has lasted ``stable_after`` seconds. Before a restart, what is left
    of the old process group (a worker's pool processes) gets ``group_grace``
    seconds to exit and is then SIGKILLed, so two generations never run side
    by side. ``stop()`` never leads to a restart. Every exit and restart is
    written to the log file and reported to ``on_event`` (called from the
    monitor thread), or without one to this module's logger.
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = BASE_DIR / "var" / "log"
    popen: subprocess.Popen | None = None
    restart: bool = False
    backoff_first: float = 1.0
    backoff_max: float = 30.0
    stable_after: float = 60.0
    group_grace: float = 10.0
    on_event: Callable[[str], None] | None = None
    restarts: list[Restart] = field(default_factory=list)
    _started_at: float = field(default=0.0, init=False, repr=False)
    _monitor: threading.Thread | None = field(default=None, init=False, repr=False)
    # Set by stop(), under _lock: the monitor checks it under the same lock
    # before it spawns, so no process can be started after stop() has begun.
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> "ManagedProcess":
        self._stopping.clear()
        self._spawn()
        if self.restart:
            _supervised.add(self)
            self._monitor = threading.Thread(
                target=self._supervise, name=f"supervise-{self.name}", daemon=True
            )
            self._monitor.start()
        return self

    def _spawn(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - argv built by our own code
                self.argv,
                cwd=BASE_DIR,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._started_at = time.monotonic()

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        """The process is running right now."""
        return self.popen is not None and self.popen.poll() is None

    def up(self) -> bool:
        """Running, or exited and waiting for its monitor to start it again."""
        return self.alive() or (
            self._monitor is not None and self._monitor.is_alive() and not self._stopping.is_set()
        )

    def signal(self, signum: int) -> None:
        if self.alive():
            os.killpg(self.pid, signum)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (warm shutdown for Celery), then SIGKILL after ``timeout``; no restart follows."""
        with self._lock:
            self._stopping.set()
            popen = self.popen
        if popen is not None:
            if popen.poll() is None:
                _signal_group(popen.pid, signal.SIGTERM)
                try:
                    popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(popen.pid, signal.SIGKILL)
                    popen.wait(timeout=10)
            self._wait_group_gone(popen.pid)
        self._join_monitor()

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, for fault tests (a supervised process is
        then restarted, as after any crash)."""
        popen = self.popen
        if popen is not None and popen.poll() is None:
            _signal_group(popen.pid, signal.SIGKILL)
            popen.wait(timeout=10)
        if popen is not None:
            self._wait_group_gone(popen.pid)

    def _wait_group_gone(self, pgid: int, timeout: float | None = None) -> None:
        # A worker's pool processes may outlive its main process by a moment,
        # still holding database connections: wait until the whole group is gone.
        deadline = time.monotonic() + (self.group_grace if timeout is None else timeout)
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        _signal_group(pgid, signal.SIGKILL)

    def _join_monitor(self) -> None:
        monitor = self._monitor
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join(timeout=self.group_grace + 5)

    # -- supervision (the monitor thread) ------------------------------------------------

    def _supervise(self) -> None:
        delay = self.backoff_first
        while True:
            popen = self.popen
            returncode = popen.wait()
            exited_at, ran_for = time.time(), time.monotonic() - self._started_at
            if self._stopping.is_set():
                return
            self._wait_group_gone(popen.pid)
            if ran_for >= self.stable_after:
                delay = self.backoff_first
            self.restarts.append(
                Restart(len(self.restarts) + 1, popen.pid, returncode, exited_at, delay)
            )
            self._report(
                f"{self.name} (pid {popen.pid}) exited unexpectedly at "
                f"{time.strftime('%H:%M:%S', time.localtime(exited_at))} with "
                f"{_describe(returncode)} after {ran_for:.1f} s; restarting it in {delay:g} s"
            )
            while True:
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, self.backoff_max)
                with self._lock:
                    if self._stopping.is_set():
                        return
                    try:
                        self._spawn()
                        break
                    except OSError as error:
                        failure = error
                self._report(
                    f"{self.name} could not be started ({failure}); trying again in {delay:g} s"
                )
            self._report(f"{self.name} restarted (pid {self.pid})")

    def _report(self, text: str) -> None:
        """Into the process's own log file, and to ``on_event`` if set, else to the logger."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError), self.log_path.open("a") as log:
            log.write(f"[{stamp}: SUPERVISOR/config.procs] {text}\n")
        if self.on_event is None:
            logger.warning("%s", text)
            return
        try:
            self.on_event(text)
        except Exception:  # a broken callback must not end the supervision
            logger.exception("on_event of %s failed on: %s", self.name, text)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _describe(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
        return f"signal {-returncode}"
    return f"exit code {returncode}"


# When the interpreter exits without stop() (a test run interrupted), the
# monitors, daemon threads, must not start anything more on their way out.
_supervised: "weakref.WeakSet[ManagedProcess]" = weakref.WeakSet()


@atexit.register
def _no_restarts_after_exit() -> None:
    for process in list(_supervised):
        with process._lock:
            process._stopping.set()


def celery_worker(
    name: str, queues: str, *, concurrency: int = 2, env=None, restart: bool = False
) -> ManagedProcess:
    return ManagedProcess(
        name,
        [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "worker",
            "-Q",
            queues,
            "-n",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        env or {},
        restart=restart,
    )


def celery_beat(*, env=None, restart: bool = False) -> ManagedProcess:
    schedule = BASE_DIR / "var" / "celerybeat.pid"
    return ManagedProcess(
        "beat",
        [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--pidfile",
            str(schedule),
        ],
        env or {},
        restart=restart,
    )


def gunicorn(*, bind: str, workers: int = 2, env=None) -> ManagedProcess:
    # Not supervised: gunicorn's master already replaces a worker that dies,
    # and the master itself exits only on errors a restart would not mend
    # (address in use, broken configuration).
    return ManagedProcess(
        "web",
        [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi",
            "--bind",
            bind,
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ],
        env or {},
    )


def wait_http(url: str, *, timeout: float = 30, expect: int = 200) -> None:
    """Polls ``url`` until it answers ``expect``; raises TimeoutError naming the url."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code == expect:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer {expect} within {timeout:.0f} s")
        time.sleep(0.2)
