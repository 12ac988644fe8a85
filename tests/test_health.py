"""/healthz reports each dependency, and 503 naming the one that failed."""

import shutil
import socket
import subprocess
import time

import pytest

from config.redis import get_redis

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_all_checks_pass_with_everything_running(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "broker": True,
    }


def test_a_stopped_redis_is_reported_as_503(client, settings):
    port = free_port()
    server = None
    if shutil.which("redis-server"):
        # A real Redis of our own, stopped mid-test: the shared one stays up.
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        settings.REDIS_URL = url
        settings.CELERY_BROKER_URL = url
        get_redis.cache_clear()
        if server is not None:
            deadline = time.monotonic() + 10
            while client.get("/healthz").status_code != 200:
                assert time.monotonic() < deadline, "private redis never came up"
                time.sleep(0.1)
            server.terminate()
            server.wait(timeout=10)
        response = client.get("/healthz")
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        get_redis.cache_clear()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["broker"]["ok"] is False
    assert "ConnectionError" in body["checks"]["redis"]["error"]
