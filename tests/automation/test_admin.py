"""The automation admin: settings with the key never shown, rules refusing bad patterns."""

from __future__ import annotations

from django.urls import reverse

from automation.models import KeywordRule
from automation.services import settings_for


def test_the_settings_page_never_shows_the_key_and_an_empty_box_keeps_it(client, owner, workspace):
    found = settings_for(workspace.pk)
    found.llm_api_key = "sk-admin-secret-value"
    found.save()
    client.force_login(owner)
    url = reverse("admin:automation_automationsettings_change", args=[found.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"sk-admin-secret-value" not in page.content
    response = client.post(
        url,
        {
            "workspace": workspace.pk,
            "opt_out_keywords": "STOP\nबंद करो",
            "opt_in_keywords": "START",
            "opt_out_confirmation": "Done.",
            "llm_base_url": "https://api.openai.com/v1",
            "llm_model": "gpt-4o-mini",
            "llm_api_key": "",
            "llm_system_prompt": "Be brief.",
            "llm_knowledge": "",
            "llm_temperature": "0.3",
            "llm_max_tokens": "300",
            "llm_timeout_seconds": "10",
            "llm_max_replies_per_10_minutes": "5",
            "llm_max_consecutive_replies": "3",
            "llm_fallback": "handoff",
            "llm_fallback_text": "",
            "human_quiet_minutes": "30",
        },
    )
    assert response.status_code == 302, response.content
    found.refresh_from_db()
    assert (found.opt_out_keywords, found.llm_api_key) == (
        ["STOP", "बंद करो"],
        "sk-admin-secret-value",
    )


def test_a_rule_with_a_bad_pattern_is_refused_with_the_reason(client, owner, workspace):
    client.force_login(owner)
    response = client.post(
        reverse("admin:automation_keywordrule_add"),
        {
            "workspace": workspace.pk,
            "name": "bad",
            "match": "regex",
            "pattern": "(a+)+",
            "reply_text": "x",
            "reply_parameters": "{}",
            "priority": "100",
            "cooldown_minutes": "60",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert b"nested repetition" in response.content
    assert KeywordRule.objects.count() == 0
