"""Plain-words explanations of Graph errors, from the same table as the consequences."""

from __future__ import annotations

import pytest

from messaging.graph import ERROR_TABLE, error_explanation


def test_every_code_in_the_table_has_its_own_sentence():
    sentences = {}
    for code, rule in ERROR_TABLE.items():
        text = error_explanation(code)
        assert text == rule.explanation
        assert text.endswith("."), code
        assert str(code) not in text, "the sentence is for a marketer, not a code lookup"
        sentences[code] = text
    # No copy-paste: each code says something of its own.
    assert len(set(sentences.values())) == len(sentences)


def test_known_codes_ignore_meta_title():
    assert error_explanation(131050, "Unable to deliver message") == (
        "This person chose to stop receiving marketing messages from the business; "
        "they are suppressed."
    )


@pytest.mark.parametrize(
    ("code", "title", "expected"),
    [
        (987654, "Some new Meta problem", "Some new Meta problem."),
        (987654, "  Ends with a stop.  ", "Ends with a stop."),
        (987654, "", "Meta reported error 987654."),
        (None, "", "Meta reported an error without a code."),
        (None, "No code but a title", "No code but a title."),
    ],
)
def test_unknown_codes_fall_back_to_meta_title(code, title, expected):
    assert error_explanation(code, title) == expected


def test_permission_range_has_a_sentence():
    assert "permission" in error_explanation(250)
