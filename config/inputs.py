"""The input policy: which strings the product accepts from outside, as plain functions.

Every entry point (API parsers and query strings, forms, CSV import, webhooks,
commands) asks the same questions here, so a string is refused for the same
reason with the same words wherever it comes in. Each check returns the
problem as a sentence, or None when the value is acceptable; the callers turn
it into their own kind of refusal (a 400 naming the field, a form error, a
CommandError). No message ever repeats the value it refuses: the value may be a
secret, and a refused value may not even be encodable in the answer.

This module imports neither Django nor any app, so the Graph client and
scripts can use it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

# PostgreSQL text and jsonb cannot hold NUL at all, and an unpaired surrogate
# cannot be encoded as UTF-8 (neither stored nor rendered into an answer).
NULL_MESSAGE = "Null characters are not allowed."
# Longer than any legitimate value in a query string (names, statuses, phones, ids);
# browsers and proxies cap whole URLs at about 8 KB anyway.
MAX_QUERY_VALUE_LENGTH = 1000
# Any one string inside a request body. A campaign name, a mapping's column, a
# reason or a note is far shorter; whole documents arrive as file uploads.
MAX_BODY_STRING_LENGTH = 100_000
# Meta's access tokens are a few hundred characters; a header line this long is
# refused by many HTTP servers.
MAX_TOKEN_LENGTH = 4096
# The key DRF uses for errors that belong to no one field.
NON_FIELD = "non_field_errors"
# Graph object ids (phone-number ids, WABA ids) are decimal digits; the message is
# the one of the numbers' model validator, which checks the same on trimmed form input.
MAX_GRAPH_ID_LENGTH = 32
GRAPH_ID_MESSAGE = "Enter the numeric id Meta shows (digits only)."

_SURROGATE = re.compile("[\ud800-\udfff]")
_GRAPH_ID = re.compile(rf"[0-9]{{1,{MAX_GRAPH_ID_LENGTH}}}")
# Printable ASCII without the space: what an HTTP header may carry in a token.
_TOKEN = re.compile(r"[\x21-\x7e]+")


def surrogate_message(code_point: int) -> str:
    return f"Surrogate characters are not allowed: U+{code_point:X}."


def too_long_message(max_length: int) -> str:
    return f"Ensure this field has no more than {max_length} characters."


def text_problem(value: str, *, max_length: int | None = None) -> str | None:
    """Why ``value`` cannot be accepted as text (NUL, an unpaired surrogate, too long), or None."""
    if "\x00" in value:
        return NULL_MESSAGE
    surrogate = _SURROGATE.search(value)
    if surrogate is not None:
        return surrogate_message(ord(surrogate.group()))
    if max_length is not None and len(value) > max_length:
        return too_long_message(max_length)
    return None


def _strings(value: Any) -> Iterator[str]:
    # Iterative, not recursive: a deeply nested JSON body must not exhaust the stack.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            for key, nested in item.items():
                if isinstance(key, str):
                    yield key
                stack.append(nested)
        elif isinstance(item, list | tuple):
            stack.extend(item)


def nested_text_problem(value: Any, *, max_length: int | None = None) -> str | None:
    """The first ``text_problem`` of any string in ``value``, a JSON-like structure
    (dict keys included), or None when all of them are acceptable."""
    for text in _strings(value):
        problem = text_problem(text, max_length=max_length)
        if problem is not None:
            return problem
    return None


def field_errors(data: Any, *, max_length: int, noun: str = "field") -> dict[str, list[str]] | None:
    """``{field: [message]}`` (DRF's error shape) for the first top-level field of ``data``
    holding a string that ``text_problem`` refuses, or None when every string passes.

    ``data`` is a dict, a Django QueryDict (each value a list: every value of a repeated
    name is checked) or any other JSON value (refused under ``non_field_errors``). A name
    that is itself refused is reported under ``non_field_errors`` too, never echoed;
    ``noun`` says what the names are ("field", "query parameter").
    """
    if not isinstance(data, Mapping):
        problem = nested_text_problem(data, max_length=max_length)
        return {NON_FIELD: [problem]} if problem else None
    # A QueryDict's items() gives only the last value of each name; lists() gives all.
    items = data.lists() if hasattr(data, "lists") else data.items()
    for name, value in items:
        name_problem = text_problem(str(name), max_length=max_length)
        if name_problem is not None:
            return {NON_FIELD: [f"A {noun} name is not acceptable: {name_problem}"]}
        problem = nested_text_problem(value, max_length=max_length)
        if problem is not None:
            return {str(name): [problem]}
    return None


def bearer_token_problem(token: str) -> str | None:
    """Why ``token`` (already trimmed) cannot be sent as a bearer token in an HTTP
    header, or None. The answer never contains the token or any part of it."""
    if not token:
        return "The access token is empty."
    if len(token) > MAX_TOKEN_LENGTH:
        return f"An access token has at most {MAX_TOKEN_LENGTH} characters."
    if _TOKEN.fullmatch(token):
        return None
    if any(char in "\r\n" for char in token):
        found = "a line break"
    elif any(char.isspace() for char in token):
        found = "a space or tab"
    elif not token.isascii():
        found = "a character that is not ASCII"
    else:
        found = "a control character"
    return (
        f"An access token is one line of printable ASCII characters; this one contains "
        f"{found}. Copy it again from Meta as a single line."
    )


def graph_id_problem(value: str) -> str | None:
    """Why ``value`` (already trimmed) is not a Graph object id (ASCII digits), or None."""
    if _GRAPH_ID.fullmatch(value):
        return None
    return GRAPH_ID_MESSAGE


def is_ascii_digits(value: str) -> bool:
    """True for a non-empty run of 0-9 only (``str.isdigit`` is also true for "²",
    which ``int()`` then refuses)."""
    return value.isascii() and value.isdigit()
