"""Template sync: paging, create/update/remove, status history, Meta's refusals recorded."""

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from numbers.models import Number, NumberStatus
from numbers.services import number_add
from templates_sync.models import REMOVED, SyncState, Template, TemplateStatusChange, WabaSync
from templates_sync.services import templates_sync
from tests.conftest import OTHER_PHONE_NUMBER_ID, OTHER_WABA_ID

pytestmark = pytest.mark.django_db

DEMO_TEMPLATES = {
    # (name, language): (status, category, parameter_format, header_format, parameters)
    ("seasonal_promo", "en_US"): ("APPROVED", "MARKETING", "POSITIONAL", "", ["body.1", "body.2"]),
    ("seasonal_promo", "es"): ("APPROVED", "MARKETING", "POSITIONAL", "", ["body.1", "body.2"]),
    ("welcome_named", "en_US"): (
        "APPROVED",
        "MARKETING",
        "NAMED",
        "",
        ["body.first_name", "body.member_id"],
    ),
    ("order_update", "en_US"): (
        "APPROVED",
        "UTILITY",
        "POSITIONAL",
        "IMAGE",
        ["header.1", "body.1", "body.2", "button.0"],
    ),
    ("event_reminder", "en_US"): ("APPROVED", "UTILITY", "POSITIONAL", "TEXT", ["header.1"]),
    ("hello_world", "en_US"): ("APPROVED", "UTILITY", "POSITIONAL", "", []),
    ("summer_sale", "en_US"): ("PENDING", "MARKETING", "POSITIONAL", "", ["body.1", "body.2"]),
    ("crypto_giveaway", "en_US"): ("REJECTED", "MARKETING", "POSITIONAL", "", ["body.1", "body.2"]),
    ("flash_sale", "en_US"): ("PAUSED", "MARKETING", "POSITIONAL", "", ["body.1", "body.2"]),
    ("old_newsletter", "en_US"): ("DISABLED", "MARKETING", "POSITIONAL", "", ["body.1", "body.2"]),
}


def stored(workspace) -> dict:
    return {
        (t.name, t.language): (
            t.status,
            t.category,
            t.parameter_format,
            t.header_format,
            t.parameters,
        )
        for t in Template.objects.filter(workspace=workspace)
    }


def counts(result) -> tuple[int, int, int, list]:
    return result.created, result.updated, result.removed, result.errors


def body_template(name: str, status: str = "APPROVED", **extra) -> dict:
    return {
        "name": name,
        "language": "en_US",
        "status": status,
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Hi {{1}}"}],
        **extra,
    }


def test_the_first_sync_creates_every_template_as_meta_sent_it(workspace, number):
    before = timezone.now()
    result = templates_sync(workspace=workspace)
    assert counts(result) == (10, 0, 0, [])
    assert stored(workspace) == DEMO_TEMPLATES
    order = Template.objects.get(name="order_update")
    assert (order.meta_id, order.waba_id, order.number, order.removed_at) == (
        "300000000000004",
        DEMO_WABA_ID,
        number,
        None,
    )
    assert order.components[0] == {
        "type": "HEADER",
        "format": "IMAGE",
        "example": {"header_handle": ["https://example.invalid/h.jpg"]},
    }
    assert order.synced_at == order.last_seen_at == order.status_changed_at
    assert order.synced_at >= before
    assert order.is_sendable
    assert not Template.objects.get(name="flash_sale").is_sendable
    sync = WabaSync.objects.get(workspace=workspace, waba_id=DEMO_WABA_ID)
    assert (sync.state, sync.number, sync.created, sync.error) == (SyncState.OK, number, 10, "")


def test_sync_follows_paging_over_several_pages(workspace, number, sim):
    sim.upsert_templates(*(body_template(f"bulk_{i:03}") for i in range(105)))
    # 115 templates at 100 a page: two pages with the default size.
    assert counts(templates_sync(workspace=workspace)) == (115, 0, 0, [])
    assert Template.objects.filter(workspace=workspace).count() == 115


def test_sync_with_a_small_page_size_still_gets_everything(workspace, number):
    result = templates_sync(workspace=workspace, page_size=3)  # 4 pages
    assert counts(result) == (10, 0, 0, [])
    assert stored(workspace) == DEMO_TEMPLATES


def test_a_second_sync_with_nothing_new_changes_nothing(workspace, number):
    templates_sync(workspace=workspace)
    first = {t.pk: t.synced_at for t in Template.objects.all()}
    assert counts(templates_sync(workspace=workspace)) == (0, 0, 0, [])
    assert {t.pk: t.synced_at for t in Template.objects.all()} == first
    assert TemplateStatusChange.objects.count() == 10


def test_a_template_meta_no_longer_returns_is_marked_removed_not_deleted(workspace, number, sim):
    sim.upsert_templates(body_template("spring_sale"))
    assert counts(templates_sync(workspace=workspace)) == (11, 0, 0, [])
    sim.reset()  # back to the seed: spring_sale is gone at Meta

    before = timezone.now()
    assert counts(templates_sync(workspace=workspace)) == (0, 0, 1, [])
    spring = Template.objects.get(name="spring_sale")
    assert spring.removed_at is not None and spring.removed_at >= before
    assert (spring.status, spring.is_sendable) == ("APPROVED", False)
    assert list(spring.status_changes.values_list("old", "new", "reason")) == [
        ("", "APPROVED", ""),
        ("APPROVED", REMOVED, "no longer returned by Meta"),
    ]
    assert Template.objects.count() == 11
    # Removed once: a later sync does not count it again.
    assert counts(templates_sync(workspace=workspace)) == (0, 0, 0, [])

    sim.upsert_templates(body_template("spring_sale"))
    assert counts(templates_sync(workspace=workspace)) == (0, 1, 0, [])
    spring.refresh_from_db()
    assert (spring.removed_at, spring.is_sendable) == (None, True)
    assert spring.status_changes.last().old == REMOVED


def test_a_status_change_is_recorded_with_its_time(workspace, number, sim):
    templates_sync(workspace=workspace)
    sim.upsert_templates({"name": "seasonal_promo", "language": "en_US", "status": "PAUSED"})
    before = timezone.now()
    assert counts(templates_sync(workspace=workspace)) == (0, 1, 0, [])
    after = timezone.now()

    promo = Template.objects.get(name="seasonal_promo", language="en_US")
    assert (promo.status, promo.is_sendable) == ("PAUSED", False)
    assert before <= promo.status_changed_at <= after
    assert promo.synced_at == promo.status_changed_at
    history = list(promo.status_changes.values_list("old", "new", "source", "at"))
    assert [row[:3] for row in history] == [
        ("", "APPROVED", "sync"),
        ("APPROVED", "PAUSED", "sync"),
    ]
    assert history[1][3] == promo.status_changed_at
    # The Spanish one did not change.
    spanish = Template.objects.get(name="seasonal_promo", language="es")
    assert (spanish.status, spanish.status_changes.count()) == ("APPROVED", 1)


def test_changed_components_update_the_parsed_parameters(workspace, number, sim):
    templates_sync(workspace=workspace)
    sim.upsert_templates(
        {
            "name": "hello_world",
            "language": "en_US",
            "components": [{"type": "BODY", "text": "Hello {{1}}, from {{2}}."}],
        }
    )
    assert counts(templates_sync(workspace=workspace)) == (0, 1, 0, [])
    hello = Template.objects.get(name="hello_world")
    assert (hello.parameters, hello.status, hello.status_changes.count()) == (
        ["body.1", "body.2"],
        "APPROVED",
        1,
    )


@pytest.mark.sim_seed("two_wabas")
def test_each_waba_of_the_workspace_is_synced_and_number_narrows_to_one(workspace, number, sim):
    other = number_add(
        workspace=workspace,
        label="Other",
        phone_number_id=OTHER_PHONE_NUMBER_ID,
        waba_id=OTHER_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    sim.upsert_templates(body_template("other_promo"), waba_id=OTHER_WABA_ID)
    only_other = templates_sync(workspace=workspace, number=other)
    assert [(w.waba_id, w.created) for w in only_other.wabas] == [(OTHER_WABA_ID, 1)]
    everything = templates_sync(workspace=workspace)
    assert [(w.waba_id, w.created) for w in everything.wabas] == [
        (DEMO_WABA_ID, 10),
        (OTHER_WABA_ID, 0),
    ]
    assert Template.objects.get(name="other_promo").waba_id == OTHER_WABA_ID


def test_workspaces_sync_their_own_copies(workspace, other_workspace, number):
    number_add(
        workspace=other_workspace,
        label="Theirs",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    templates_sync(workspace=workspace)
    assert Template.objects.filter(workspace=other_workspace).count() == 0
    assert counts(templates_sync(workspace=other_workspace)) == (10, 0, 0, [])


def test_an_expired_token_stops_that_wabas_sync_with_a_clear_status(workspace, number, sim):
    templates_sync(workspace=workspace)
    sim.token(DEMO_TOKEN, "expire")
    message = (
        "Meta answered: Error validating access token: Session has expired. (code 190, subcode 463)"
    )
    result = templates_sync(workspace=workspace)
    assert counts(result) == (
        0,
        0,
        0,
        [
            {
                "waba_id": DEMO_WABA_ID,
                "number": number.pk,
                "state": "auth_failed",
                "code": 190,
                "message": message,
            }
        ],
    )
    sync = WabaSync.objects.get(waba_id=DEMO_WABA_ID)
    assert (sync.state, sync.error, sync.error_code) == (SyncState.AUTH_FAILED, message, 190)
    assert sync.last_success_at is not None
    assert Template.objects.filter(removed_at__isnull=True).count() == 10
    assert Number.objects.get(pk=number.pk).status == NumberStatus.TOKEN_EXPIRED


def test_an_auth_failure_falls_back_to_another_number_of_the_waba(workspace, number, sim):
    sim.token("second-token")
    second = number_add(
        workspace=workspace,
        label="Support",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        waba_id=DEMO_WABA_ID,
        access_token="second-token",
    )
    sim.token(DEMO_TOKEN, "revoke")
    result = templates_sync(workspace=workspace)
    assert counts(result) == (10, 0, 0, [])
    assert result.wabas[0].number_id == second.pk
    assert Number.objects.get(pk=number.pk).status == NumberStatus.TOKEN_EXPIRED


class GraphStub:
    """A tiny Graph API stand-in for answers the simulator cannot give on a GET (throttling)."""

    def __init__(self, pages: list[tuple[int, dict]]):
        self.pages = pages
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                stub.requests.append(self.path)
                status, body = stub.pages[min(len(stub.requests), len(stub.pages)) - 1]
                if "paging" in body and "next" in body["paging"]:
                    body["paging"]["next"] = stub.url + body["paging"]["next"]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


THROTTLED = (
    400,
    {
        "error": {
            "message": "(#80007) Rate limit issues",
            "type": "OAuthException",
            "code": 80007,
            "fbtrace_id": "Atrace",
        }
    },
)


def test_throttling_midway_through_paging_writes_nothing_and_says_so(workspace, number, settings):
    templates_sync(workspace=workspace)
    synced_at: dict[int, datetime] = dict(Template.objects.values_list("pk", "synced_at"))
    first_page = {
        "data": [body_template("only_on_page_one")],
        "paging": {"cursors": {"after": "c1"}, "next": "/v23.0/next-page"},
    }
    with GraphStub([(200, first_page), THROTTLED]) as stub:
        settings.WHATSAPP_GRAPH_URL = stub.url
        result = templates_sync(workspace=workspace)
    assert len(stub.requests) == 2
    assert counts(result) == (
        0,
        0,
        0,
        [
            {
                "waba_id": DEMO_WABA_ID,
                "number": number.pk,
                "state": "throttled",
                "code": 80007,
                "message": "Meta answered: (#80007) Rate limit issues (code 80007)",
            }
        ],
    )
    # A partial list must not mark the rest removed, nor add the first page alone.
    assert not Template.objects.filter(name="only_on_page_one").exists()
    assert Template.objects.filter(removed_at__isnull=False).count() == 0
    assert dict(Template.objects.values_list("pk", "synced_at")) == synced_at
    assert WabaSync.objects.get(waba_id=DEMO_WABA_ID).state == SyncState.THROTTLED
    assert Number.objects.get(pk=number.pk).status == NumberStatus.ACTIVE


def test_an_unreachable_graph_api_is_a_failed_sync_not_a_crash(workspace, number, settings):
    with GraphStub([THROTTLED]) as stub:
        url = stub.url
    settings.WHATSAPP_GRAPH_URL = url  # the stub is closed: connection refused
    result = templates_sync(workspace=workspace)
    assert [(e["state"], e["code"]) for e in result.errors] == [("failed", None)]
    assert result.errors[0]["message"].startswith("could not reach the Graph API: network error")
    assert Template.objects.count() == 0
