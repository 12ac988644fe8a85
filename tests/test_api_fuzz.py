"""Fuzzing the REST API against its own OpenAPI schema (schemathesis): no input is a 500,
and every answer has a status, content type and body that the schema documents.

Every operation gets the examples, coverage and fuzzing phases, positive and negative
data, as a workspace owner with an API token, against a workspace holding one of each
object (numbers on the Graph API simulator, synced templates, a draft, a running and a
paused campaign with contacts, a suppression). Generated path ids are swapped for a real
object's half of the time, so operations reach their objects as well as their 404s.
Each request runs in a savepoint that is rolled back, so every one meets the same data.

``API_FUZZ_MAX_EXAMPLES`` (default 8) sets the fuzzing phase's examples per operation;
``API_FUZZ_SEED`` (default 16) its seed.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from contextlib import contextmanager

import hypothesis
import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.db import close_old_connections, transaction
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Membership, Role, Workspace
from campaigns.services import (
    campaign_create,
    campaign_pause,
    campaign_start,
    contacts_import,
    suppression_create,
)
from config.wsgi import application
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, DEMO_WABA_ID
from numbers.services import number_add
from templates_sync.models import Template
from templates_sync.services import templates_sync
from tests.conftest import PASSWORD

MAX_EXAMPLES = int(os.environ.get("API_FUZZ_MAX_EXAMPLES", "8"))
SEED = int(os.environ.get("API_FUZZ_SEED", "16"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CONTACTS = b"phone,name\n+919876500011,Asha\n+919876500012,Ravi\n"


def generated_schema() -> dict:
    """The schema /api/schema/ serves (test_the_fuzzed_schema_is_the_served_one checks it)."""
    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))


schema = schemathesis.openapi.from_dict(
    generated_schema(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            # Examples, coverage and fuzzing; a stateful run would need links in the schema.
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)
schema.app = application

# Ids of the current test's objects, by the path's first segment after /api/.
KNOWN_IDS: dict[str, list[int]] = {}
SENT: Counter[int] = Counter()


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    resource = context.operation.path.split("/")[2]
    choices = [{}]
    if "id" in path_parameters and KNOWN_IDS.get(resource):
        choices = [{"id": pk} for pk in KNOWN_IDS[resource]]
    if "job_id" in path_parameters:
        jobs = KNOWN_IDS.get("imports", [])
        choices = [{**choice, "job_id": pk} for choice in choices for pk in jobs] or choices
    known = st.sampled_from([{**path_parameters, **choice} for choice in choices])
    return st.one_of(known, st.just(path_parameters))


MD5 = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = MD5


@contextmanager
def one_connection():
    """Requests made through the WSGI app share the test's connection and transaction, as
    Django's test client arranges: no closing of connections at request boundaries (the
    test client itself reconnects the handlers after each of its requests)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _campaign(workspace, owner, number, template, name):
    campaign = campaign_create(
        workspace=workspace, user=owner, name=name, numbers=[number], templates=[(template, 1)]
    )
    job = contacts_import(
        campaign=campaign,
        user=owner,
        opener=lambda: io.BytesIO(CONTACTS),
        filename="contacts.csv",
        size=len(CONTACTS),
    )
    return campaign, job


def _build_world() -> dict[str, str]:
    """A workspace with one of each object (listed in KNOWN_IDS); returns its owner's
    token header."""
    workspace = Workspace.objects.create(name="Fuzz", slug="fuzz")
    owner = get_user_model().objects.create_user(username="fuzz-owner", password=PASSWORD)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    number = number_add(
        workspace=workspace,
        label="Main",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
        waba_id=DEMO_WABA_ID,
        access_token=DEMO_TOKEN,
    )
    templates_sync(workspace=workspace)
    template = Template.objects.get(workspace=workspace, name="hello_world", language="en_US")
    draft, job = _campaign(workspace, owner, number, template, "Draft")
    running, _ = _campaign(workspace, owner, number, template, "Running")
    campaign_start(campaign=running, user=owner)
    paused, _ = _campaign(workspace, owner, number, template, "Paused")
    campaign_start(campaign=paused, user=owner)
    campaign_pause(campaign=paused, user=owner)
    suppression = suppression_create(workspace=workspace, phone="+919876500099")
    KNOWN_IDS.update(
        numbers=[number.pk],
        templates=[template.pk],
        campaigns=[draft.pk, running.pk, paused.pk],
        imports=[job.pk],
        suppressions=[suppression.pk],
        workspaces=[workspace.pk],
    )
    login = APIClient().post(
        "/api/auth/token/", {"username": owner.username, "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200, login.content
    return {"Authorization": f"Token {login.json()['token']}"}


@pytest.fixture(scope="module")
def world_headers(django_db_setup, django_db_blocker, simulators):
    """The world, made once for the module inside a transaction rolled back at its end
    (as Django's setUpTestData does): each test's own transaction nests inside it."""
    simulator = simulators.get("demo")
    simulator.control.reset()
    with (
        django_db_blocker.unblock(),
        override_settings(WHATSAPP_GRAPH_URL=simulator.base_url, PASSWORD_HASHERS=MD5),
        transaction.atomic(),
    ):
        yield _build_world()
        transaction.set_rollback(True)
    KNOWN_IDS.clear()


@pytest.fixture
def auth_headers(world_headers, db, sim, settings):
    # Throttling is not under test; a 429 would only hide the operation behind it.
    settings.API_WRITE_RATE = "1000000/min"
    with one_connection():
        yield world_headers


@pytest.fixture(scope="module", autouse=True)
def report_requests(request):
    """One line in the terminal: how many requests the fuzz made, by status."""
    yield
    if SENT:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(SENT.items()))
        plugins = request.config.pluginmanager
        reporter = plugins.get_plugin("terminalreporter")
        if reporter is not None:
            # Module teardown output is captured like a test's; this line is for the log.
            with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
                reporter.write_line(f"API fuzz: {sum(SENT.values())} requests ({statuses})")


@pytest.mark.django_db
@schema.parametrize()
@hypothesis.settings(
    deadline=None, suppress_health_check=list(hypothesis.HealthCheck), database=None
)
def test_no_input_is_a_server_error_and_every_answer_is_documented(case, auth_headers):
    with transaction.atomic():
        response = case.call(headers=auth_headers)
        transaction.set_rollback(True)
    SENT[response.status_code] += 1
    case.validate_response(response, checks=CHECKS)


@pytest.mark.django_db
def test_the_fuzzed_schema_is_the_served_one(api, owner):
    served = api(owner).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert served.status_code == 200
    assert served.json() == generated_schema()
