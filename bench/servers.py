"""Helpers the benchmarks share for the servers they start: a free port, a checkout to run from,
a database of their own."""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_dir(directory: Path, argv: list[str]) -> list[str]:
    """``argv`` run from ``directory``: the checkout a server imports must be its working
    directory (the ``numbers`` app and the standard module are told apart by path)."""
    return ["/bin/sh", "-c", f"cd {shlex.quote(str(directory))} && exec {shlex.join(argv)}"]


def server_env(*, database_url: str, redis_url: str, debug: str = "0") -> dict[str, str]:
    """The environment of a throw-away production-like server on loopback: fresh secrets,
    plain http (no SSL redirect), its own Redis database as broker and cache."""
    return {
        "DATABASE_URL": database_url,
        "DEBUG": debug,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "LOG_LEVEL": "WARNING",
    }


def bench_database_url(suffix: str) -> str:
    """``DATABASE_URL`` (or the default) with ``suffix`` appended to the database name, so a
    benchmark never writes into the development or test database."""
    from config.env import parse_database_url

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wacampaigns")
    name = parse_database_url("DATABASE_URL", url)["NAME"]
    base, _, query = url.partition("?")
    return base[: -len(name)] + name + suffix + (f"?{query}" if query else "")


def prepare_database(database_url: str) -> None:
    """Creates and migrates the bench database (quietly) in a child process."""
    env = {**os.environ, "DATABASE_URL": database_url}
    for command in (
        [sys.executable, str(ROOT / "scripts" / "createdb.py")],
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"],
    ):
        subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True, timeout=300)
