"""Real receivers on loopback for the notification tests: an SMTP server (aiosmtpd), an HTTP
server that checks Standard Webhooks signatures with the reference library, a fake Slack."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifications.models import Channel, ChannelKind
from notifications.services import channel_create

# The webhook tests' world (a running campaign, numbers, a template) and signed POSTs.
from tests.webhooks.conftest import post, webhook_settings, world  # noqa: F401


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    at: float  # time.time() when the request arrived
    path: str
    headers: dict[str, str]
    body: bytes
    # Which of the receiver's secrets verified it (webhooks), by index.
    verified_by: list[int] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP endpoint: answers each POST with the next of ``script`` (status, delay
    seconds), then 200s; records every request. With ``secrets`` it verifies each request
    with standardwebhooks and records which secrets accepted it."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[tuple[int, float]] = []
        self.secrets: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                record = Received(time.time(), self.path, headers, body)
                for index, secret in enumerate(receiver.secrets):
                    try:
                        Webhook(secret).verify(body, headers)
                    except WebhookVerificationError:
                        continue
                    record.verified_by.append(index)
                with receiver._lock:
                    receiver.requests.append(record)
                    status, delay = receiver.script.pop(0) if receiver.script else (200, 0)
                if delay:
                    time.sleep(delay)
                payload = b"ok" if status < 300 else b"nope"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


class SmtpInbox:
    """Collects what the SMTP server was given."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content.decode("utf8", errors="replace"),
            }
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings) -> Iterator[SmtpInbox]:
    """A real SMTP server on loopback, and Django's SMTP backend pointed at it."""
    inbox = SmtpInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "alerts@wa.example"
    inbox.port = port
    yield inbox
    controller.stop()


@pytest.fixture(autouse=True)
def notify_settings(settings):
    settings.NOTIFY_ALLOW_HTTP = True
    settings.NOTIFY_BASE_URL = "https://wa.example"
    settings.NOTIFY_RETRY_BASE_SECONDS = 30
    settings.NOTIFY_RETRY_MAX_SECONDS = 3600
    settings.NOTIFY_RETRY_FOR_HOURS = 24
    settings.NOTIFY_CONNECT_TIMEOUT = 2
    settings.NOTIFY_READ_TIMEOUT = 2
    return settings


def webhook_channel(workspace, url: str, events=None) -> tuple[Channel, str]:
    return channel_create(workspace=workspace, kind=ChannelKind.WEBHOOK, target=url, events=events)


def slack_channel(workspace, url: str, events=None) -> Channel:
    return channel_create(workspace=workspace, kind=ChannelKind.SLACK, target=url, events=events)[0]


def email_channel(workspace, target, events=None) -> Channel:
    return channel_create(
        workspace=workspace, kind=ChannelKind.EMAIL, target=target, events=events
    )[0]
