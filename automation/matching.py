"""Text matching for the auto-replies: keyword normalisation, rule patterns, their checks."""

from __future__ import annotations

import functools
import re
import unicodedata
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]

from automation.models import PATTERN_MAX_LENGTH, MatchKind

# Only this much of a message is matched against rule patterns: with the patterns'
# length cap and the nested-repeat refusal it bounds the cost of one match.
MATCH_TEXT_LIMIT = 1000
# Quick-reply buttons of opt-out templates ("Stop updates", "Stop promotions", Meta's
# marketing footer button); matched like the workspace's own opt-out keywords.
BUTTON_OPT_OUT_PHRASES = ["STOP UPDATES", "STOP PROMOTIONS", "STOP MESSAGES", "UNSUBSCRIBE"]

_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The form keywords are compared in: Unicode NFKC, casefolded, punctuation, symbols
    (emoji) and invisible format characters replaced by spaces, spaces collapsed.

    Letters, digits and combining marks stay, so Devanagari (बंद, रोकें) survives intact.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = [" " if _dropped(ch) else ch for ch in folded]
    return _SPACES.sub(" ", "".join(kept)).strip()


def _dropped(ch: str) -> bool:
    """Punctuation, symbols, separators, controls and format characters, enclosing marks
    (the keycap) and variation selectors (the invisible half of many emoji, which
    Unicode files as marks, like Devanagari's vowel signs that must stay)."""
    category = unicodedata.category(ch)
    if category[0] in "PSCZ" or category == "Me":
        return True
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def keyword_set(keywords: list[str]) -> frozenset[str]:
    return frozenset(k for k in (normalize(str(w)) for w in keywords) if k)


def keyword_of(text: str, keywords: list[str]) -> str | None:
    """The keyword the whole of ``text`` is (normalised), or None."""
    normal = normalize(text)
    return normal if normal and normal in keyword_set(keywords) else None


class PatternInvalid(ValueError):
    """A rule pattern that cannot be used; the message says why."""


def pattern_check(match: str, pattern: str) -> None:
    """Raises PatternInvalid (with the reason) for a pattern a rule may not use."""
    if not pattern or not pattern.strip():
        raise PatternInvalid("the pattern is empty")
    if len(pattern) > PATTERN_MAX_LENGTH:
        raise PatternInvalid(f"the pattern is longer than {PATTERN_MAX_LENGTH} characters")
    if match != MatchKind.REGEX:
        if not normalize(pattern):
            raise PatternInvalid("the pattern has no letters or digits")
        return
    try:
        parsed = sre_parser.parse(pattern, re.IGNORECASE)
    except re.error as error:
        raise PatternInvalid(f"invalid regular expression: {error}") from None
    if _nested_repeat(parsed, inside=False):
        raise PatternInvalid(
            "nested repetition (like (a+)+) can take exponential time; rewrite it without"
        )


def _nested_repeat(parsed, *, inside: bool) -> bool:
    """Whether a variable-count repeat sits inside another one (catastrophic backtracking)."""
    for op, arg in parsed:
        children: list = []
        nested = inside
        if op in _REPEATS:
            low, high, sub = arg
            # A repeat of variable count is what lets the engine backtrack; {2} is not.
            if low != high:
                if inside:
                    return True
                nested = True
            children = [sub]
        elif op == sre_constants.SUBPATTERN:
            children = [arg[-1]]
        elif op == sre_constants.BRANCH:
            children = list(arg[1])
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            children = [arg[1]]
        elif op == sre_constants.ATOMIC_GROUP:
            children = [arg]
        if any(_nested_repeat(child, inside=nested) for child in children):
            return True
    return False


_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)


@functools.lru_cache(maxsize=2048)
def compiled(pattern: str) -> re.Pattern[str]:
    """The rule's regular expression, compiled once per process (patterns were checked
    when the rule was saved)."""
    return re.compile(pattern, re.IGNORECASE)


def rule_matches(match: str, pattern: str, text: str) -> bool:
    """Whether a rule of kind ``match`` with ``pattern`` matches the message ``text``."""
    if match == MatchKind.REGEX:
        return (
            compiled(pattern).search(unicodedata.normalize("NFKC", text)[:MATCH_TEXT_LIMIT])
            is not None
        )
    normal_text = normalize(text[: MATCH_TEXT_LIMIT * 4])
    normal_pattern = normalize(pattern)
    if not normal_pattern:
        return False
    if match == MatchKind.EXACT:
        return normal_text == normal_pattern
    # Contains: on word boundaries, so "hi" does not fire on "this".
    return f" {normal_pattern} " in f" {normal_text} "


_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_.\- ]{1,64}?)\s*\}\}")


def fill_variables(text: str, variables: dict[str, str]) -> tuple[str, list[str]]:
    """``text`` with ``{{name}}`` placeholders filled from ``variables`` (case-insensitive
    keys); returns the text and the names that had no value (filled with "")."""
    lowered = {str(k).strip().casefold(): str(v) for k, v in variables.items()}
    missing: list[str] = []

    def value(found: re.Match[str]) -> str:
        key = found.group(1).strip().casefold()
        if key in lowered:
            return lowered[key]
        missing.append(found.group(1).strip())
        return ""

    return _VARIABLE.sub(value, text), missing
