"""The error table: every documented code and HTTP status lands in its class."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.graph import ERROR_CODES, ERROR_TABLE, Consequence, ErrorClass, GraphError, classify

E = ErrorClass

# (code, HTTP status, class): graph-api.md's table, row by row, plus the edges.
CASES = [
    (130429, 400, E.THROTTLE),
    (80007, 400, E.THROTTLE),
    (4, 400, E.THROTTLE),
    (None, 429, E.THROTTLE),
    (131056, 429, E.THROTTLE),  # HTTP 429 wins whatever the body says
    (100, 429, E.THROTTLE),
    (131056, 400, E.RECIPIENT_THROTTLE),
    (131048, 400, E.QUALITY),
    (131049, 400, E.QUALITY),
    (1, 500, E.TRANSIENT),
    (2, 503, E.TRANSIENT),
    (131000, 500, E.TRANSIENT),
    (131016, 503, E.TRANSIENT),
    (133004, 503, E.TRANSIENT),
    (131057, 503, E.TRANSIENT),
    (None, 500, E.TRANSIENT),
    (None, 502, E.TRANSIENT),
    (None, 503, E.TRANSIENT),
    (987654, 500, E.TRANSIENT),  # 5xx with no known code
    (None, None, E.TRANSIENT),  # no answer at all: refused before sending
    (0, 400, E.AUTH),
    (190, 401, E.AUTH),
    (3, 400, E.AUTH),
    (10, 403, E.AUTH),
    (200, 403, E.AUTH),
    (250, 400, E.AUTH),
    (299, 400, E.AUTH),
    (131005, 403, E.AUTH),
    (131031, 400, E.AUTH),
    (368, 400, E.AUTH),
    (None, 401, E.AUTH),
    (132000, 400, E.TEMPLATE),
    (132001, 404, E.TEMPLATE),
    (132005, 400, E.TEMPLATE),
    (132007, 400, E.TEMPLATE),
    (132012, 400, E.TEMPLATE),
    (132015, 400, E.TEMPLATE),
    (132016, 400, E.TEMPLATE),
    (100, 400, E.RECIPIENT),
    (100, 500, E.RECIPIENT),  # a known code decides over the 5xx status
    (131008, 400, E.RECIPIENT),
    (131009, 400, E.RECIPIENT),
    (131021, 400, E.RECIPIENT),
    (131026, 400, E.RECIPIENT),
    (131047, 400, E.RECIPIENT),
    (131050, 400, E.RECIPIENT),
    (131051, 400, E.RECIPIENT),
    (131053, 400, E.RECIPIENT),
    (133010, 400, E.ACCOUNT),
    (131042, 400, E.ACCOUNT),
    (131064, 400, E.ACCOUNT),
    (130497, 400, E.ACCOUNT),
    (130472, 400, E.RECIPIENT),
    (135000, 400, E.RECIPIENT),
    (300, 400, E.UNKNOWN),
    (199, 400, E.UNKNOWN),
    (987654, 400, E.UNKNOWN),
    (None, 400, E.UNKNOWN),
    (None, 404, E.UNKNOWN),
    (987654, None, E.UNKNOWN),
]


@pytest.mark.parametrize(("code", "http_status", "expected"), CASES)
def test_classify_follows_the_table(code, http_status, expected):
    assert classify(code, http_status) is expected


def test_each_code_is_in_exactly_one_class():
    seen: dict[int, ErrorClass] = {}
    for error_class, codes in ERROR_CODES.items():
        for code in codes:
            assert code not in seen, f"{code} in {seen.get(code)} and {error_class}"
            seen[code] = error_class
    assert len(seen) == 41


@given(st.one_of(st.none(), st.integers()), st.one_of(st.none(), st.integers(100, 599)))
def test_classify_always_answers_a_class(code, http_status):
    assert isinstance(classify(code, http_status), ErrorClass)


C = Consequence

# (code, HTTP status, consequence, number state): what each failure does.
CONSEQUENCES = [
    (130429, 400, C.RETRY, None),
    (131056, 400, C.RETRY_RECIPIENT, None),
    (131056, 429, C.RETRY, None),  # HTTP 429: a throttle, whatever the code
    (131000, 500, C.RETRY, None),
    (None, 503, C.RETRY, None),
    (131048, 400, C.PAUSE_NUMBER, None),
    (131049, 400, C.BACKOFF_RECIPIENT, None),
    (131042, 400, C.PAUSE_ACCOUNT, None),
    (133010, 400, C.STOP_NUMBER, "disconnected"),
    (130497, 400, C.FAIL, None),
    (190, 401, C.STOP_NUMBER, "token_expired"),
    (368, 400, C.STOP_NUMBER, "blocked"),
    (131031, 400, C.STOP_NUMBER, "blocked"),
    (10, 403, C.STOP_NUMBER, "disconnected"),
    (250, 400, C.STOP_NUMBER, "disconnected"),  # the permission range, not in the table
    (None, 401, C.STOP_NUMBER, "disconnected"),
    (132001, 404, C.PAUSE_CAMPAIGN, None),
    (132015, 400, C.PAUSE_CAMPAIGN, None),
    (132016, 400, C.PAUSE_CAMPAIGN, None),
    (132000, 400, C.TEMPLATE_CHANGED, None),
    (132012, 400, C.FAIL, None),
    (131026, 400, C.FAIL, None),
    (131050, 400, C.SUPPRESS, None),
    (987654, 400, C.FAIL, None),
]


@pytest.mark.parametrize(("code", "http_status", "consequence", "state"), CONSEQUENCES)
def test_each_error_has_one_consequence(code, http_status, consequence, state):
    rule = GraphError("x", code=code, http_status=http_status).rule
    assert (rule.consequence, rule.number_state) == (consequence, state)


def test_the_table_is_the_only_source_of_the_classes():
    for code, rule in ERROR_TABLE.items():
        assert classify(code, 400) is rule.error_class
        assert code in ERROR_CODES[rule.error_class]


def test_graph_error_classifies_itself_from_code_and_status():
    error = GraphError("(#131056) pair rate", code=131056, subcode=2494073, http_status=400)
    assert error.error_class is E.RECIPIENT_THROTTLE
    assert str(error) == (
        "Graph API error (code=131056, subcode=2494073, http=400, class=recipient_throttle): "
        "(#131056) pair rate"
    )
    assert repr(error) == (
        "GraphError(code=131056, subcode=2494073, http_status=400, "
        "error_class='recipient_throttle', outcome_unknown=False, message='(#131056) pair rate')"
    )
