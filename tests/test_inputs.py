"""The input policy's checks (config.inputs): what each refuses, in which words, and that
no refusal repeats the value."""

import pytest

from config.inputs import (
    bearer_token_problem,
    graph_id_problem,
    is_ascii_digits,
    nested_text_problem,
    text_problem,
)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("plain text, é, 日本, 🙂", None),
        ("", None),
        ("a\x00b", "Null characters are not allowed."),
        ("a\ud800b", "Surrogate characters are not allowed: U+D800."),
        ("\udc00", "Surrogate characters are not allowed: U+DC00."),
    ],
)
def test_text_is_refused_for_a_nul_or_an_unpaired_surrogate(value, problem):
    assert text_problem(value) == problem


def test_text_longer_than_the_limit_is_refused():
    assert text_problem("x" * 10, max_length=10) is None
    assert text_problem("x" * 11, max_length=10) == (
        "Ensure this field has no more than 10 characters."
    )


def test_nested_values_are_checked_keys_included():
    assert nested_text_problem({"a": [1, None, True, {"b": "fine"}]}) is None
    assert nested_text_problem({"a": [{"b": ["x\x00"]}]}) == "Null characters are not allowed."
    assert nested_text_problem({"k\ud83d": 1}) == "Surrogate characters are not allowed: U+D83D."
    assert nested_text_problem(["y" * 6], max_length=5) == (
        "Ensure this field has no more than 5 characters."
    )


def test_a_very_deep_structure_is_checked_without_recursion():
    deep: list = ["\x00"]
    for _ in range(100_000):
        deep = [deep]
    assert nested_text_problem(deep) == "Null characters are not allowed."


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("EAAG-abc_123.xyz~+/=", None),
        ("", "The access token is empty."),
        ("E" * 4096, None),
        ("E" * 4097, "An access token has at most 4096 characters."),
    ],
)
def test_bearer_tokens_must_be_short_enough_and_not_empty(token, problem):
    assert bearer_token_problem(token) == problem


@pytest.mark.parametrize(
    ("token", "found"),
    [
        ("EAAGsecret\nrest", "a line break"),
        ("EAAGsecret\rrest", "a line break"),
        ("EAAGsecret rest", "a space or tab"),
        ("EAAGsecret\u00a0rest", "a space or tab"),
        ("EAAGsecret\u2019rest", "a character that is not ASCII"),
        ("EAAGsecret\x00rest", "a control character"),
    ],
)
def test_a_bearer_token_is_one_line_of_printable_ascii_and_the_refusal_quotes_none_of_it(
    token, found
):
    problem = bearer_token_problem(token)
    assert problem == (
        f"An access token is one line of printable ASCII characters; this one contains "
        f"{found}. Copy it again from Meta as a single line."
    )
    assert "secret" not in problem and "rest" not in problem


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("200000000000001", True),
        ("1" * 32, True),
        ("1" * 33, False),
        ("", False),
        ("12a", False),
        ("\uff11\uff12", False),
        ("\u0661\u0662", False),
        ("12\n", False),
    ],
)
def test_graph_ids_are_1_to_32_ascii_digits(value, ok):
    assert (graph_id_problem(value) is None) is ok
    if not ok:
        assert graph_id_problem(value) == "Enter the numeric id Meta shows (digits only)."


@pytest.mark.parametrize(
    ("value", "ok"), [("123", True), ("", False), ("\u00b2", False), ("\u0663", False)]
)
def test_ascii_digits_are_0_to_9_only(value, ok):
    assert is_ascii_digits(value) is ok
