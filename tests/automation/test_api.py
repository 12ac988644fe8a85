"""The automation API (api.md, "Automation"): settings per workspace, keyword rules CRUD."""

from __future__ import annotations

from django.db import connection

from automation.models import (
    DEFAULT_OPT_IN_KEYWORDS,
    DEFAULT_OPT_OUT_KEYWORDS,
    AutomationSettings,
    KeywordRule,
)
from tests.factories import make_template

SECRET = "sk-live-1234567890abcdef"


def test_the_settings_start_with_the_defaults_and_never_show_the_key(api, owner, workspace):
    body = api(owner).get("/api/automation/").json()
    assert body["opt_out_keywords"] == DEFAULT_OPT_OUT_KEYWORDS
    assert body["opt_in_keywords"] == DEFAULT_OPT_IN_KEYWORDS
    assert body["human_quiet_minutes"] == 30
    assert (body["llm_enabled"], body["llm_fallback"], body["llm_api_key_set"]) == (
        False,
        "handoff",
        False,
    )
    assert "llm_api_key" not in body


def test_an_owner_changes_them_and_the_key_is_stored_encrypted(api, owner, workspace):
    response = api(owner).patch(
        "/api/automation/",
        {
            "llm_enabled": True,
            "llm_base_url": "http://127.0.0.1:11434/v1",
            "llm_model": "llama3.1",
            "llm_api_key": SECRET,
            "opt_out_keywords": ["STOP", "band karo", "STOP"],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert SECRET not in response.content.decode()
    assert (body["llm_api_key_set"], body["opt_out_keywords"]) == (True, ["STOP", "band karo"])
    found = AutomationSettings.objects.get(workspace=workspace)
    assert (found.llm_enabled, found.llm_model, found.llm_api_key) == (True, "llama3.1", SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT llm_api_key FROM automation_automationsettings")
        [(stored,)] = cursor.fetchall()
    assert SECRET not in stored
    # A PATCH without the key keeps it.
    api(owner).patch("/api/automation/", {"llm_model": "qwen"}, format="json")
    assert AutomationSettings.objects.get(workspace=workspace).llm_api_key == SECRET


def test_agents_read_but_do_not_change_them(api, agent, owner, workspace):
    assert api(agent).get("/api/automation/").status_code == 200
    response = api(agent).patch("/api/automation/", {"llm_enabled": True}, format="json")
    assert response.status_code == 403
    assert AutomationSettings.objects.get(workspace=workspace).llm_enabled is False


def test_each_workspace_has_its_own(api, owner, outsider, workspace, other_workspace):
    api(owner).patch("/api/automation/", {"human_quiet_minutes": 5}, format="json")
    assert api(outsider).get("/api/automation/").json()["human_quiet_minutes"] == 30
    api(outsider).patch("/api/automation/", {"human_quiet_minutes": 60}, format="json")
    assert AutomationSettings.objects.get(workspace=workspace).human_quiet_minutes == 5


def test_bad_settings_are_refused_with_the_field(api, owner, workspace):
    cases = [
        ({"opt_out_keywords": "STOP"}, "opt_out_keywords", "a list of words"),
        ({"opt_out_keywords": ["STOP", ""]}, "opt_out_keywords", "item 1: a non-empty text"),
        ({"opt_out_keywords": ["!!"]}, "opt_out_keywords", "item 0: '!!' has no letters or digits"),
        ({"opt_in_keywords": ["stop"]}, "opt_in_keywords", "also an opt-out keyword: stop"),
        ({"llm_fallback": "text"}, "llm_fallback_text", "needed when the fallback is a text"),
        ({"llm_temperature": 3}, "llm_temperature", None),
        ({"llm_base_url": "not a url"}, "llm_base_url", None),
    ]
    for data, field, message in cases:
        response = api(owner).patch("/api/automation/", data, format="json")
        assert response.status_code == 400, data
        errors = response.json()[field]
        if message is not None:
            assert errors == [message], data
    assert AutomationSettings.objects.get(workspace=workspace).opt_out_keywords == (
        DEFAULT_OPT_OUT_KEYWORDS
    )


def test_keyword_rules_crud(api, owner, agent, workspace):
    created = api(owner).post(
        "/api/keyword-rules/",
        {"name": "Hours", "match": "contains", "pattern": "hours", "reply_text": "10 to 8"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert {
        k: body[k]
        for k in (
            "name",
            "match",
            "pattern",
            "reply_text",
            "numbers",
            "campaign",
            "priority",
            "cooldown_minutes",
            "active",
        )
    } == {
        "name": "Hours",
        "match": "contains",
        "pattern": "hours",
        "reply_text": "10 to 8",
        "numbers": [],
        "campaign": None,
        "priority": 100,
        "cooldown_minutes": 60,
        "active": True,
    }
    url = f"/api/keyword-rules/{body['id']}/"
    assert api(agent).get("/api/keyword-rules/").json()["results"][0]["id"] == body["id"]
    assert api(agent).patch(url, {"active": False}, format="json").status_code == 403
    assert api(owner).patch(url, {"priority": 5}, format="json").json()["priority"] == 5
    refused = api(owner).patch(url, {"match": "regex", "pattern": "("}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {
        "pattern": ["invalid regular expression: missing ), unterminated subpattern at position 0"]
    }
    assert KeywordRule.objects.get().match == "contains"
    assert api(owner).delete(url).status_code == 204
    assert KeywordRule.objects.count() == 0


def test_a_rule_needs_one_reply_and_an_approved_template_of_its_workspace(
    api, owner, workspace, other_workspace
):
    pending = make_template(workspace=workspace, name="pending_one", status="PENDING")
    theirs = make_template(workspace=other_workspace, name="theirs")
    base = {"name": "x", "match": "exact", "pattern": "menu"}
    cases = [
        ({}, "reply_text", ["give either a reply text or a reply template, not both"]),
        (
            {"reply_template": pending.pk},
            "reply_template",
            ["template 'pending_one' is PENDING, not APPROVED"],
        ),
        (
            {"reply_template": theirs.pk},
            "reply_template",
            [f'Invalid pk "{theirs.pk}" - object does not exist.'],
        ),
    ]
    for extra, field, errors in cases:
        response = api(owner).post("/api/keyword-rules/", {**base, **extra}, format="json")
        assert response.status_code == 400
        assert response.json()[field] == errors
    assert KeywordRule.objects.count() == 0


def test_another_workspaces_rule_is_not_found(api, owner, outsider, workspace):
    rule = KeywordRule.objects.create(
        workspace=workspace, name="x", pattern="hi", reply_text="hello"
    )
    assert api(outsider).get(f"/api/keyword-rules/{rule.pk}/").status_code == 404
    assert api(outsider).delete(f"/api/keyword-rules/{rule.pk}/").status_code == 404
    assert api(outsider).get("/api/keyword-rules/").json()["results"] == []
    assert KeywordRule.objects.count() == 1
