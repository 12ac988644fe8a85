"""Starting and stopping the stack's processes (demo, tests, benchmarks) by their own pids."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@dataclass
class ManagedProcess:
    """A child process in its own process group, logging to a file.

    Only this process group is ever signalled: never a pattern match on names,
    which could hit someone else's processes.
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = BASE_DIR / "var" / "log"
    popen: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> "ManagedProcess":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 - argv built by our own code
            self.argv,
            cwd=BASE_DIR,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.killpg(self.pid, signum)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (warm shutdown for Celery), then SIGKILL after ``timeout``."""
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self._wait_group_gone()

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, for fault tests."""
        if self.alive():
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self._wait_group_gone()

    def _wait_group_gone(self, timeout: float = 10) -> None:
        # A worker's pool processes may outlive its main process by a moment,
        # still holding database connections: wait until the whole group is gone.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


def celery_worker(name: str, queues: str, *, concurrency: int = 2, env=None) -> ManagedProcess:
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
    )


def celery_beat(*, env=None) -> ManagedProcess:
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
    )


def gunicorn(*, bind: str, workers: int = 2, env=None) -> ManagedProcess:
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
