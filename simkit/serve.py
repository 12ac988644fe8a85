"""Serve a simulator's aiohttp app until SIGTERM/SIGINT, announcing the bound port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web


def logging_configure(access_log: bool) -> None:
    """INFO (with the access log) when asked for, else warnings only, to stderr."""
    logging.basicConfig(
        level=logging.INFO if access_log else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def app_serve(
    app: web.Application, host: str, port: int, *, access_log: bool = False, url_path: str = ""
) -> None:
    """Run until SIGTERM/SIGINT. Prints one JSON line with the bound port when ready.

    simkit.process.SimulatorChild waits for that line; ``url_path`` is appended to the
    announced URL (e.g. ``/v1`` for an OpenAI-style base URL).
    """
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("aiohttp.access") if access_log else None,
        # Hung "timeout" requests must not hold up a stop.
        shutdown_timeout=0.5,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    ready = {"event": "listening", "url": f"http://{host}:{bound}{url_path}", "port": bound}
    print(json.dumps({**ready, "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def simulator_run(
    options: dict[str, Any], app_make: Callable[[], web.Application], *, url_path: str = ""
) -> None:
    """The body of ``python -m <simulator>``: log setup, then serve ``app_make()`` on
    ``options["host"]``/``options["port"]`` until SIGTERM/SIGINT.

    The app (and the state behind it) is made inside the event loop, where aiohttp wants
    it; a ValueError from it ends ``asyncio.run`` and reaches the caller's argument parser.
    """
    access_log = bool(options.get("access_log"))
    logging_configure(access_log)

    async def serve() -> None:
        await app_serve(
            app_make(), options["host"], options["port"], access_log=access_log, url_path=url_path
        )

    asyncio.run(serve())
