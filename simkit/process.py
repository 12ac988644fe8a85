"""Run a local simulator (``python -m <module>``) in a child process and wait until it listens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The first line a simulator prints once its socket is bound (see simkit.serve).
READY_PREFIX = '{"event": "listening"'


class ControlClient:
    """Thin client for a simulator's /_sim/ control API; subclasses add the calls."""

    label: ClassVar[str] = "simulator"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = requests.Session()
        # Loopback only: an HTTP(S)_PROXY in the environment must not capture these calls.
        self._http.trust_env = False

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"{self.base_url}/_sim/{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(
                f"{self.label} {method} {path}: {response.status_code} {response.text}"
            )
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def close(self) -> None:
        self._http.close()


ControlT = TypeVar("ControlT", bound=ControlClient)


class SimulatorNotReady(RuntimeError, TimeoutError):
    """The child did not print its ready line in time (both a RuntimeError and a TimeoutError)."""


class SimulatorChild(Generic[ControlT]):
    """A simulator in a child process on a free loopback port, driven through its control client.

    Subclasses name the module to run, the label used in errors, the log file's name
    prefix, and the control client class built on the bound base URL.
    """

    module: ClassVar[str]
    label: ClassVar[str]
    log_prefix: ClassVar[str]
    control_class: ClassVar[type[ControlClient]]

    def __init__(
        self,
        *args: str,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 15.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = list(args)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self._control: ControlT | None = None
        self._log: Any = None

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            self.module,
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.args,
        ]

    @property
    def control(self) -> ControlT:
        if self._control is None:
            raise RuntimeError(f"{self.label} not started")
        return self._control

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def output(self) -> str:
        """What the simulator printed so far (stdout and stderr)."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def start(self) -> Self:
        if self.process is not None:
            raise RuntimeError(f"{self.label} already started")
        env = {**os.environ, **(self.env or {})}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        # A file, not a pipe: nobody has to keep draining it while tests run.
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=self.log_prefix, suffix=".log", delete=False
        )
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(PROJECT_ROOT),
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if line.startswith(READY_PREFIX):
                    info = json.loads(line)
                    self.port = int(info["port"])
                    self.base_url = f"http://{self.host}:{self.port}"
                    self._control = self.control_class(self.base_url)
                    self._control.health()
                    return
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited with {self.process.returncode}:\n{self.output()}"
                )
            time.sleep(0.01)
        raise SimulatorNotReady(
            f"{self.label} not ready after {self.start_timeout} s:\n{self.output()}"
        )

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 5 s) by its own pid."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            self.process = None
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
