"""HTTP client for the WhatsApp Cloud (Graph) API: the only code that talks to Meta."""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from urllib.request import getproxies

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from config.inputs import bearer_token_problem

logger = logging.getLogger(__name__)

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v23.0"

# Meta caps biz_opaque_callback_data at 512 characters; longer values are refused.
MAX_CALLBACK_DATA = 512

PHONE_NUMBER_FIELDS = (
    "id,display_phone_number,verified_name,quality_rating,code_verification_status,"
    "name_status,throughput{level},messaging_limit_tier,platform_type,status,is_on_biz_app,"
    "whatsapp_business_manager_messaging_limit"
)
TEMPLATE_FIELDS = "id,name,language,status,category,parameter_format,components"
# A runaway paging loop (a server repeating its cursor) must end; no WABA has this many pages.
_MAX_PAGES = 10_000


class ErrorClass(enum.StrEnum):
    """The kind of a failed call (graph-api.md, "Errors")."""

    THROTTLE = "throttle"
    RECIPIENT_THROTTLE = "recipient_throttle"
    QUALITY = "quality"
    TRANSIENT = "transient"
    AUTH = "auth"
    # The business account (payment, registration, country restrictions), not the token.
    ACCOUNT = "account"
    TEMPLATE = "template"
    RECIPIENT = "recipient"
    UNKNOWN = "unknown"


class Consequence(enum.StrEnum):
    """What a failed send does, to its own row and beyond it (engine.md), whether the
    error came in the send's answer or in a ``failed`` status webhook."""

    # Certainly not accepted: retried after 5, 20, 45 s, then failed.
    RETRY = "retry"
    # The pair rate (about one message per 6 s to one user): that recipient
    # waits; nobody else slows down.
    RETRY_RECIPIENT = "retry_recipient"
    FAIL = "fail"
    # Meta's per-user marketing cap (131049): the row fails and that phone gets no
    # marketing template from any campaign of the workspace for a day; its other rows
    # wait (held at claim time), they are not failed.
    BACKOFF_RECIPIENT = "backoff_recipient"
    # The template is gone or blocked: every further send of the campaign
    # would fail the same way, so the row fails and the campaign pauses.
    PAUSE_CAMPAIGN = "pause_campaign"
    # The template changed at Meta under the campaign (parameter count): the row
    # waits, the campaign pauses and the templates are synced again.
    TEMPLATE_CHANGED = "template_changed"
    # Spam-rate limited: the row waits, the number is held and every campaign on it
    # pauses, resumable by a person after a cooldown; hammering on makes Meta's
    # verdict worse.
    PAUSE_NUMBER = "pause_number"
    # The token or the number is unusable: the row waits, the number is marked
    # (``ErrorRule.number_state``) and its campaigns pause.
    STOP_NUMBER = "stop_number"
    # The business account cannot send (payment, restriction): the row waits and
    # every campaign on any number of the account pauses.
    PAUSE_ACCOUNT = "pause_account"
    # The user stopped marketing messages: the row fails and the phone is
    # suppressed in the workspace.
    SUPPRESS = "suppress"


# Consequences whose own row is not failed: it is sent again later (after a retry
# delay, or when the campaign is resumed).
ROW_RETRIES = frozenset({Consequence.RETRY, Consequence.RETRY_RECIPIENT})
ROW_WAITS = frozenset(
    {
        Consequence.TEMPLATE_CHANGED,
        Consequence.PAUSE_NUMBER,
        Consequence.STOP_NUMBER,
        Consequence.PAUSE_ACCOUNT,
    }
)


@dataclass(frozen=True, slots=True)
class ErrorRule:
    error_class: ErrorClass
    consequence: Consequence
    # For STOP_NUMBER: the number status it implies (numbers.models.NumberStatus values).
    number_state: str | None = None
    # One sentence a marketer understands (``error_explanation``); "" for class defaults.
    explanation: str = ""
    # The row fails, but the same code on many rows in a row means the account, not the
    # recipients: it counts toward the consecutive-failure breaker, as unknown codes do.
    breaker: bool = False


E, C = ErrorClass, Consequence


def _rule(code, error_class, consequence, explanation, state=None, breaker=False):
    return code, ErrorRule(error_class, consequence, state, explanation, breaker)


# The one table of Graph error codes: code -> class -> consequence -> plain words.
# Change it here and only here; the engine, the webhooks, the numbers and every
# screen that explains an error follow it.
# fmt: off
ERROR_TABLE: Mapping[int, ErrorRule] = dict((
    # -- throttles: Meta asked us to slow down; the message is retried later.
    _rule(130429, E.THROTTLE, C.RETRY,
          "The number sent faster than Meta allows; the message is retried shortly."),
    _rule(80007, E.THROTTLE, C.RETRY,
          "The WhatsApp account reached Meta's rate limit; the message is retried shortly."),
    _rule(4, E.THROTTLE, C.RETRY,
          "Meta's limit on API calls for the app was reached; the message is retried shortly."),
    _rule(131056, E.RECIPIENT_THROTTLE, C.RETRY_RECIPIENT,
          "Too many messages to this person in a short time; this one is retried in a few "
          "seconds."),
    # -- quality
    _rule(131048, E.QUALITY, C.PAUSE_NUMBER,
          "Meta limited this number because too many people blocked or reported its "
          "messages; its campaigns are paused."),
    _rule(131049, E.QUALITY, C.BACKOFF_RECIPIENT,
          "Meta did not deliver this marketing message to keep this person's experience "
          "healthy; they get no marketing message from any campaign for a day."),
    # -- transient: Meta's side had trouble; retried.
    _rule(1, E.TRANSIENT, C.RETRY, "Meta had a temporary problem; the message is retried."),
    _rule(2, E.TRANSIENT, C.RETRY,
          "Meta's service was briefly unavailable; the message is retried."),
    _rule(131000, E.TRANSIENT, C.RETRY,
          "Something went wrong at Meta while sending; the message is retried."),
    _rule(131016, E.TRANSIENT, C.RETRY, "Meta's service was overloaded; the message is retried."),
    _rule(133004, E.TRANSIENT, C.RETRY,
          "Meta's server was briefly unavailable; the message is retried."),
    _rule(131057, E.TRANSIENT, C.RETRY,
          "The WhatsApp account is in maintenance at Meta; the message is retried."),
    # -- the token or the number cannot send.
    _rule(0, E.AUTH, C.STOP_NUMBER,
          "Meta could not verify the access token; reconnect the number.",
          state="disconnected"),
    _rule(3, E.AUTH, C.STOP_NUMBER,
          "The Meta app is not allowed to use this feature; check the app's permissions.",
          state="disconnected"),
    _rule(10, E.AUTH, C.STOP_NUMBER,
          "The access token lacks a permission Meta needs for sending; reconnect the number "
          "with the right permissions.",
          state="disconnected"),
    _rule(131005, E.AUTH, C.STOP_NUMBER,
          "Meta refused access for this token; reconnect the number with the right "
          "permissions.",
          state="disconnected"),
    _rule(190, E.AUTH, C.STOP_NUMBER,
          "The access token expired or was revoked; reconnect the number with a new token.",
          state="token_expired"),
    _rule(368, E.AUTH, C.STOP_NUMBER,
          "Meta temporarily blocked this number for a policy violation; its campaigns stay "
          "paused until someone clears the block.",
          state="blocked"),
    _rule(131031, E.AUTH, C.STOP_NUMBER,
          "Meta locked this WhatsApp account (policy or verification); its campaigns stay "
          "paused until someone clears the block.",
          state="blocked"),
    # -- the business account
    _rule(131042, E.ACCOUNT, C.PAUSE_ACCOUNT,
          "Meta refused to send because of a payment problem on the business account; every "
          "campaign of the account is paused until the payment method is fixed."),
    _rule(131064, E.ACCOUNT, C.PAUSE_ACCOUNT,
          "Meta restricted what the business account may send; every campaign of the "
          "account is paused."),
    _rule(133010, E.ACCOUNT, C.STOP_NUMBER,
          "The sending number is not registered with WhatsApp's Cloud API; register it "
          "again, then resume.",
          state="disconnected"),
    _rule(130497, E.ACCOUNT, C.FAIL,
          "The business may not message people in this person's country.",
          breaker=True),
    # -- the template
    _rule(132000, E.TEMPLATE, C.TEMPLATE_CHANGED,
          "The number of values sent no longer matches the template at Meta (it was "
          "edited); the campaign is paused and the templates are synced again."),
    _rule(132001, E.TEMPLATE, C.PAUSE_CAMPAIGN,
          "The template does not exist at Meta in this language (deleted or not approved); "
          "the campaign is paused."),
    _rule(132005, E.TEMPLATE, C.FAIL,
          "The message is too long once the values are filled in; shorten the values."),
    _rule(132007, E.TEMPLATE, C.FAIL, "The filled-in message breaks WhatsApp's content policy."),
    _rule(132012, E.TEMPLATE, C.FAIL,
          "A value has the wrong format for the template (for example text where an image "
          "is expected); check the column mapping or sync the templates.",
          breaker=True),
    _rule(132015, E.TEMPLATE, C.PAUSE_CAMPAIGN,
          "Meta paused the template for low quality; the campaign is paused."),
    _rule(132016, E.TEMPLATE, C.PAUSE_CAMPAIGN,
          "Meta disabled the template for low quality; the campaign is paused."),
    # -- the recipient or the request
    _rule(100, E.RECIPIENT, C.FAIL,
          "Meta rejected the request as invalid (a wrong or missing value)."),
    _rule(131008, E.RECIPIENT, C.FAIL, "A required value was missing from the message."),
    _rule(131009, E.RECIPIENT, C.FAIL,
          "A value in the message is not valid (for example a phone number or a link)."),
    _rule(131021, E.RECIPIENT, C.FAIL, "The message was addressed to the sending number itself."),
    _rule(131026, E.RECIPIENT, C.FAIL,
          "The message could not be delivered: the phone may not use WhatsApp, have an old "
          "app version, or not have accepted WhatsApp's terms."),
    _rule(131047, E.RECIPIENT, C.FAIL,
          "More than 24 hours passed since this person last wrote; only a template can be "
          "sent."),
    _rule(131050, E.RECIPIENT, C.SUPPRESS,
          "This person chose to stop receiving marketing messages from the business; they "
          "are suppressed."),
    _rule(131051, E.RECIPIENT, C.FAIL, "This kind of message is not supported."),
    _rule(131053, E.RECIPIENT, C.FAIL,
          "The image, video or document could not be uploaded or downloaded; check its link "
          "and format."),
    _rule(130472, E.RECIPIENT, C.FAIL,
          "Meta held this message back because the person is part of a Meta experiment."),
    _rule(135000, E.RECIPIENT, C.FAIL,
          "Meta could not send the message for an unknown reason.", breaker=True),
))
# fmt: on
del E, C
# Codes 200-299 are the Graph permission errors, all of them "stop the number".
AUTH_CODE_RANGE = range(200, 300)
# Errors without a code in the table: what their class alone implies.
_CLASS_RULES: Mapping[ErrorClass, ErrorRule] = {
    ErrorClass.THROTTLE: ErrorRule(ErrorClass.THROTTLE, Consequence.RETRY),
    ErrorClass.TRANSIENT: ErrorRule(ErrorClass.TRANSIENT, Consequence.RETRY),
    ErrorClass.AUTH: ErrorRule(ErrorClass.AUTH, Consequence.STOP_NUMBER, "disconnected"),
}
# The codes of each class, read off the table (for documentation and tests).
ERROR_CODES: Mapping[ErrorClass, frozenset[int]] = {
    error_class: frozenset(
        code for code, rule in ERROR_TABLE.items() if rule.error_class is error_class
    )
    for error_class in ErrorClass
    if error_class is not ErrorClass.UNKNOWN
}


def error_explanation(code: int | None, title: str = "") -> str:
    """One sentence a marketer understands for a Graph error code.

    Codes outside the table fall back to Meta's own ``title`` (as it came in the
    error or the status webhook), then to a sentence naming the code.
    """
    rule = ERROR_TABLE.get(code) if code is not None else None
    if rule is not None and rule.explanation:
        return rule.explanation
    if code is not None and code in AUTH_CODE_RANGE:
        return (
            "Meta refused a permission this number needs; reconnect it with the right permissions."
        )
    title = (title or "").strip()
    if title:
        return title if title.endswith(".") else f"{title}."
    if code is None:
        return "Meta reported an error without a code."
    return f"Meta reported error {code}."


def webhook_rule(code: int | None) -> ErrorRule:
    """The rule of an error code met without its HTTP answer (a failed status webhook)."""
    return rule_for(code, classify(code, None))


def consequence_of(code: int | None) -> Consequence:
    """The consequence of an error code met without its HTTP answer (a failed status webhook)."""
    return webhook_rule(code).consequence


def counts_toward_breaker(rule: ErrorRule) -> bool:
    """Whether a failure by this rule feeds the consecutive-failure breaker: codes the
    table does not know, and those it marks as possibly account-wide."""
    return rule.breaker or (
        rule.error_class is ErrorClass.UNKNOWN and rule.consequence is Consequence.FAIL
    )


def rule_for(code: int | None, error_class: ErrorClass) -> ErrorRule:
    """The table's rule for ``code`` (its class's default for codes the table lacks).

    HTTP 429 makes any code a throttle (see ``classify``), so a rule whose class
    disagrees with ``error_class`` yields to the class.
    """
    rule = ERROR_TABLE.get(code) if code is not None else None
    if rule is not None and rule.error_class is error_class:
        return rule
    return _CLASS_RULES.get(error_class, ErrorRule(error_class, Consequence.FAIL))


def classify(code: int | None, http_status: int | None) -> ErrorClass:
    """Return the class of a Graph error from its `error.code` and HTTP status.

    HTTP 429 is a throttle whatever the body says (Meta does not document whether
    130429 comes as 429 or 400). Otherwise the code decides; without a known code,
    HTTP 5xx is transient, 401 is auth, and no HTTP status at all (the request never
    got an answer) is transient.
    """
    if http_status == 429:
        return ErrorClass.THROTTLE
    if code is not None:
        known = ERROR_TABLE.get(code)
        if known is not None:
            return known.error_class
        if code in AUTH_CODE_RANGE:
            return ErrorClass.AUTH
    if http_status is None:
        return ErrorClass.TRANSIENT if code is None else ErrorClass.UNKNOWN
    if http_status >= 500:
        return ErrorClass.TRANSIENT
    if http_status == 401 and code is None:
        return ErrorClass.AUTH
    return ErrorClass.UNKNOWN


class GraphError(Exception):
    """A failed Graph API call: an error answer, or no usable answer at all.

    `outcome_unknown` is True only when Meta may have acted on the request (a POST
    whose answer was lost: read timeout, connection dropped mid-response); such a
    request must never be retried automatically.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        title: str | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        error_class: ErrorClass | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.title = title
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.error_class = error_class if error_class is not None else classify(code, http_status)
        self.outcome_unknown = outcome_unknown

    @property
    def rule(self) -> ErrorRule:
        """What the table says this error does (the consequence, a number state)."""
        return rule_for(self.code, self.error_class)

    def __str__(self) -> str:
        parts = [f"code={self.code}"]
        if self.subcode is not None:
            parts.append(f"subcode={self.subcode}")
        parts.append(f"http={self.http_status}")
        parts.append(f"class={self.error_class}")
        if self.outcome_unknown:
            parts.append("outcome_unknown")
        text = f"Graph API error ({', '.join(parts)}): {self.message}"
        if self.details:
            text += f" [{self.details}]"
        return text

    def __repr__(self) -> str:
        return (
            f"GraphError(code={self.code!r}, subcode={self.subcode!r}, "
            f"http_status={self.http_status!r}, error_class={self.error_class.value!r}, "
            f"outcome_unknown={self.outcome_unknown!r}, message={self.message!r})"
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    """Meta's answer to an accepted send: `message_status` is None when Meta omits it."""

    wamid: str
    wa_id: str
    message_status: str | None


def _setting(name: str, default: Any) -> Any:
    # The client also serves scripts and the benchmark, which may run without Django.
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        try:
            return getattr(settings, name, default)
        except ImproperlyConfigured:
            return default
    except ImportError:  # pragma: no cover - Django is a hard dependency of the product
        return default


_session_lock = threading.Lock()
_session: requests.Session | None = None
_session_pid: int | None = None


def shared_session() -> requests.Session:
    """Return this process's pooled Session (a forked Celery worker gets its own)."""
    global _session, _session_pid
    pid = os.getpid()
    if _session is not None and _session_pid == pid:
        return _session
    with _session_lock:
        if _session is None or _session_pid != pid:
            pool_size = int(_setting("GRAPH_POOL_SIZE", 32))
            session = requests.Session()
            # No urllib3 retries: a retried POST could send a message twice; the engine
            # decides about retries from the GraphError it gets.
            adapter = HTTPAdapter(
                pool_connections=4,
                pool_maxsize=pool_size,
                max_retries=Retry(total=0, read=False, redirect=False, status=False),
            )
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            if not getproxies():
                # With no proxy configured, skip requests' per-call scan of the
                # environment (proxies, netrc): measured at a sixth of a send's CPU.
                session.trust_env = False
            _session, _session_pid = session, pid
    return _session


_direct_pool: urllib3.PoolManager | None = None
_direct_pool_pid: int | None = None


def direct_pool() -> urllib3.PoolManager | None:
    """This process's urllib3 pool for calls made without an injected session.

    requests costs about 600 us of CPU per call here against about 280 us for
    urllib3 alone (measured against the simulator): at 1000 msg/s that is a
    third of this 2-core machine. requests stays for the cases it handles and
    urllib3 does not: a proxy from the environment (then this returns None).
    Certificates are checked against certifi's bundle, as requests does.
    """
    global _direct_pool, _direct_pool_pid
    pid = os.getpid()
    if _direct_pool is not None and _direct_pool_pid == pid:
        return _direct_pool
    with _session_lock:
        if _direct_pool is None or _direct_pool_pid != pid:
            if getproxies():
                return None
            _direct_pool = urllib3.PoolManager(
                num_pools=4,
                maxsize=int(_setting("GRAPH_POOL_SIZE", 32)),
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
            )
            _direct_pool_pid = pid
    return _direct_pool


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (no connection made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        inner = exc.args[0]
        if isinstance(inner, MaxRetryError):
            # NewConnectionError covers refused connections and DNS failures.
            return isinstance(inner.reason, NewConnectionError | ConnectTimeoutError)
    return False


_TOKEN_QUERY = re.compile(r"(access_token=)[^&\s'\"]+")
# An Authorization header quoted in an error text (requests' InvalidHeader does that).
_BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+", re.IGNORECASE)


def scrub_secrets(text: str, *secrets: str) -> str:
    """``text`` with each of ``secrets`` (as is, or escaped as a repr shows it), any
    ``access_token=`` value and any ``Bearer`` credential replaced by ``***``."""
    for secret in secrets:
        for form in {secret, secret.encode("unicode_escape").decode("ascii")}:
            if form:
                text = text.replace(form, "***")
    return _BEARER.sub(r"\1***", _TOKEN_QUERY.sub(r"\1***", text))


class InvalidTokenError(ValueError):
    """An access token that cannot be sent in an HTTP header (blank, a line break, a space,
    a character outside printable ASCII, too long). The message never contains the token."""


class UnsendableRequestError(ValueError):
    """A request that could not even be built (a malformed URL or header): a bug in the
    configuration or the caller, not a Graph failure. The message is scrubbed of secrets
    and the original exception, which may quote the Authorization header, is dropped."""


class GraphClient:
    """Calls the Graph API with one access token. Every failure raises GraphError."""

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str | None = None,
        version: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        token = (access_token or "").strip()
        problem = bearer_token_problem(token)
        if problem is not None:
            # Checked here, so no caller can put a broken token into a header, where
            # http.client and requests would quote it in their exceptions. The locals
            # go first: Django's DEBUG error page shows every frame's variables.
            del access_token, token
            raise InvalidTokenError(problem)
        self._token = token
        self._auth_header = f"Bearer {token}"
        base = base_url if base_url is not None else _setting("WHATSAPP_GRAPH_URL", None)
        self.base_url = (base or DEFAULT_GRAPH_URL).rstrip("/")
        self.version = (
            version or _setting("WHATSAPP_GRAPH_VERSION", None) or DEFAULT_GRAPH_VERSION
        ).strip("/")
        self._session = session
        self.timeout = timeout or (
            float(_setting("GRAPH_CONNECT_TIMEOUT", 5.0)),
            float(_setting("GRAPH_READ_TIMEOUT", 20.0)),
        )
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r}, version={self.version!r}, token=***)"

    # -- sends ---------------------------------------------------------------------------

    def send_template(
        self,
        *,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        components: Sequence[Mapping[str, Any]] = (),
        callback_data: str | None = None,
    ) -> SendResult:
        """Send a template message; `components` are Graph's header/body/button objects."""
        template: dict[str, Any] = {
            "name": name,
            "language": {"code": language, "policy": "deterministic"},
        }
        if components:
            template["components"] = [dict(c) for c in components]
        body = _message(to, "template", template)
        if callback_data is not None:
            body["biz_opaque_callback_data"] = _check_callback_data(callback_data)
        return self._send(phone_number_id, body)

    def send_text(
        self,
        *,
        phone_number_id: str,
        to: str,
        body: str,
        preview_url: bool = False,
        reply_to: str | None = None,
    ) -> SendResult:
        """Send a free-form text (valid only inside the 24 h customer-service window)."""
        payload = _message(to, "text", {"body": body, "preview_url": preview_url})
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return self._send(phone_number_id, payload)

    def mark_read(self, *, phone_number_id: str, message_id: str, typing: bool = False) -> None:
        """Mark an inbound message as read; with ``typing`` also show the user a typing
        indicator (Meta clears it at our next message or after 25 s)."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing:
            body["typing_indicator"] = {"type": "text"}
        self.request("POST", f"{phone_number_id}/messages", json=body)

    def send_media(
        self,
        *,
        phone_number_id: str,
        to: str,
        kind: str,
        media_id: str,
        caption: str = "",
        filename: str = "",
    ) -> SendResult:
        """Send an uploaded image, video, audio or document (inside the 24 h window)."""
        media: dict[str, Any] = {"id": media_id}
        if caption and kind in ("image", "video", "document"):
            media["caption"] = caption
        if filename and kind == "document":
            media["filename"] = filename
        return self._send(phone_number_id, _message(to, kind, media))

    def upload_media(
        self, *, phone_number_id: str, filename: str, content: bytes, mime_type: str
    ) -> str:
        """Upload a file to Meta's media endpoint; returns its media id."""
        path = f"{phone_number_id}/media"
        data = self._call(
            "POST",
            self._url(path),
            params=None,
            json=None,
            log_path=path,
            form={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, content, mime_type)},
            # An upload creates nothing a user sees: a lost answer is simply a failure.
            may_act=False,
        )
        if not data.get("id"):
            raise GraphError(
                "upload answer has no media id", http_status=200, error_class=ErrorClass.UNKNOWN
            )
        return str(data["id"])

    def _send(self, phone_number_id: str, body: dict[str, Any]) -> SendResult:
        data = self.request("POST", f"{phone_number_id}/messages", json=body)
        try:
            message = data["messages"][0]
            contacts = data.get("contacts") or [{}]
            return SendResult(
                wamid=str(message["id"]),
                wa_id=str(contacts[0].get("wa_id") or body["to"]),
                message_status=message.get("message_status"),
            )
        except (KeyError, IndexError, TypeError, AttributeError):
            # A 2xx without a message id: Meta may well have accepted it.
            raise GraphError(
                "send answer has no message id",
                http_status=200,
                error_class=ErrorClass.UNKNOWN,
                outcome_unknown=True,
            ) from None

    # -- reads ---------------------------------------------------------------------------

    def get_phone_number(self, phone_number_id: str) -> dict[str, Any]:
        """Return the phone number's fields (graph-api.md, "Phone number info")."""
        return self.request("GET", phone_number_id, params={"fields": PHONE_NUMBER_FIELDS})

    def list_phone_numbers(self, waba_id: str) -> Iterator[dict[str, Any]]:
        """Yield every phone number of the WABA, following paging."""
        return self._paginate(
            f"{waba_id}/phone_numbers", {"fields": PHONE_NUMBER_FIELDS, "limit": 100}
        )

    def list_templates(
        self, waba_id: str, *, limit: int = 100, **filters: str
    ) -> Iterator[dict[str, Any]]:
        """Yield the WABA's templates, following paging; filters: name, status, category,
        language."""
        params: dict[str, Any] = {"fields": TEMPLATE_FIELDS, "limit": limit}
        params.update({k: v for k, v in filters.items() if v is not None})
        return self._paginate(f"{waba_id}/message_templates", params)

    def _paginate(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        url = self._url(path)
        page_params: dict[str, Any] | None = dict(params)
        seen_after: set[str] = set()
        for _ in range(_MAX_PAGES):
            data = self._call("GET", url, params=page_params, json=None, log_path=path)
            items = data.get("data") or []
            yield from items
            paging = data.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            next_url = paging.get("next")
            if next_url and self._same_origin(next_url):
                # Meta's next links may carry access_token: drop it, the header has it.
                url, page_params = _strip_token(next_url), None
            elif after and (next_url or len(items) >= int(params.get("limit", 25))):
                # No usable next link: continue from the cursor on our own origin.
                url, page_params = self._url(path), {**params, "after": after}
            else:
                return
            if after:
                if after in seen_after:
                    return
                seen_after.add(after)
        logger.warning("graph paging stopped after %d pages: %s", _MAX_PAGES, path)

    # -- transport -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        """Call `/{version}/{path}` and return the JSON body; raise GraphError otherwise."""
        return self._call(method.upper(), self._url(path), params=params, json=json, log_path=path)

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def _same_origin(self, url: str) -> bool:
        # Never send the bearer token to a host other than the configured one.
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc) == self._origin

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, self._auth_header, self._token)

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        log_path: str,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, Any] | None = None,
        may_act: bool | None = None,
    ) -> dict[str, Any]:
        """One Graph call; ``form``/``files`` make it a multipart POST (through requests)."""
        if may_act is None:
            # Only a POST changes anything at Meta; a lost GET answer is simply a failure.
            may_act = method not in ("GET", "HEAD")
        started = time.monotonic()
        pool = None if self._session is not None or params or files else direct_pool()
        try:
            if pool is not None:
                status, body, reason = self._via_urllib3(pool, method, url, json)
            else:
                status, body, reason = self._via_requests(
                    method, url, params, json, form=form, files=files
                )
        except _NetworkFailure as failure:
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.warning(
                "graph %s %s failed after %.0f ms: %s", method, log_path, elapsed_ms, failure.reason
            )
            raise GraphError(
                self._scrub(f"network error: {failure.reason}"),
                error_class=ErrorClass.TRANSIENT,
                outcome_unknown=may_act and not failure.never_sent,
            ) from None

        elapsed_ms = (time.monotonic() - started) * 1000
        if 200 <= status < 300:
            data = _json_or_none(body)
            if not isinstance(data, dict):
                logger.warning(
                    "graph %s %s -> %d non-JSON body (%.0f ms)",
                    method,
                    log_path,
                    status,
                    elapsed_ms,
                )
                raise GraphError(
                    "success answer is not a JSON object",
                    http_status=status,
                    error_class=ErrorClass.UNKNOWN,
                    outcome_unknown=may_act,
                )
            logger.debug("graph %s %s -> %d (%.0f ms)", method, log_path, status, elapsed_ms)
            return data

        error = self._error_from_body(status, body, reason)
        logger.info(
            "graph %s %s -> %d code=%s class=%s (%.0f ms)",
            method,
            log_path,
            status,
            error.code,
            error.error_class,
            elapsed_ms,
        )
        raise error

    def _headers(self, *, json_body: bool = False) -> dict[str, str]:
        # Built where it is passed, never kept in a local of ours: Django's DEBUG error
        # page shows every frame's variables.
        headers = {"Authorization": self._auth_header, "Accept": "application/json"}
        if json_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _via_requests(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        *,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> tuple[int, bytes, str]:
        session = self._session or shared_session()
        try:
            response = session.request(
                method,
                url,
                params=params,
                json=json,
                data=form,
                files=files,
                headers=self._headers(),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except ValueError as exc:
            # InvalidURL, MissingSchema, InvalidSchema, InvalidHeader and http.client's
            # UnicodeEncodeError: configuration bugs, not Graph failures. Their text (and
            # a UnicodeEncodeError's .object) can hold the whole Authorization header.
            raise UnsendableRequestError(self._scrub(f"{type(exc).__name__}: {exc}")) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            inner = exc.args[0] if exc.args else None
            if isinstance(inner, MaxRetryError) and inner.reason is not None:
                reason = f"{reason}: {type(inner.reason).__name__}"
            elif inner is not None and not isinstance(inner, str):
                reason = f"{reason}: {type(inner).__name__}"
            raise _NetworkFailure(reason, never_sent=_never_sent(exc)) from None
        return response.status_code, response.content, response.reason or ""

    def _via_urllib3(
        self, pool: urllib3.PoolManager, method: str, url: str, json_body: Any
    ) -> tuple[int, bytes, str]:
        body = None if json_body is None else json.dumps(json_body).encode()
        try:
            response = pool.request(
                method,
                url,
                body=body,
                headers=self._headers(json_body=body is not None),
                timeout=urllib3.Timeout(connect=self.timeout[0], read=self.timeout[1]),
                retries=False,
                redirect=False,
            )
        except ValueError as exc:
            # LocationParseError and http.client's header checks: configuration bugs, not
            # Graph failures, whose text can quote the Authorization header.
            raise UnsendableRequestError(self._scrub(f"{type(exc).__name__}: {exc}")) from None
        except urllib3.exceptions.HTTPError as exc:
            never_sent = isinstance(exc, NewConnectionError | ConnectTimeoutError)
            raise _NetworkFailure(type(exc).__name__, never_sent=never_sent) from None
        return response.status, response.data, response.reason or ""

    def _error_from_body(self, status: int, raw: bytes, reason: str) -> GraphError:
        body = _json_or_none(raw)
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return GraphError(
                self._scrub(f"HTTP {status}: {reason or 'error'}"), http_status=status
            )
        details = None
        error_data = err.get("error_data")
        if isinstance(error_data, str):
            # Meta sometimes sends error_data as a JSON-encoded string.
            try:
                error_data = json.loads(error_data)
            except ValueError:
                details = error_data
        if isinstance(error_data, dict):
            details = error_data.get("details")
        code = _as_int(err.get("code"))
        return GraphError(
            self._scrub(str(err.get("message") or f"HTTP {status}")),
            code=code,
            subcode=_as_int(err.get("error_subcode")),
            title=err.get("error_user_title") or err.get("type"),
            details=self._scrub(str(details)) if details is not None else None,
            fbtrace_id=err.get("fbtrace_id"),
            http_status=status,
        )


def _message(to: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """The envelope of every send to one person: ``content`` goes under its ``kind``."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: content,
    }


class _NetworkFailure(Exception):
    """No usable answer; ``never_sent`` when the request certainly did not leave."""

    def __init__(self, reason: str, *, never_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.never_sent = never_sent


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _check_callback_data(value: str) -> str:
    if len(value) > MAX_CALLBACK_DATA:
        raise ValueError(f"callback_data longer than {MAX_CALLBACK_DATA} characters")
    return value


def _strip_token(url: str) -> str:
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))
