"""The browser suite: Debian's Chromium (through pytest-playwright) against one live stack
per run of this package: the in-process live server (pytest-django), a real Celery
worker and beat on the test database and Redis, and the Graph API simulator posting
signed webhooks to the live server.

Playwright's sync API keeps an asyncio loop running on this thread while a browser is
open, which Django's ORM takes for async code; DJANGO_ALLOW_ASYNC_UNSAFE is set for this
package only, and the browser is started and stopped with the package (the pytest-playwright
fixtures are overridden at package scope), so tests after it run without either.

With WAC_SCREENSHOTS=1 the tests save screenshots of the main screens into
docs/screenshots/ (``make screenshots``); otherwise they write nothing to the tree.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from config import procs
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from tests.engine.conftest import wait_worker_ready
from tests.factories import make_number

CHROMIUM = Path(os.environ.get("WAC_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
APP_SECRET = "browser-app-secret"  # signs the simulator's webhooks in tests
WEBHOOK_PATH = "/webhooks/whatsapp/"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
# The engine's starting rate for the worker: slow enough that a marketer sees a
# 36-contact campaign advance, pause and resume (2 messages a second).
WORKER_SEND_RATE = "2"


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason=f"no Chromium at {CHROMIUM}: `make setup` installs it (apt-get install chromium)"
    )
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="package", autouse=True)
def allow_async_unsafe() -> Iterator[None]:
    old = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    yield
    if old is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = old


# -- pytest-playwright, with Debian's Chromium, for this package only ----------------------


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    return {"executable_path": str(CHROMIUM), "args": ["--no-sandbox"], "headless": True}


@pytest.fixture(scope="session")
def browser_context_args() -> dict:
    return {"viewport": DESKTOP, "locale": "en-GB", "timezone_id": "UTC"}


@pytest.fixture
def context(new_context):
    """A browser context with the admin's navigation sidebar folded away (a person's
    choice the admin remembers in localStorage): the pages show their content only."""
    made = new_context()
    made.add_init_script(
        "try { localStorage.setItem('django.admin.navSidebarIsOpen', 'false'); } catch (e) {}"
    )
    return made


@pytest.fixture(scope="package")
def playwright(allow_async_unsafe):
    from playwright.sync_api import sync_playwright

    started = sync_playwright().start()
    yield started
    started.stop()


@pytest.fixture(scope="package")
def browser_type(playwright):
    return playwright.chromium


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type) -> Callable:
    def launch(**kwargs):
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser):
    opened = launch_browser()
    yield opened
    opened.close()


# -- the live stack ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_redis(settings):
    """Replaces the per-test flush of tests/conftest.py: the package's worker keeps its
    queues in this Redis for the whole package (flushed once, in ``stack``)."""
    return


@pytest.fixture(autouse=True)
def browser_settings(settings):
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture(scope="package")
def stack(django_db_setup, simulators, tmp_path_factory) -> Iterator[dict]:
    """A real worker (every queue) and beat on the test database, Redis and the simulator,
    for the whole package."""
    from django.conf import settings

    from config.redis import get_redis

    get_redis().flushdb()
    simulator = simulators.get("demo")
    db = connection.settings_dict
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_REDIS_URL": settings.REDIS_URL,
        "WHATSAPP_GRAPH_URL": simulator.base_url,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "SEND_RATE_START": WORKER_SEND_RATE,
        "SEND_RATE_MIN": "1",
        "LANE_LEASE_SECONDS": "3",
        "PYTHONUNBUFFERED": "1",
    }
    logs = tmp_path_factory.mktemp("browser-stack")
    worker = procs.celery_worker(
        "browser-worker",
        "sending,replies,webhooks,periodic,default",
        concurrency=3,
        env=env,
    )
    worker.log_dir = logs
    beat = procs.ManagedProcess(
        "browser-beat",
        [
            str(procs.VENV_BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--pidfile",
            str(logs / "beat.pid"),
        ],
        env,
        log_dir=logs,
    )
    worker.start()
    try:
        wait_worker_ready(worker, timeout=60)
        beat.start()
        yield {"env": env, "worker": worker, "beat": beat, "simulator": simulator}
    finally:
        beat.stop(timeout=10)
        worker.stop(timeout=15)


@pytest.fixture
def live(stack, live_server, sim, transactional_db):
    """The live server's address, with the simulator's webhooks signed and posted to it."""
    sim.set_faults(callback_url=f"{live_server.url}{WEBHOOK_PATH}", app_secret=APP_SECRET)
    return live_server.url


@pytest.fixture
def demo_number(workspace):
    """The first demo number of the simulator (as the engine tests add it: no tier, so the
    pre-flight only warns about headroom)."""
    return make_number(
        workspace=workspace,
        label="Main",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
        display_phone_number="+91 98765 00001",
        messaging_limit_tier="",
        max_mps=80,
    )


# -- what the user sees ------------------------------------------------------------------


class Console:
    """Errors the pages log (console.error and uncaught exceptions), with their page."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        # Set by a test that opens a page expecting a refusal: the browser logs the
        # document's own 403 as an error, which is then what the test asserts.
        self.refusals_expected = False

    def watch(self, page) -> None:
        def on_console(message) -> None:
            if message.type != "error":
                return
            document_refused = (
                message.text.startswith("Failed to load resource")
                and (message.location or {}).get("url") == page.url
            )
            if not (self.refusals_expected and document_refused):
                self.errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))

    def assert_clean(self) -> None:
        assert self.errors == [], "pages logged errors:\n" + "\n".join(self.errors)


@pytest.fixture
def console(page) -> Console:
    watcher = Console()
    watcher.watch(page)
    return watcher


def login(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    page.wait_for_load_state()
    assert "/admin/login/" not in page.url, page.locator("body").inner_text()[:500]


def screenshot(page, name: str, *, full_page: bool = True) -> None:
    """Saves docs/screenshots/<name>.png when WAC_SCREENSHOTS is set; else nothing."""
    if not os.environ.get("WAC_SCREENSHOTS"):
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)
