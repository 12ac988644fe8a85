"""manage.py demo: a whole campaign end to end on this machine, against the built-in simulator.

Starts the Graph API simulator (which also plays the contacts: receipts,
reads, a few replies and failures), web, a worker and beat; adds the demo
numbers and syncs their templates; imports a generated CSV over two numbers
and two templates; runs the pre-flight; starts the campaign and shows its
progress; prints a summary and stops everything it started.
"""

from __future__ import annotations

import csv
import io
import queue
import random
import secrets
import signal
import sys
import time
from collections import Counter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count

from accounts.models import Role, Workspace
from accounts.services import membership_add, workspace_create
from campaigns.models import NOT_DONE_STATES, Campaign, CampaignStatus
from campaigns.preflight import campaign_preflight
from campaigns.selectors import campaign_counts, progress_of
from campaigns.services import campaign_create, campaign_start, contacts_import
from config import procs
from config.progress import Progress
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from graph_simulator.testing import SimulatorControl
from messaging import ratelimit
from messaging.models import RateAdjustment
from numbers.models import Number
from numbers.services import NumberConnectionError, number_add
from templates_sync.models import Template
from templates_sync.services import templates_sync

DEMO_USERNAME = "demo"
APP_SECRET = "demo-app-secret"  # noqa: S105 - signs the simulator's webhooks in a local demo
VERIFY_TOKEN = "demo-verify-token"  # noqa: S105 - a local demo only
FIRST_NAMES = [
    "Asha",
    "Ravi",
    "Meera",
    "Arjun",
    "Divya",
    "Kabir",
    "Isha",
    "Vikram",
    "Neha",
    "Rahul",
]
FINISHED = {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED}


class Command(BaseCommand):
    help = (
        "Runs a whole campaign end to end against the built-in Graph API simulator: "
        "stack up, import, pre-flight, send with a progress bar, summary. Exits when done."
    )

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=3000, help="contacts in the CSV")
        parser.add_argument("--bind", default="127.0.0.1:8000", help="web address")
        parser.add_argument("--simulator-port", type=int, default=8900)
        parser.add_argument("--llm-simulator-port", type=int, default=8901)
        parser.add_argument(
            "--keep-running",
            action="store_true",
            help="leave the stack up after the campaign (Ctrl-C stops it)",
        )

    def handle(
        self, *args, contacts, bind, simulator_port, llm_simulator_port, keep_running, **options
    ):
        if contacts < 10:
            raise CommandError("--contacts must be at least 10")
        simulator_url = f"http://127.0.0.1:{simulator_port}"
        password = self._demo_login()
        self.supervisor_events: queue.SimpleQueue[str] = queue.SimpleQueue()
        stack = self._stack(bind, simulator_url, simulator_port)
        # The LLM agent's stand-in (automation's demo replies use it).
        llm_url = f"http://127.0.0.1:{llm_simulator_port}/v1"
        stack.insert(
            1,
            procs.ManagedProcess(
                "llm-simulator",
                [sys.executable, "-m", "llm_simulator", "--port", str(llm_simulator_port)],
                {"PYTHONUNBUFFERED": "1"},
            ),
        )
        stopping: list[bool] = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        try:
            for process in stack:
                process.start()
            procs.wait_http(f"{simulator_url}/_sim/health")
            procs.wait_http(f"http://{bind}/healthz", timeout=60)
            self._say(f"stack up: {', '.join(f'{p.name} (pid {p.pid})' for p in stack)}")
            self._say(f"logs in {stack[0].log_dir}")
            self._use(simulator_url)
            campaign = self._prepare(contacts)
            started = time.monotonic()
            campaign_start(campaign=campaign, user=None, reason="demo")
            self._watch(campaign, stack, stopping)
            duration = time.monotonic() - started
            self._settle_receipts(campaign)
            self._summary(campaign, duration)
            # By name: conversations and automation are layers above messaging and must
            # not be imported here.
            call_command("demo_inbox", campaign.pk, graph_url=simulator_url, stdout=self.stdout)
            call_command(
                "demo_replies",
                campaign.pk,
                graph_url=simulator_url,
                llm_url=llm_url,
                stdout=self.stdout,
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nadmin: http://{bind}/admin/ (user {DEMO_USERNAME!r}, password {password!r})"
                )
            )
            if keep_running:
                self._say("the stack stays up; Ctrl-C stops it")
                while not stopping and all(p.up() for p in stack):
                    self._say_restarts()
                    time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in reversed(stack):
                process.stop()
            self._say_restarts()
            self._say("stack stopped")

    # -- set-up ----------------------------------------------------------------------

    def _stack(
        self, bind: str, simulator_url: str, simulator_port: int
    ) -> list[procs.ManagedProcess]:
        env = {
            "WHATSAPP_GRAPH_URL": simulator_url,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
        simulator = procs.ManagedProcess(
            "simulator",
            [
                sys.executable,
                "-m",
                "graph_simulator",
                "--port",
                str(simulator_port),
                "--callback-url",
                f"http://{bind}/webhooks/whatsapp/",
                "--app-secret",
                APP_SECRET,
                # The contacts: most read, a few reply, a few numbers do not exist,
                # and Meta has the odd hiccup (retried by the engine).
                "--read-rate",
                "0.6",
                "--reply-rate",
                "0.03",
                "--undeliverable",
                "*13",
                "--transient-rate",
                "0.005",
                "--webhook-delay-ms",
                "300",
                "--webhook-batch",
                "20",
            ],
            env,
        )
        # Nothing supervises the demo's processes, so the helper restarts the
        # worker and beat when they exit (a Celery worker does when the Redis
        # broker restarts: docs/production.md). The simulator is the test double
        # of Meta and keeps its state in memory; gunicorn restarts its own workers.
        worker = procs.celery_worker(
            "worker",
            "sending,replies,webhooks,periodic,default",
            concurrency=4,
            env=env,
            restart=True,
        )
        beat = procs.celery_beat(env=env, restart=True)
        for process in (worker, beat):
            process.on_event = self.supervisor_events.put
        return [simulator, procs.gunicorn(bind=bind, env=env), worker, beat]

    def _use(self, simulator_url: str) -> None:
        self.simulator = SimulatorControl(simulator_url)
        settings.WHATSAPP_GRAPH_URL = simulator_url
        settings.WHATSAPP_APP_SECRET = APP_SECRET

    @transaction.atomic
    def _demo_login(self) -> str:
        """The demo workspace and its owner, with a fresh password printed for this run."""
        password = secrets.token_urlsafe(9)
        workspace = Workspace.objects.filter(slug="demo").first()
        if workspace is None:
            workspace_create(name="Demo", owner_username=DEMO_USERNAME, password=password)
            return password
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.set_password(password)
        user.save(update_fields=["password"])
        membership_add(workspace=workspace, user=user, role=Role.OWNER)  # staff, too
        return password

    def _prepare(self, contacts: int) -> Campaign:
        workspace = Workspace.objects.get(slug="demo")
        numbers = []
        for i, phone_number_id in enumerate(DEMO_PHONE_NUMBER_IDS, start=1):
            number = Number.objects.filter(
                workspace=workspace, phone_number_id=phone_number_id
            ).first()
            if number is None:
                try:
                    number = number_add(
                        workspace=workspace,
                        label=f"Demo {i}",
                        phone_number_id=phone_number_id,
                        waba_id=DEMO_WABA_ID,
                        access_token=DEMO_TOKEN,
                    )
                except NumberConnectionError as error:
                    raise CommandError(f"adding demo number {phone_number_id}: {error}") from None
            numbers.append(number)
            self._say(
                f"number {number}: quality {number.quality_rating}, tier "
                f"{number.messaging_limit_tier}, {number.max_mps} msg/s"
            )
        synced = templates_sync(workspace=workspace, number=numbers[0])
        self._say(f"templates synced: {synced.created} new, {synced.updated} updated")
        promo = Template.objects.get(workspace=workspace, name="seasonal_promo", language="en_US")
        welcome = Template.objects.get(workspace=workspace, name="welcome_named", language="en_US")
        campaign = campaign_create(
            workspace=workspace,
            user=None,
            name=f"Demo campaign {time.strftime('%Y-%m-%d %H:%M:%S')}",
            numbers=numbers,
            templates=[(promo, 1), (welcome, 1)],
            variable_mapping={str(promo.pk): {"body.1": "first_name", "body.2": "code"}},
        )
        data = demo_csv(contacts)
        job = contacts_import(
            campaign=campaign,
            user=None,
            opener=lambda: io.BytesIO(data),
            filename="demo.csv",
            size=len(data),
        )
        self._say(
            f"imported demo.csv: {job.accepted} accepted, {job.rejected} rejected, "
            f"{job.duplicates} duplicates, {job.suppressed} suppressed of {job.data_rows} rows"
        )
        for error in job.row_errors.order_by("row")[:3]:
            self._say(f"  row {error.row}: {error.phone!r}: {error.reason}")
        check = campaign_preflight(campaign=campaign)
        self._say(
            f"pre-flight: {'ok' if check.ok else 'NOT OK'}, audience {check.audience}, "
            f"about {check.estimated_seconds} s at the current rate"
        )
        for line in [*check.problems, *check.warnings]:
            self._say(f"  {line}")
        if not check.ok:
            raise CommandError("pre-flight failed: " + "; ".join(check.problems))
        return campaign

    # -- running ---------------------------------------------------------------------

    def _watch(self, campaign: Campaign, stack, stopping) -> None:
        progress = Progress(self.stdout)
        self.rates: list[tuple[float, int]] = []
        started = time.monotonic()
        while not stopping:
            self._say_restarts(progress)
            campaign.refresh_from_db()
            counts = campaign_counts([campaign.pk])[campaign.pk]
            done = counts["total"] - sum(counts[status] for status in NOT_DONE_STATES)
            self.rates.append((time.monotonic() - started, done))
            progress.show(
                progress_of(counts),
                f"{done}/{counts['total']} sent {counts['sent']} delivered {counts['delivered']} "
                f"read {counts['read']} failed {counts['failed']} "
                f"rate {ratelimit.current_rate():g}/s",
                force=campaign.status in FINISHED,
            )
            if campaign.status in FINISHED:
                break
            dead = [p.name for p in stack if not p.up()]
            if dead:
                raise CommandError(f"stopped unexpectedly: {', '.join(dead)} (see var/log/)")
            time.sleep(0.5)
        progress.close()

    def _settle_receipts(self, campaign: Campaign, timeout: float = 90) -> None:
        """Waits until the simulator has delivered its late receipts and the counts have
        stopped moving (or ``timeout``): judged from outside, as a user would."""
        self._say("waiting for delivery receipts and replies...")
        deadline = time.monotonic() + timeout
        previous, quiet_since = None, time.monotonic()
        while time.monotonic() < deadline:
            self._say_restarts()
            counts = campaign_counts([campaign.pk])[campaign.pk]
            now = (counts["delivered"], counts["read"], counts["failed"], counts["replied"])
            webhooks = self.simulator.webhooks()
            queued = webhooks["pending"] + webhooks["in_flight"]
            if now != previous or queued:
                previous, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= 3:
                return
            time.sleep(0.5)

    def _summary(self, campaign: Campaign, duration: float) -> None:
        campaign.refresh_from_db()
        counts = campaign_counts([campaign.pk])[campaign.pk]
        sent_or_later = counts["sent"] + counts["delivered"] + counts["read"]
        self.stdout.write(self.style.SUCCESS(f"\n{campaign.name}: {campaign.status}"))
        self.stdout.write(
            f"  {counts['total']} contacts in {duration:.1f} s "
            f"({counts['total'] / duration:.0f} msg/s on average)"
        )
        self.stdout.write(
            f"  accepted by Meta {sent_or_later}, delivered {counts['delivered'] + counts['read']}, "
            f"read {counts['read']}, replied {counts['replied']}, failed {counts['failed']}, "
            f"unknown {counts['unknown']}"
        )
        reasons = (
            campaign.recipients.filter(status="failed")
            .values_list("error_code", "error_title")
            .annotate(n=Count("pk"))
            .order_by("-n")
        )
        for code, title, n in reasons:
            self.stdout.write(f"  failed {n}: {code} {title}")
        per_template = Counter(campaign.recipients.values_list("template__name", flat=True))
        per_number = Counter(campaign.recipients.values_list("number__label", flat=True))
        self.stdout.write(f"  templates: {dict(per_template)}; numbers: {dict(per_number)}")
        self.stdout.write("  rate over time (messages finished, per 5 s):")
        previous = 0
        for start in range(0, int(duration) + 1, 5):
            done = max((d for t, d in self.rates if t <= start + 5), default=0)
            self.stdout.write(f"    {start:4d}-{start + 5:<4d}s {(done - previous) / 5:7.1f} msg/s")
            previous = done
        for adjustment in RateAdjustment.objects.filter(at__gte=campaign.started_at).order_by("at"):
            self.stdout.write(f"  rate change: {adjustment}")

    def _say(self, text: str) -> None:
        self.stdout.write(text)

    def _say_restarts(self, progress: Progress | None = None) -> None:
        """Prints the exits and restarts the process helper reported (from its monitor
        threads) since the last call, on lines of their own between redraws of the bar."""
        while True:
            try:
                text = self.supervisor_events.get_nowait()
            except queue.Empty:
                return
            if progress is not None:
                progress.close()
            self.stdout.write(self.style.WARNING(text))


def demo_csv(contacts: int) -> bytes:
    """A contact list as people upload them: mostly good, a few typos and repeats."""
    rng = random.Random(42)  # noqa: S311 - demo data, not secrets
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phone", "first_name", "code", "member_id"])
    for i in range(contacts):
        phone = f"98{rng.randrange(10_000_000, 99_999_999)}"
        if i % 500 == 7:
            phone = "12345"  # too short: rejected with the reason
        if i % 400 == 11 and i:
            phone = "98" + "0" * 8  # same number twice: counted as a duplicate
        writer.writerow([phone, rng.choice(FIRST_NAMES), f"FALL{i % 100:02d}", f"M-{1000 + i}"])
    return out.getvalue().encode()
