"""Keyword rules: matching kinds, priority, cooldown per contact, variables, templates, scope."""

from __future__ import annotations

import pytest

from automation.models import KeywordRule
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS
from tests.automation.conftest import CUSTOMER, sent_texts
from tests.factories import make_campaign, make_number


@pytest.fixture
def rule(automation):
    def make(pattern, reply_text="", *, numbers=(), **fields):
        made = KeywordRule(
            workspace=automation.workspace,
            name=fields.pop("name", pattern),
            pattern=pattern,
            reply_text=reply_text,
            **fields,
        )
        made.full_clean()
        made.save()
        made.numbers.set(numbers)
        return made

    return make


def test_the_first_matching_rule_by_priority_replies_with_the_contacts_variables(
    receive, automate, rule, sim, llm_sim
):
    rule("hours", "Generic hours", priority=50)
    first = rule("hours", "Hi {{name}}, we open at 10. Ref {{ missing }}.", priority=10)
    message = receive("What are your HOURS today?", name="Ravi")
    decision = automate(message)
    assert decision["outcome"] == "rule_replied"
    assert (decision["rule"], decision["missing_variables"]) == (first.pk, ["missing"])
    assert sent_texts(sim) == ["Hi Ravi, we open at 10. Ref ."]
    assert llm_sim.requests() == []


def test_contains_matches_whole_words_only(receive, automate, rule, sim):
    rule("hi", "Hello!")
    assert automate(receive("this is nice"))["outcome"] == "llm_replied"
    assert automate(receive("Hi!!"))["outcome"] == "rule_replied"


def test_exact_matches_the_whole_message_after_normalising(receive, automate, rule, sim):
    rule("menu", "Our menu: ...", match="exact")
    assert automate(receive("show me the menu"))["outcome"] == "llm_replied"
    assert automate(receive(" MENU! "))["outcome"] == "rule_replied"


def test_a_regular_expression_rule(receive, automate, rule, sim):
    rule(r"order\s*#?\d{4,}", "We are checking order status.", match="regex")
    assert automate(receive("where is order #12345?"))["outcome"] == "rule_replied"
    assert sent_texts(sim) == ["We are checking order status."]


def test_a_rule_answers_a_contact_once_per_cooldown(receive, automate, rule, automation, sim):
    automation.llm_enabled = False
    automation.save()
    made = rule("price", "20% off", cooldown_minutes=60)
    assert automate(receive("price?"))["outcome"] == "rule_replied"
    again = automate(receive("price??"))
    assert again["outcome"] == "no_reply"
    assert {
        "step": "rules",
        "decision": "matched, in its cooldown for this contact",
        "rule": made.pk,
    } in again["steps"]
    # Another contact is not in this one's cooldown.
    assert automate(receive("price?", sender="919800000007"))["outcome"] == "rule_replied"
    assert sent_texts(sim) == ["20% off"]
    assert sent_texts(sim, to="919800000007") == ["20% off"]


def test_a_rule_in_cooldown_lets_the_next_one_answer(receive, automate, rule, sim):
    rule("price", "first", priority=1, cooldown_minutes=30)
    rule("price", "second", priority=2, cooldown_minutes=0)
    automate(receive("price"))
    automate(receive("price"))
    assert sent_texts(sim) == ["first", "second"]


def test_inactive_rules_and_rules_for_other_numbers_or_campaigns_are_skipped(
    receive, automate, rule, automation, number, templates, sim
):
    other = make_number(
        workspace=automation.workspace,
        label="second",
        phone_number_id=DEMO_PHONE_NUMBER_IDS[1],
        display_phone_number="+1 555-000-0002",
    )
    campaign = make_campaign(
        workspace=automation.workspace, numbers=[number], templates=[templates["seasonal_promo"]]
    )
    rule("price", "inactive", active=False, priority=1)
    rule("price", "other number", numbers=[other], priority=2)
    rule("price", "other campaign", campaign=campaign, priority=3)
    rule("price", "this number", numbers=[number], priority=4)
    automate(receive("price"))
    assert sent_texts(sim) == ["this number"]


def test_a_rule_can_reply_with_an_approved_template(receive, automate, rule, templates, sim):
    rule(
        "track",
        reply_template=templates["seasonal_promo"],
        reply_parameters={"body.1": "{{name}}", "body.2": "FALL25"},
    )
    decision = automate(receive("track", name="Meena"))
    assert decision["outcome"] == "rule_replied"
    [sent] = sim.messages(to=CUSTOMER)
    assert sent["template"] == {"name": "seasonal_promo", "language": "en_US"}
    assert sent["components"][0]["parameters"] == [
        {"type": "text", "text": "Meena"},
        {"type": "text", "text": "FALL25"},
    ]


@pytest.mark.parametrize(
    ("match", "pattern", "error"),
    [
        (
            "regex",
            "order(",
            "invalid regular expression: missing ), unterminated subpattern at position 5",
        ),
        (
            "regex",
            "(a+)+$",
            "nested repetition (like (a+)+) can take exponential time; rewrite it without",
        ),
        ("regex", "a" * 201, "the pattern is longer than 200 characters"),
        ("contains", "!!!", "the pattern has no letters or digits"),
    ],
)
def test_unusable_patterns_are_refused_with_the_reason(automation, match, pattern, error):
    from django.core.exceptions import ValidationError

    made = KeywordRule(
        workspace=automation.workspace, name="x", match=match, pattern=pattern, reply_text="x"
    )
    with pytest.raises(ValidationError) as refused:
        made.full_clean()
    assert error in refused.value.message_dict["pattern"]
