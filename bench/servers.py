"""Helpers the benchmarks share for the servers they start: a free port, a checkout to run from."""

from __future__ import annotations

import secrets
import shlex
import socket
from pathlib import Path

from cryptography.fernet import Fernet


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
