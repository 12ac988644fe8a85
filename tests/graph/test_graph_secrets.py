"""The Graph client refuses tokens that cannot be a header, and no exception it raises, nor
any log line, carries the token or the Authorization header."""

import logging
import traceback

import pytest
import requests

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN
from messaging.graph import GraphClient, InvalidTokenError, UnsendableRequestError, scrub_secrets

FIRST_HALF = "EAAGfirsthalf0123456789"
SECOND_HALF = "secondhalf9876543210"


def everything_about(error: BaseException, caplog) -> str:
    """The error as a person or a log could ever see it: text, repr, traceback, logs."""
    return "\n".join(
        [
            str(error),
            repr(error),
            "".join(traceback.format_exception(error)),
            caplog.text,
            *(record.getMessage() for record in caplog.records),
        ]
    )


@pytest.mark.parametrize(
    "token",
    [
        f"{FIRST_HALF}\n{SECOND_HALF}",
        f"{FIRST_HALF}\r{SECOND_HALF}",
        f"{FIRST_HALF} {SECOND_HALF}",
        f"{FIRST_HALF}\u2019{SECOND_HALF}",
        f"{FIRST_HALF}\x00{SECOND_HALF}",
        FIRST_HALF + SECOND_HALF * 300,
    ],
    ids=["line-break", "carriage-return", "space", "outside-latin-1", "nul", "too-long"],
)
def test_a_token_that_cannot_be_a_header_is_refused_without_quoting_it(token, caplog):
    with pytest.raises(InvalidTokenError) as refused:
        GraphClient(token, base_url="https://graph.test")
    assert isinstance(refused.value, ValueError)
    assert refused.value.__context__ is None
    text = everything_about(refused.value, caplog)
    assert FIRST_HALF not in text
    assert SECOND_HALF not in text


def test_surrounding_whitespace_is_trimmed_not_refused():
    client = GraphClient(f"  {DEMO_TOKEN}\r\n", base_url="https://graph.test")
    assert client._headers()["Authorization"] == f"Bearer {DEMO_TOKEN}"


def test_scrubbing_covers_bearer_credentials_and_token_query_values():
    text = (
        "Invalid header value b'Bearer EAAGsecret.part' for "
        "https://graph.test/v23.0/1?access_token=EAAGother&limit=5"
    )
    assert scrub_secrets(text) == (
        "Invalid header value b'Bearer ***' for https://graph.test/v23.0/1?access_token=***&limit=5"
    )
    assert scrub_secrets("header 'Bearer one\\ntwo'", "Bearer one\ntwo") == "header '***'"


class RaisingAdapter(requests.adapters.BaseAdapter):
    """A transport that fails the way http.client and requests do, quoting the header."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def send(self, request, **kwargs):
        raise self.error

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.InvalidHeader(
            f"Invalid leading whitespace, reserved character(s), or return character(s) in "
            f"header value: 'Bearer {DEMO_TOKEN}'"
        ),
        UnicodeEncodeError("latin-1", f"Bearer {DEMO_TOKEN}", 7, 8, "ordinal not in range(256)"),
        ValueError(f"Invalid header value b'Bearer {DEMO_TOKEN}'"),
    ],
    ids=["requests-invalid-header", "http-client-encoding", "http-client-header-check"],
)
def test_a_request_that_cannot_be_built_raises_without_the_header(error, caplog):
    caplog.set_level(logging.DEBUG)
    session = requests.Session()
    session.mount("https://", RaisingAdapter(error))
    client = GraphClient(DEMO_TOKEN, base_url="https://graph.test", session=session)
    with pytest.raises(UnsendableRequestError) as refused:
        client.get_phone_number(DEMO_PHONE_NUMBER_IDS[0])
    assert refused.value.__suppress_context__
    text = everything_about(refused.value, caplog)
    assert DEMO_TOKEN not in text
    assert type(error).__name__ in str(refused.value)


@pytest.mark.parametrize(
    "call",
    [
        # Has query parameters: goes through requests.
        lambda client: client.get_phone_number(DEMO_PHONE_NUMBER_IDS[0]),
        # None: goes through urllib3 directly.
        lambda client: client.mark_read(phone_number_id=DEMO_PHONE_NUMBER_IDS[0], message_id="m"),
    ],
    ids=["requests", "urllib3"],
)
@pytest.mark.parametrize("separator", ["\n", "\u2019"], ids=["line-break", "outside-latin-1"])
def test_even_a_broken_header_that_got_past_the_constructor_is_never_quoted(
    sim, caplog, call, separator
):
    caplog.set_level(logging.DEBUG)
    client = GraphClient(DEMO_TOKEN, base_url=sim.base_url)
    # What a bug bypassing the constructor's check would put on the wire.
    client._token = f"{FIRST_HALF}{separator}{SECOND_HALF}"
    client._auth_header = f"Bearer {client._token}"
    with pytest.raises(UnsendableRequestError) as refused:
        call(client)
    text = everything_about(refused.value, caplog)
    assert FIRST_HALF not in text
    assert SECOND_HALF not in text
