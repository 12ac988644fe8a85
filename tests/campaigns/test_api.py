"""Campaign and suppression API: create rules, 409s, uploads, messages, CSV exports, isolation."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignEvent,
    ImportChunk,
    ImportJob,
    Recipient,
    Suppression,
)
from campaigns.tasks import import_contacts_task
from tests.campaigns.conftest import run_import, upload
from tests.factories import make_number, make_template

# The report's columns: a contract for the spreadsheets and scripts that read it.
REPORT_HEADER = [
    "id",
    "row",
    "phone",
    "template",
    "number",
    "status",
    "wamid",
    "attempts",
    "error_code",
    "error_title",
    "error_details",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "replied_at",
]

pytestmark = pytest.mark.django_db

CSV = "phone,1,2\n9812345678,Asha,A1\n9812345678,Asha,A1\nabc,x,y\n9812345679,Ravi,R2\n"


def create_body(number, template, **extra):
    return {
        "name": "Diwali",
        "numbers": [number.pk],
        "templates": [{"template": template.pk, "weight": 2}],
        **extra,
    }


def test_create_and_read_a_campaign(api, owner, number, template):
    response = api(owner).post("/api/campaigns/", create_body(number, template), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    campaign = Campaign.objects.get()
    assert body["id"] == campaign.pk
    assert (body["name"], body["status"], body["numbers"]) == ("Diwali", "draft", [number.pk])
    assert body["templates"] == [{"template": template.pk, "weight": 2}]
    assert body["counts"] == {
        "pending": 0,
        "sending": 0,
        "retry_wait": 0,
        "sent": 0,
        "delivered": 0,
        "read": 0,
        "failed": 0,
        "unknown": 0,
        "cancelled": 0,
        "total": 0,
        "replied": 0,
    }
    assert (body["progress"], body["current_rate"], body["started_at"]) == (0, None, None)
    assert campaign.created_by == owner


def test_create_with_a_time_schedules_it(api, owner, number, template):
    when = timezone.now() + dt.timedelta(days=1)
    response = api(owner).post(
        "/api/campaigns/",
        create_body(number, template, scheduled_at=when.isoformat()),
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["status"] == "scheduled"
    assert list(CampaignEvent.objects.values_list("from_status", "to_status")) == [
        ("draft", "scheduled")
    ]


def test_create_refuses_another_workspaces_number_and_template(
    api, owner, number, template, other_workspace
):
    foreign_number = make_number(workspace=other_workspace, phone_number_id="299")
    foreign_template = make_template(workspace=other_workspace)
    response = api(owner).post(
        "/api/campaigns/",
        {
            "name": "x",
            "numbers": [foreign_number.pk],
            "templates": [{"template": foreign_template.pk}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "numbers": [f'Invalid pk "{foreign_number.pk}" - object does not exist.'],
        "templates": {
            "0": {"template": [f'Invalid pk "{foreign_template.pk}" - object does not exist.']}
        },
    }
    assert Campaign.objects.count() == 0


def test_create_refuses_unsendable_and_other_waba_templates(api, owner, number, workspace):
    paused = make_template(workspace=workspace, name="paused", status="PAUSED")
    response = api(owner).post("/api/campaigns/", create_body(number, paused), format="json")
    assert response.status_code == 400
    assert response.json() == {
        "templates": ["template 'paused' (en_US) cannot be sent: it is PAUSED"]
    }
    elsewhere = make_template(workspace=workspace, name="elsewhere", waba_id="999")
    response = api(owner).post("/api/campaigns/", create_body(number, elsewhere), format="json")
    assert response.json() == {
        "templates": [
            "template 'elsewhere' belongs to WABA 999; number main (+91 98765 00001) is in "
            "WABA 100000000000001 and cannot send it"
        ]
    }
    assert Campaign.objects.count() == 0


def test_create_checks_the_variable_mapping(api, owner, number, template):
    response = api(owner).post(
        "/api/campaigns/",
        create_body(number, template, variable_mapping={str(template.pk): {"body.9": "x"}}),
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "variable_mapping": [
            "template 'order_update' has no parameter body.9 (it has: body.1, body.2)"
        ]
    }


def test_agents_read_but_cannot_create_or_act(api, agent, campaign):
    assert api(agent).get(f"/api/campaigns/{campaign.pk}/").status_code == 200
    assert api(agent).post("/api/campaigns/", {"name": "x"}, format="json").status_code == 403
    assert api(agent).post(f"/api/campaigns/{campaign.pk}/cancel/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_changes_only_while_draft_or_scheduled(api, owner, campaign):
    response = api(owner).patch(f"/api/campaigns/{campaign.pk}/", {"name": "New"}, format="json")
    assert (response.status_code, response.json()["name"]) == (200, "New")
    Campaign.objects.filter(pk=campaign.pk).update(status="running")
    response = api(owner).patch(f"/api/campaigns/{campaign.pk}/", {"name": "Newer"}, format="json")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "cannot change a running campaign: only draft and scheduled campaigns can be "
        "changed"
    }
    assert api(owner).delete(f"/api/campaigns/{campaign.pk}/").status_code == 409
    campaign.refresh_from_db()
    assert campaign.name == "New"


def test_templates_are_fixed_once_contacts_exist_but_numbers_respread(
    api, owner, campaign, workspace
):
    run_import(campaign, "phone,1,2\n9812345678,A,1\n9812345679,B,2\n9812345680,C,3\n")
    other = make_template(workspace=workspace, name="other")
    response = api(owner).patch(
        f"/api/campaigns/{campaign.pk}/", {"templates": [{"template": other.pk}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "templates": [
            "templates and weights cannot change once contacts are imported (each contact was "
            "checked against its template)"
        ]
    }
    first = campaign.numbers.get()
    second = make_number(workspace=workspace, label="second", phone_number_id="202")
    response = api(owner).patch(
        f"/api/campaigns/{campaign.pk}/", {"numbers": [first.pk, second.pk]}, format="json"
    )
    assert response.status_code == 200
    assert list(Recipient.objects.order_by("pk").values_list("number_id", flat=True)) == [
        first.pk,
        second.pk,
        first.pk,
    ]
    assert response.json()["split"]["numbers"] == [
        {"number": first.pk, "label": "main (+91 98765 00001)", "contacts": 2},
        {"number": second.pk, "label": "second (+91 98765 00001)", "contacts": 1},
    ]


def test_upload_answers_counts_and_first_errors(api, owner, campaign):
    response = api(owner).post(
        f"/api/campaigns/{campaign.pk}/contacts/", {"file": upload(CSV)}, format="multipart"
    )
    assert response.status_code == 200
    body = response.json()
    assert {
        k: body[k] for k in ("status", "rows", "accepted", "rejected", "duplicates", "suppressed")
    } == {
        "status": "done",
        "rows": 4,
        "accepted": 2,
        "rejected": 1,
        "duplicates": 1,
        "suppressed": 0,
    }
    assert body["errors"] == [
        {"row": 3, "phone": "+919812345678", "kind": "duplicate", "reason": "duplicate of row 2"},
        {
            "row": 4,
            "phone": "abc",
            "kind": "rejected",
            "reason": "invalid phone: not a phone number",
        },
    ]
    detail = api(owner).get(f"/api/campaigns/{campaign.pk}/").json()
    assert detail["counts"]["pending"] == 2
    assert detail["counts"]["total"] == 2
    assert detail["split"]["templates"] == [
        {
            "template": campaign.campaign_templates.get().template_id,
            "name": "order_update",
            "language": "en_US",
            "weight": 1,
            "contacts": 2,
        }
    ]
    assert detail["last_import"]["accepted"] == 2


def test_a_bad_file_is_a_400_and_stores_nothing(api, owner, campaign):
    response = api(owner).post(
        f"/api/campaigns/{campaign.pk}/contacts/",
        {"file": upload(b"\x00\x01binary")},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json() == {
        "file": ["this is not a CSV text file (it holds binary data): export the sheet as CSV"]
    }
    missing = api(owner).post(f"/api/campaigns/{campaign.pk}/contacts/", {}, format="multipart")
    assert missing.json() == {"file": ["No file was submitted."]}
    assert ImportJob.objects.count() == 0


def test_import_into_a_running_campaign_is_refused_with_nothing_changed(api, owner, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(status="running")
    response = api(owner).post(
        f"/api/campaigns/{campaign.pk}/contacts/", {"file": upload(CSV)}, format="multipart"
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "the campaign is running: contacts can be added only to a draft, scheduled "
        "or paused campaign"
    }
    assert (ImportJob.objects.count(), Recipient.objects.count()) == (0, 0)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.recipients.count()) == ("running", 0)


def test_a_big_upload_is_queued_and_imported_by_the_task(
    api, owner, campaign, settings, django_capture_on_commit_callbacks
):
    settings.CAMPAIGN_SYNC_IMPORT_MAX_BYTES = 10
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api(owner).post(
            f"/api/campaigns/{campaign.pk}/contacts/", {"file": upload(CSV)}, format="multipart"
        )
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert (response.json()["id"], response.json()["status"], response.json()["progress"]) == (
        job.pk,
        "queued",
        0,
    )
    assert ImportChunk.objects.filter(job=job).count() == 1
    assert len(callbacks) == 1
    assert Recipient.objects.count() == 0

    import_contacts_task(job.pk)
    answer = api(owner).get(f"/api/campaigns/{campaign.pk}/imports/{job.pk}/").json()
    assert (answer["status"], answer["progress"], answer["accepted"], answer["rejected"]) == (
        "done",
        100,
        2,
        1,
    )
    assert ImportChunk.objects.count() == 0


def test_actions_answer_the_campaign_or_409_with_the_reason(api, owner, campaign):
    response = api(owner).post(f"/api/campaigns/{campaign.pk}/pause/")
    assert response.status_code == 409
    assert response.json() == {"detail": "cannot pause a draft campaign"}
    response = api(owner).post(f"/api/campaigns/{campaign.pk}/start/")
    assert response.json() == {
        "detail": "the campaign cannot send: it has no contacts waiting to be sent: import a "
        "CSV first"
    }
    run_import(campaign, CSV)
    response = api(owner).post(
        f"/api/campaigns/{campaign.pk}/start/", {"reason": "go"}, format="json"
    )
    assert (response.status_code, response.json()["status"]) == (200, "running")
    assert api(owner).post(f"/api/campaigns/{campaign.pk}/pause/").json()["status"] == "paused"
    assert api(owner).post(f"/api/campaigns/{campaign.pk}/resume/").json()["status"] == "running"
    body = api(owner).post(f"/api/campaigns/{campaign.pk}/cancel/").json()
    assert (body["status"], body["counts"]["cancelled"], body["progress"]) == ("cancelled", 2, 100)


def test_messages_are_paginated_and_filtered_by_status(api, owner, campaign):
    run_import(campaign, CSV)
    Recipient.objects.filter(phone="+919812345679").update(
        status="failed", error_code=131026, error_title="Message undeliverable"
    )
    body = api(owner).get(f"/api/campaigns/{campaign.pk}/messages/?status=failed").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert {
        k: row[k] for k in ("phone", "status", "error_code", "error_title", "attempts", "wamid")
    } == {
        "phone": "+919812345679",
        "status": "failed",
        "error_code": 131026,
        "error_title": "Message undeliverable",
        "attempts": 0,
        "wamid": None,
    }
    assert api(owner).get(f"/api/campaigns/{campaign.pk}/messages/").json()["count"] == 2
    bad = api(owner).get(f"/api/campaigns/{campaign.pk}/messages/?status=nope")
    assert bad.status_code == 400


def read_csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_report_export_escapes_formula_cells(api, owner, campaign):
    run_import(campaign, "phone,1,2\n9812345678,=cmd,A1\n")
    Recipient.objects.update(
        status="failed", error_title='=HYPERLINK("http://evil")', error_details="@SUM(A1)\t-x"
    )
    response = api(owner).get(f"/api/campaigns/{campaign.pk}/report.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = read_csv(response)
    recipient = Recipient.objects.get()
    assert rows == [
        REPORT_HEADER,
        [
            str(recipient.pk),
            "2",
            "'+919812345678",
            "order_update",
            "main (+91 98765 00001)",
            "failed",
            "",
            "0",
            "",
            '\'=HYPERLINK("http://evil")',
            "'@SUM(A1)\t-x",
            "",
            "",
            "",
            "",
            "",
        ],
    ]


def test_import_errors_download_lists_every_problem_escaped(api, owner, campaign):
    job = run_import(campaign, "phone,1,2\n=1+1,a,b\n-5,a,b\n9812345678,a,b\n9812345678,a,b\n")
    response = api(owner).get(f"/api/campaigns/{campaign.pk}/import-errors.csv")
    assert read_csv(response) == [
        ["import", "row", "kind", "phone", "reason"],
        [str(job.pk), "2", "rejected", "'=1+1", "invalid phone: not a phone number"],
        [str(job.pk), "3", "rejected", "'-5", "invalid phone: not a phone number"],
        [str(job.pk), "5", "duplicate", "'+919812345678", "duplicate of row 4"],
    ]


def test_preflight_endpoint_reports_problems(api, owner, campaign, settings):
    response = api(owner).post(f"/api/campaigns/{campaign.pk}/preflight/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["audience"] == 0
    assert "no contacts are waiting to be sent: import a CSV of contacts" in body["problems"]


def test_suppressions_api(api, owner, agent, campaign, workspace):
    run_import(campaign, CSV)
    response = api(agent).post(
        "/api/suppressions/", {"phone": "98123 45679", "reason": "STOP"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["phone"], body["reason"], body["source"]) == ("+919812345679", "STOP", "manual")
    assert Recipient.objects.get(phone="+919812345679").status == "cancelled"
    again = api(owner).post("/api/suppressions/", {"phone": "+919812345679"}, format="json")
    assert (again.status_code, again.json()) == (
        400,
        {"phone": ["+919812345679 is already suppressed"]},
    )
    invalid = api(owner).post("/api/suppressions/", {"phone": "12"}, format="json")
    assert invalid.json() == {"phone": ["invalid phone: too short"]}
    listing = api(owner).get("/api/suppressions/").json()
    assert [item["phone"] for item in listing["results"]] == ["+919812345679"]
    assert api(agent).delete(f"/api/suppressions/{body['id']}/").status_code == 403
    assert api(owner).delete(f"/api/suppressions/{body['id']}/").status_code == 204
    assert Suppression.objects.count() == 0


CAMPAIGN_ENDPOINTS = [
    ("get", ""),
    ("patch", ""),
    ("put", ""),
    ("delete", ""),
    ("post", "start/"),
    ("post", "pause/"),
    ("post", "resume/"),
    ("post", "cancel/"),
    ("post", "preflight/"),
    ("post", "contacts/"),
    ("get", "imports/"),
    ("get", "messages/"),
    ("get", "report.csv"),
    ("get", "import-errors.csv"),
]


@pytest.mark.parametrize(("method", "path"), CAMPAIGN_ENDPOINTS)
def test_another_workspaces_campaign_is_404_everywhere(api, outsider, campaign, method, path):
    job = run_import(campaign, CSV)
    response = getattr(api(outsider), method)(
        f"/api/campaigns/{campaign.pk}/{path}", {"name": "stolen"}, format="json"
    )
    assert response.status_code == 404
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("Diwali", "draft")
    assert Recipient.objects.count() == 2
    assert api(outsider).get(f"/api/campaigns/{campaign.pk}/imports/{job.pk}/").status_code == 404


def test_lists_show_only_the_callers_workspace(
    api, owner, outsider, campaign, workspace, other_workspace
):
    Suppression.objects.create(workspace=workspace, phone="+919812345678")
    theirs = Suppression.objects.create(workspace=other_workspace, phone="+919812345679")
    assert api(outsider).get("/api/campaigns/").json()["results"] == []
    assert [s["id"] for s in api(outsider).get("/api/suppressions/").json()["results"]] == [
        theirs.pk
    ]
    assert [c["id"] for c in api(owner).get("/api/campaigns/").json()["results"]] == [campaign.pk]
    mine = Suppression.objects.get(workspace=workspace)
    assert api(outsider).delete(f"/api/suppressions/{mine.pk}/").status_code == 404
    assert Suppression.objects.count() == 2


def test_unauthenticated_calls_are_401(api, campaign):
    assert api().get("/api/campaigns/").status_code == 401
    assert api().get(f"/api/campaigns/{campaign.pk}/report.csv").status_code == 401


def test_exports_answer_an_accept_text_csv_client(api, owner, campaign):
    response = api(owner).get(f"/api/campaigns/{campaign.pk}/report.csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert read_csv(response) == [REPORT_HEADER]
