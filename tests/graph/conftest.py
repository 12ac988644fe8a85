"""Fixtures for the Graph client and simulator tests (the simulator itself: tests/conftest.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from graph_simulator.seed import DEMO_TOKEN
from graph_simulator.testing import SimulatorControl
from messaging.graph import GraphClient


@pytest.fixture
def client(sim: SimulatorControl) -> GraphClient:
    """A GraphClient for the demo token against the simulator, with short timeouts."""
    return GraphClient(DEMO_TOKEN, base_url=sim.base_url, timeout=(1.0, 2.0))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A loopback HTTP server recording every POST; `statuses` scripts its answers."""

    url: str = ""
    posts: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    state = WebhookReceiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.posts.append(Received(self.path, dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/whatsapp"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
