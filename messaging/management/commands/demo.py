"""manage.py demo: the whole stack on this machine against the built-in Graph API simulator."""

import secrets
import signal
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Role, Workspace
from config import procs

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = (
        "Starts the Graph API simulator, web (gunicorn), a Celery worker and beat, "
        "creates the demo workspace and login, and prints where to log in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000", help="web address")
        parser.add_argument("--simulator-port", type=int, default=8900)
        parser.add_argument(
            "--run-for",
            type=float,
            default=None,
            help="stop after this many seconds (default: until Ctrl-C)",
        )

    def handle(self, *args, bind, simulator_port, run_for, **options):
        password = self._demo_login()
        simulator_url = f"http://127.0.0.1:{simulator_port}"
        env = {"WHATSAPP_GRAPH_URL": simulator_url, "PYTHONUNBUFFERED": "1"}
        stack = [
            procs.ManagedProcess(
                "simulator",
                [sys.executable, "-m", "messaging.simulator", "--port", str(simulator_port)],
                env,
            ),
            procs.gunicorn(bind=bind, env=env),
            procs.celery_worker("worker", "sending,webhooks,periodic,default", env=env),
            procs.celery_beat(env=env),
        ]
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        try:
            for process in stack:
                process.start()
                self.stdout.write(
                    f"started {process.name} (pid {process.pid}), log {process.log_path}"
                )
            procs.wait_http(f"{simulator_url}/_sim/health")
            procs.wait_http(f"http://{bind}/healthz")
            settings.WHATSAPP_GRAPH_URL = simulator_url
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nThe stack is up.\n"
                    f"  admin:     http://{bind}/admin/  (user {DEMO_USERNAME!r}, password {password!r})\n"
                    f"  API docs:  http://{bind}/api/docs/\n"
                    f"  health:    http://{bind}/healthz\n"
                    f"  simulator: {simulator_url}/_sim/messages\n"
                )
            )
            deadline = None if run_for is None else time.monotonic() + run_for
            self.stdout.write("Ctrl-C stops everything." if deadline is None else "")
            while not stopping and (deadline is None or time.monotonic() < deadline):
                dead = [p.name for p in stack if not p.alive()]
                if dead:
                    self.stderr.write(f"stopped unexpectedly: {', '.join(dead)} (see var/log/)")
                    break
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in reversed(stack):
                process.stop()
            self.stdout.write("stack stopped")

    @transaction.atomic
    def _demo_login(self) -> str:
        """The demo workspace and its owner, with a fresh password printed for this run."""
        workspace, _ = Workspace.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_staff = True
        user.save()
        Membership.objects.update_or_create(
            workspace=workspace, user=user, defaults={"role": Role.OWNER}
        )
        return password
