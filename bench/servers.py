"""Helpers the benchmarks share for the servers they start: a free port, a checkout to run from."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_dir(directory: Path, argv: list[str]) -> list[str]:
    """``argv`` run from ``directory``: the checkout a server imports must be its working
    directory (the ``numbers`` app and the standard module are told apart by path)."""
    return ["/bin/sh", "-c", f"cd {shlex.quote(str(directory))} && exec {shlex.join(argv)}"]
