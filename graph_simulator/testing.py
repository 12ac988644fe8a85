"""Run the Graph API simulator in a child process for tests and benchmarks, and drive it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class SimulatorControl:
    """Thin client for the simulator's /_sim/ control API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = requests.Session()
        # Loopback only: an HTTP(S)_PROXY in the environment must not capture these calls.
        self._http.trust_env = False

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"{self.base_url}/_sim/{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"simulator {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        """Accepted messages, oldest first; filters: to, phone_number_id, template,
        callback_data, wamid, since_seq, limit."""
        return self._call("GET", "messages", params=filters)["messages"]

    def counts(self, *, duplicates_only: bool = False) -> dict[str, Any]:
        params = {"duplicates_only": "1"} if duplicates_only else None
        return self._call("GET", "counts", params=params)

    def reset(self) -> None:
        """Back to the startup state: seed data, startup faults, no messages, no webhooks."""
        self._call("POST", "reset")

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Change limits, faults or webhook settings (see Faults); returns them all."""
        return self._call("POST", "faults", json=settings)

    def inbound(
        self,
        sender: str,
        *,
        phone_number_id: str | None = None,
        type: str = "text",
        text: str | None = None,
        payload: str | None = None,
        context_id: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Deliver a user's message webhook now; returns message_id, delivered, payload."""
        body = {
            "from": sender,
            "phone_number_id": phone_number_id,
            "type": type,
            "text": text,
            "payload": payload,
            "context_id": context_id,
            "name": name,
        }
        return self._call("POST", "inbound", json={k: v for k, v in body.items() if v is not None})

    def upsert_templates(
        self, *templates: dict[str, Any], waba_id: str | None = None, notify: bool = True
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"templates": list(templates), "notify": notify}
        if waba_id:
            body["waba_id"] = waba_id
        return self._call("POST", "templates", json=body)["templates"]

    def token(self, token: str, action: str = "add", wabas: list[str] | None = None) -> None:
        """action: add, expire, restore or revoke."""
        self._call("POST", "tokens", json={"token": token, "action": action, "wabas": wabas})

    def update_number(self, phone_number_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", "numbers", json={"id": phone_number_id, **fields})

    def webhooks(self, *, wait: float | None = None) -> dict[str, Any]:
        """Webhook delivery stats; with `wait`, first wait (seconds) until nothing is queued."""
        params = {"wait": str(wait)} if wait is not None else None
        return self._call("GET", "webhooks", params=params)

    def read_marks(self) -> list[dict[str, Any]]:
        return self._call("GET", "read_marks")["read_marks"]

    def close(self) -> None:
        self._http.close()


class SimulatorProcess:
    """The simulator in a child process on a free loopback port.

    >>> with SimulatorProcess("--mps", "0") as sim:
    ...     settings.WHATSAPP_GRAPH_URL = sim.base_url
    ...     sim.control.messages()
    """

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
        self._control: SimulatorControl | None = None
        self._log: Any = None

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "graph_simulator",
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.args,
        ]

    @property
    def control(self) -> SimulatorControl:
        if self._control is None:
            raise RuntimeError("simulator not started")
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
            raise RuntimeError("simulator already started")
        env = {**os.environ, **(self.env or {})}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        # A file, not a pipe: nobody has to keep draining it while tests run.
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="graph-simulator-", suffix=".log", delete=False
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
                if line.startswith('{"event": "listening"'):
                    info = json.loads(line)
                    self.port = int(info["port"])
                    self.base_url = f"http://{self.host}:{self.port}"
                    self._control = SimulatorControl(self.base_url)
                    self._control.health()
                    return
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"simulator exited with {self.process.returncode}:\n{self.output()}"
                )
            time.sleep(0.01)
        raise TimeoutError(f"simulator not ready after {self.start_timeout} s:\n{self.output()}")

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
