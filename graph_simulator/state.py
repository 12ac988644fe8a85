"""In-memory state of the Graph API simulator: accounts, templates, faults, accepted messages."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import random
import re
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

# Meta's own error texts for the codes the simulator produces: (HTTP status, message).
ERROR_TEXTS: dict[int, tuple[int, str]] = {
    0: (400, "AuthException"),
    4: (400, "(#4) Application request limit reached"),
    10: (403, "(#10) Application does not have permission for this action"),
    100: (400, "(#100) Invalid parameter"),
    190: (401, "Invalid OAuth access token - Cannot parse access token"),
    200: (403, "(#200) Permissions error"),
    368: (400, "(#368) Temporarily blocked for policies violations"),
    80007: (400, "(#80007) Rate limit issues"),
    130429: (400, "(#130429) Rate limit hit"),
    131000: (500, "(#131000) Something went wrong"),
    131005: (403, "(#131005) Access denied"),
    131008: (400, "(#131008) Required parameter is missing"),
    131009: (400, "(#131009) Parameter value is not valid"),
    131016: (503, "(#131016) Service unavailable"),
    131021: (400, "(#131021) Recipient cannot be sender"),
    131026: (400, "(#131026) Message undeliverable"),
    131031: (400, "(#131031) Business Account locked"),
    131047: (400, "(#131047) Re-engagement message"),
    131048: (400, "(#131048) Spam rate limit hit"),
    131049: (
        400,
        "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
    ),
    131050: (400, "(#131050) User has stopped receiving marketing messages"),
    131056: (400, "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
    131057: (503, "(#131057) Account in maintenance mode"),
    132000: (400, "(#132000) Number of parameters does not match the expected number of params"),
    132001: (404, "(#132001) Template name does not exist in the translation"),
    132005: (400, "(#132005) Translated text too long"),
    132007: (400, "(#132007) Template Format Character Policy Violated"),
    132012: (400, "(#132012) Parameter format does not match format in the created template"),
    132015: (400, "(#132015) Template is Paused"),
    132016: (400, "(#132016) Template is disabled"),
    133010: (400, "(#133010) Phone number Not Registered"),
}

# Meta refuses a template body longer than this once the parameters are filled in.
MAX_BODY_TEXT = 1024
# Free-form messages need a user message within the last 24 hours.
SERVICE_WINDOW_SECONDS = 24 * 3600

_VARIABLE = re.compile(r"{{\s*([A-Za-z0-9_]+)\s*}}")
_PHONE = re.compile(r"^\+?[0-9]{8,15}$")


class SimError(Exception):
    """A Graph error answer the simulator sends back."""

    def __init__(
        self,
        code: int,
        details: str | None = None,
        *,
        http_status: int | None = None,
        subcode: int | None = None,
        message: str | None = None,
        title: str | None = None,
    ) -> None:
        default_status, default_message = ERROR_TEXTS.get(code, (400, f"(#{code}) Error"))
        super().__init__(message or default_message)
        self.code = code
        self.details = details
        self.http_status = http_status or default_status
        self.subcode = subcode
        self.message = message or default_message
        self.title = title

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.title:
            error["error_user_title"] = self.title
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.http_status >= 500:
            error["is_transient"] = True
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}


class Pattern:
    """Recipient rules: "prefix*", "*suffix" or an exact number ("*" alone matches all)."""

    __slots__ = ("exact", "prefixes", "rules", "suffixes")

    def __init__(self, rules: Iterable[str]) -> None:
        self.rules = [str(r) for r in rules]
        exact, prefixes, suffixes = set(), [], []
        for rule in self.rules:
            if rule.endswith("*"):
                prefixes.append(rule[:-1].lstrip("+"))
            elif rule.startswith("*"):
                suffixes.append(rule[1:])
            else:
                exact.add(rule.lstrip("+"))
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)
        self.suffixes = tuple(suffixes)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match(self, number: str) -> bool:
        return (
            number in self.exact
            or (bool(self.prefixes) and number.startswith(self.prefixes))
            or (bool(self.suffixes) and number.endswith(self.suffixes))
        )


@dataclasses.dataclass
class Faults:
    """Limits, fault injection and webhook behaviour; all of it changeable at run time."""

    # Per-number messages/s: None uses each number's own `mps`, 0 disables the check.
    mps: int | None = None
    throttle_status: int = 400
    # Pair rate: at most `pair_burst` accepted messages per recipient and number within
    # this many seconds; 0 disables it so tests that resend to one user stay predictable.
    pair_rate_seconds: float = 0.0
    pair_burst: int = 1
    latency_ms: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0])
    transient_rate: float = 0.0
    transient_status: int = 500
    timeout_rate: float = 0.0
    timeout_mode: str = "hang"  # "hang": answer after timeout_hold_s; "drop": close it
    timeout_hold_s: float = 30.0
    undeliverable: list[str] = dataclasses.field(default_factory=list)
    fail_after_accept: list[str] = dataclasses.field(default_factory=list)
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    message_status: str | None = "accepted"
    enforce_window: bool = True
    callback_url: str | None = None
    app_secret: str = ""
    webhook_delay_ms: float = 0.0
    webhook_batch: int = 1
    webhook_duplicates: float = 0.0
    webhook_shuffle: bool = False
    webhooks_paused: bool = False
    webhook_concurrency: int = 4
    webhook_retries: int = 3
    read_rate: float = 1.0
    reply_rate: float = 0.0
    reply_text: str = "Yes, tell me more"

    _RATES = (
        "transient_rate",
        "timeout_rate",
        "webhook_duplicates",
        "read_rate",
        "reply_rate",
    )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; raise ValueError (and change nothing) if any value is bad."""
        names = {f.name: f for f in dataclasses.fields(self)}
        staged = copy.deepcopy(self)
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown setting {key!r}")
            setattr(staged, key, _coerce(key, value))
        staged.validate()
        for key in changes:
            setattr(self, key, getattr(staged, key))

    def validate(self) -> None:
        for name in self._RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.throttle_status not in (400, 429):
            raise ValueError("throttle_status must be 400 or 429")
        if not 500 <= self.transient_status <= 599:
            raise ValueError("transient_status must be a 5xx status")
        if self.timeout_mode not in ("hang", "drop"):
            raise ValueError("timeout_mode must be 'hang' or 'drop'")
        lo, hi = self.latency_ms
        if lo < 0 or hi < lo:
            raise ValueError("latency_ms must be A or A-B with 0 <= A <= B")
        if self.mps is not None and self.mps < 0:
            raise ValueError("mps must be >= 0")
        if self.webhook_batch < 1 or self.webhook_concurrency < 1 or self.pair_burst < 1:
            raise ValueError("webhook_batch, webhook_concurrency and pair_burst must be >= 1")
        for rule in self.errors:
            if not isinstance(rule, dict) or not isinstance(rule.get("code"), int):
                raise ValueError("each errors rule needs an integer 'code'")
            unknown = set(rule) - {
                "code",
                "http_status",
                "subcode",
                "message",
                "details",
                "title",
                "count",
                "rate",
                "to",
                "phone_number_id",
            }
            if unknown:
                raise ValueError(f"unknown errors rule keys: {sorted(unknown)}")


_INT_FIELDS = {"mps", "throttle_status", "transient_status", "pair_burst", "webhook_batch"}
_INT_FIELDS |= {"webhook_concurrency", "webhook_retries"}
_BOOL_FIELDS = {"enforce_window", "webhook_shuffle", "webhooks_paused"}
_LIST_FIELDS = {"undeliverable", "fail_after_accept"}


def parse_latency(value: Any) -> list[float]:
    """Accept 50, "50", "20-80" or [20, 80] (milliseconds)."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError("latency_ms needs [A, B]")
        return [float(value[0]), float(value[1])]
    if isinstance(value, str) and "-" in value.strip()[1:]:
        lo, hi = value.split("-", 1)
        return [float(lo), float(hi)]
    return [float(value), float(value)]


def _coerce(key: str, value: Any) -> Any:
    try:
        if key == "latency_ms":
            return parse_latency(value)
        if key in _INT_FIELDS:
            if value is None and key == "mps":
                return None
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if key in _LIST_FIELDS:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            return [str(v) for v in value]
        if key == "errors":
            return [dict(rule) for rule in value]
        if key in ("callback_url", "message_status"):
            return None if value in (None, "") else str(value)
        if key in ("app_secret", "reply_text", "timeout_mode"):
            return str(value)
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"bad value for {key}: {value!r}") from None


class Template:
    """A template and what a send of it must carry, derived once from its components."""

    __slots__ = (
        "body_len",
        "body_names",
        "body_positional",
        "buttons",
        "category",
        "data",
        "header",
        "header_text_params",
        "key",
        "named",
        "status",
    )

    def __init__(self, waba_id: str, data: dict[str, Any]) -> None:
        self.data = data
        self.key = (waba_id, data["name"], data["language"])
        self.status = data.get("status", "APPROVED")
        self.category = data.get("category", "MARKETING")
        self.named = data.get("parameter_format", "POSITIONAL") == "NAMED"
        self.body_positional = 0
        self.body_names: frozenset[str] = frozenset()
        self.body_len = 0
        self.header: str | None = None
        self.header_text_params = 0
        # index -> (sub_type, needs a parameter)
        self.buttons: dict[int, tuple[str, bool]] = {}
        for comp in data.get("components") or []:
            ctype = str(comp.get("type", "")).upper()
            if ctype == "BODY":
                text = comp.get("text", "")
                variables = _VARIABLE.findall(text)
                self.body_len = len(_VARIABLE.sub("", text))
                if self.named:
                    self.body_names = frozenset(variables)
                else:
                    self.body_positional = len(set(variables))
            elif ctype == "HEADER":
                fmt = str(comp.get("format", "TEXT")).upper()
                if fmt == "TEXT":
                    count = len(_VARIABLE.findall(comp.get("text", "")))
                    if count:
                        self.header, self.header_text_params = "text", count
                else:
                    self.header = fmt.lower()
            elif ctype == "BUTTONS":
                for index, button in enumerate(comp.get("buttons") or []):
                    btype = str(button.get("type", "")).upper()
                    if btype == "URL":
                        self.buttons[index] = ("url", "{{" in str(button.get("url", "")))
                    elif btype == "QUICK_REPLY":
                        self.buttons[index] = ("quick_reply", False)
                    else:
                        self.buttons[index] = (btype.lower(), False)

    def public(self, fields: set[str] | None = None) -> dict[str, Any]:
        data = {**self.data, "status": self.status}
        if fields:
            data = {k: v for k, v in data.items() if k in fields or k == "id"}
        return data


class PhoneNumber:
    __slots__ = ("data", "display", "id", "mps", "waba_id", "window")

    def __init__(self, waba_id: str, data: dict[str, Any]) -> None:
        self.id = str(data["id"])
        self.waba_id = waba_id
        self.display = str(data.get("display_phone_number", self.id))
        self.mps = int(data.get("mps", 80))
        self.data = {k: v for k, v in data.items() if k != "mps"}
        self.data["id"] = self.id
        # Accepted-send times within the last second: the throughput window.
        self.window: deque[float] = deque()

    def public(self, fields: set[str] | None = None) -> dict[str, Any]:
        if not fields:
            return dict(self.data)
        return {k: v for k, v in self.data.items() if k in fields or k == "id"}


class Token:
    __slots__ = ("expired", "wabas")

    def __init__(self, wabas: Iterable[str] | None = None, expired: bool = False) -> None:
        self.wabas = frozenset(wabas) if wabas else None
        self.expired = expired


class MessageRecord:
    """One accepted message. The raw body is kept and decoded only when inspected."""

    __slots__ = (
        "accepted_at",
        "accepted_wall",
        "callback_data",
        "category",
        "fail_code",
        "phone_number_id",
        "raw",
        "seq",
        "template_language",
        "template_name",
        "timed_out",
        "to",
        "type",
        "wa_id",
        "waba_id",
        "wamid",
    )

    def as_dict(self) -> dict[str, Any]:
        payload = json.loads(self.raw)
        template = payload.get("template") or {}
        return {
            "seq": self.seq,
            "wamid": self.wamid,
            "phone_number_id": self.phone_number_id,
            "to": self.to,
            "wa_id": self.wa_id,
            "type": self.type,
            "template": (
                {"name": self.template_name, "language": self.template_language}
                if self.template_name is not None
                else None
            ),
            "components": template.get("components"),
            "text": (payload.get("text") or {}).get("body"),
            "callback_data": self.callback_data,
            "accepted_at": self.accepted_at,
            "accepted_at_wall": self.accepted_wall,
            "timed_out": self.timed_out,
            "fail_code": self.fail_code,
            "payload": payload,
        }


class SimState:
    """Everything the simulator knows; the server mutates it from one event loop only."""

    def __init__(
        self,
        seed: dict[str, Any],
        faults: Faults,
        *,
        keep_messages: int = 1_000_000,
        random_seed: int | None = None,
    ) -> None:
        self._seed = copy.deepcopy(seed)
        self._initial_faults = copy.deepcopy(faults)
        self.keep_messages = keep_messages
        self.rng = random.Random(random_seed)  # noqa: S311 - simulation, not security
        self._nonce = f"{self.rng.getrandbits(32):08X}"
        self.seq = 0
        self.started_at = time.monotonic()
        self.reset()

    # -- setup ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the startup state: seed data, startup faults, nothing accepted."""
        self.faults = copy.deepcopy(self._initial_faults)
        self.wabas: dict[str, dict[str, Any]] = {}
        self.numbers: dict[str, PhoneNumber] = {}
        self.templates: dict[tuple[str, str, str], Template] = {}
        self.templates_by_id: dict[str, Template] = {}
        self.tokens: dict[str, Token] = {}
        self._template_ids = 900000000000000
        for waba in self._seed["wabas"]:
            waba_id = str(waba["id"])
            self.wabas[waba_id] = {
                k: v for k, v in waba.items() if k not in ("phone_numbers", "templates")
            }
            self.wabas[waba_id]["id"] = waba_id
            for number in waba.get("phone_numbers") or []:
                phone = PhoneNumber(waba_id, number)
                self.numbers[phone.id] = phone
            for template in waba.get("templates") or []:
                self.upsert_template(waba_id, copy.deepcopy(template))
        for token in self._seed.get("tokens") or []:
            self.tokens[token["token"]] = Token(token.get("wabas"), token.get("expired", False))
        self.compile_faults()
        self.messages: deque[MessageRecord] = deque(maxlen=self.keep_messages or None)
        self.total = 0
        self.by_recipient: Counter[str] = Counter()
        self.by_number: Counter[str] = Counter()
        self.pair_times: dict[tuple[str, str], deque[float]] = {}
        self.service_windows: dict[tuple[str, str], float] = {}
        self.read_marks: list[dict[str, Any]] = []
        self.rejected: Counter[int] = Counter()

    def compile_faults(self) -> None:
        self.undeliverable = Pattern(self.faults.undeliverable)
        self.fail_after_accept = Pattern(self.faults.fail_after_accept)
        self.error_rules = [
            (rule, Pattern([rule["to"]]) if rule.get("to") else None) for rule in self.faults.errors
        ]

    def upsert_template(self, waba_id: str, data: dict[str, Any]) -> tuple[Template, str | None]:
        """Add or replace a template; return it and its previous status (None if new)."""
        if waba_id not in self.wabas:
            raise ValueError(f"unknown WABA {waba_id}")
        for key in ("name", "language"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"a template needs a {key!r}")
        old = self.templates.get((waba_id, data["name"], data["language"]))
        if old is not None:
            merged = {**old.data, **data, "id": old.data["id"]}
        else:
            merged = dict(data)
            if not merged.get("id"):
                self._template_ids += 1
                merged["id"] = str(self._template_ids)
        merged.setdefault("status", "APPROVED")
        merged.setdefault("category", "MARKETING")
        merged.setdefault("parameter_format", "POSITIONAL")
        merged.setdefault("components", [])
        template = Template(waba_id, merged)
        self.templates[template.key] = template
        self.templates_by_id[str(merged["id"])] = template
        return template, (old.status if old is not None else None)

    # -- helpers used by the server ------------------------------------------------------

    def fbtrace_id(self) -> str:
        return f"A{self.rng.getrandbits(64):016x}"

    def check_token(self, authorization: str | None, query_token: str | None) -> Token:
        token = None
        if authorization and authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
        elif query_token:
            token = query_token
        if not token:
            raise SimError(
                190,
                subcode=None,
                message="An active access token must be used to "
                "query information about the current user.",
            )
        info = self.tokens.get(token)
        if info is None:
            raise SimError(190)
        if info.expired:
            raise SimError(
                190,
                subcode=463,
                message="Error validating access token: Session has expired.",
            )
        return info

    def unknown_object(self, object_id: str) -> SimError:
        return SimError(
            100,
            subcode=33,
            message=(
                f"Unsupported post request. Object with ID '{object_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation."
            ),
        )

    def number_for(self, token: Token, phone_number_id: str) -> PhoneNumber:
        number = self.numbers.get(phone_number_id)
        if number is None or (token.wabas is not None and number.waba_id not in token.wabas):
            raise self.unknown_object(phone_number_id)
        return number

    def forced_error(self, phone_number_id: str, to: str | None) -> SimError | None:
        """The first matching injected error rule, if any (consumes one of its `count`)."""
        for rule, pattern in self.error_rules:
            if rule.get("phone_number_id") not in (None, phone_number_id):
                continue
            if pattern is not None and (to is None or not pattern.match(to.lstrip("+"))):
                continue
            count = rule.get("count")
            if count is not None and count <= 0:
                continue
            rate = rule.get("rate")
            if rate is not None and self.rng.random() >= rate:
                continue
            if count is not None:
                rule["count"] = count - 1
            return SimError(
                rule["code"],
                rule.get("details"),
                http_status=rule.get("http_status"),
                subcode=rule.get("subcode"),
                message=rule.get("message"),
                title=rule.get("title"),
            )
        return None

    def check_throughput(self, number: PhoneNumber, now: float) -> None:
        limit = self.faults.mps if self.faults.mps is not None else number.mps
        if not limit:
            return
        window = number.window
        cutoff = now - 1.0
        while window and window[0] <= cutoff:
            window.popleft()
        if len(window) >= limit:
            raise SimError(
                130429,
                "Cloud API message throughput has been reached.",
                http_status=self.faults.throttle_status,
            )

    def check_pair_rate(self, number: PhoneNumber, wa_id: str, now: float) -> None:
        seconds = self.faults.pair_rate_seconds
        if not seconds:
            return
        times = self.pair_times.get((number.id, wa_id))
        if times is None:
            return
        cutoff = now - seconds
        while times and times[0] <= cutoff:
            times.popleft()
        if len(times) >= self.faults.pair_burst:
            raise SimError(
                131056,
                "Message failed to send because there were too many messages sent from this "
                "phone number to the same phone number in a short period of time.",
            )

    def validate_send(self, number: PhoneNumber, body: Any) -> tuple[str, Template | None]:
        """Check a send body; return the recipient's wa_id and the template (if any)."""
        if not isinstance(body, dict):
            raise SimError(100, "Request body must be a JSON object")
        if body.get("messaging_product") != "whatsapp":
            raise SimError(100, "The parameter messaging_product is required.")
        to = body.get("to")
        if not isinstance(to, str) or not _PHONE.match(to.replace(" ", "").replace("-", "")):
            raise SimError(100, "Param to must be a valid phone number")
        wa_id = to.replace(" ", "").replace("-", "").lstrip("+")
        if wa_id == re.sub(r"\D", "", number.display):
            raise SimError(131021, "Recipient cannot be the sender")
        mtype = body.get("type", "text")
        template = None
        if mtype == "template":
            template = self.validate_template(number, body.get("template"))
        elif mtype == "text":
            text = body.get("text")
            if not isinstance(text, dict) or not isinstance(text.get("body"), str):
                raise SimError(131008, "text.body is required")
            if not text["body"] or len(text["body"]) > 4096:
                raise SimError(131009, "text.body must be 1 to 4096 characters")
        elif not isinstance(body.get(mtype), dict):
            raise SimError(131008, f"Parameter '{mtype}' is required")
        if self.undeliverable and self.undeliverable.match(wa_id):
            raise SimError(131026, "Message Undeliverable.")
        return wa_id, template

    def validate_template(self, number: PhoneNumber, spec: Any) -> Template:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise SimError(131008, "template.name is required")
        language = spec.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        if not isinstance(code, str):
            raise SimError(131008, "template.language.code is required")
        name = spec["name"]
        template = self.templates.get((number.waba_id, name, code))
        missing = f"template name ({name}) does not exist in {code}"
        if template is None:
            raise SimError(132001, missing)
        if template.status != "APPROVED":
            if template.status == "PAUSED":
                raise SimError(132015, f"Template {name} is paused due to low quality")
            if template.status == "DISABLED":
                raise SimError(132016, f"Template {name} is disabled due to low quality")
            raise SimError(132001, missing)
        components = spec.get("components") or []
        if not isinstance(components, list):
            raise SimError(100, "template.components must be a list")
        body_params: list[Any] | None = None
        header_params: list[Any] | None = None
        buttons_seen: set[int] = set()
        for comp in components:
            if not isinstance(comp, dict):
                raise SimError(100, "each component must be an object")
            ctype = str(comp.get("type", "")).lower()
            params = comp.get("parameters") or []
            if not isinstance(params, list):
                raise SimError(100, f"{ctype}: parameters must be a list")
            for param in params:
                _check_parameter(param)
            if ctype == "body":
                body_params = params
            elif ctype == "header":
                header_params = params
            elif ctype == "button":
                buttons_seen.add(self._check_button(template, comp, params))
            else:
                raise SimError(100, f"Invalid component type: {ctype}")
        self._check_header(template, header_params or [])
        self._check_body(template, body_params or [])
        for index, (sub_type, needs_param) in template.buttons.items():
            if needs_param and index not in buttons_seen:
                raise SimError(
                    132000, f"button at index {index} of type {sub_type} requires a parameter"
                )
        return template

    def _check_header(self, template: Template, params: list[Any]) -> None:
        if template.header in ("image", "video", "document", "location"):
            got = params[0].get("type") if len(params) == 1 else None
            if got != template.header:
                received = str(got).upper() if got else "UNKNOWN"
                raise SimError(
                    132012,
                    f"header: Format mismatch, expected {template.header.upper()}, "
                    f"received {received}",
                )
            return
        if len(params) != template.header_text_params:
            raise SimError(
                132000,
                f"header: number of localizable_params ({len(params)}) does not match the "
                f"expected number of params ({template.header_text_params})",
            )
        if params and template.named != all("parameter_name" in p for p in params):
            raise SimError(132012, "header: parameter format does not match the template")

    def _check_body(self, template: Template, params: list[Any]) -> None:
        named = [p for p in params if "parameter_name" in p]
        if named and (not template.named or len(named) != len(params)):
            raise SimError(132012, "body: named parameters sent to a positional template")
        if template.named:
            if params and not named:
                raise SimError(132012, "body: positional parameters sent to a named template")
            names = {p["parameter_name"] for p in named}
            if len(params) != len(template.body_names) or names != template.body_names:
                raise SimError(
                    132000,
                    f"body: parameters {sorted(names)} do not match the expected "
                    f"params {sorted(template.body_names)}",
                )
        elif len(params) != template.body_positional:
            raise SimError(
                132000,
                f"body: number of localizable_params ({len(params)}) does not match the "
                f"expected number of params ({template.body_positional})",
            )
        length = template.body_len + sum(len(_param_text(p)) for p in params)
        if length > MAX_BODY_TEXT:
            raise SimError(132005, f"body text is {length} characters, the limit is 1024")

    def _check_button(self, template: Template, comp: dict[str, Any], params: list[Any]) -> int:
        sub_type = str(comp.get("sub_type", "")).lower()
        try:
            index = int(comp.get("index"))
        except (TypeError, ValueError):
            raise SimError(131008, "button: index is required") from None
        expected = template.buttons.get(index)
        if expected is None or expected[0] != sub_type:
            raise SimError(131009, f"button: no {sub_type} button at index {index}")
        if sub_type == "url":
            wanted = 1 if expected[1] else 0
            if len(params) != wanted:
                raise SimError(
                    132000,
                    f"button: number of localizable_params ({len(params)}) does not match the "
                    f"expected number of params ({wanted})",
                )
        elif sub_type == "quick_reply" and any(p.get("type") != "payload" for p in params):
            raise SimError(131009, "quick_reply buttons take a payload parameter")
        return index

    # -- accepting -----------------------------------------------------------------------

    def accept(
        self,
        number: PhoneNumber,
        body: dict[str, Any],
        raw: bytes,
        wa_id: str,
        template: Template | None,
        now: float,
    ) -> MessageRecord:
        self.seq += 1
        record = MessageRecord()
        record.seq = self.seq
        record.wamid = "wamid." + base64.b64encode(
            f"SIM.{self._nonce}.{self.seq}.{wa_id}".encode()
        ).decode().rstrip("=")
        record.phone_number_id = number.id
        record.waba_id = number.waba_id
        record.to = body["to"]
        record.wa_id = wa_id
        record.type = body.get("type", "text")
        record.template_name = template.key[1] if template else None
        record.template_language = template.key[2] if template else None
        record.category = template.category.lower() if template else "service"
        record.callback_data = body.get("biz_opaque_callback_data")
        record.accepted_at = now
        record.accepted_wall = time.time()
        record.raw = raw
        record.timed_out = False
        record.fail_code = None
        if self.fail_after_accept and self.fail_after_accept.match(wa_id):
            record.fail_code = 131026
        elif record.type != "template" and self.faults.enforce_window:
            opened = self.service_windows.get((number.id, wa_id))
            if opened is None or record.accepted_wall - opened > SERVICE_WINDOW_SECONDS:
                record.fail_code = 131047
        self.messages.append(record)
        self.total += 1
        self.by_recipient[wa_id] += 1
        self.by_number[number.id] += 1
        number.window.append(now)
        if self.faults.pair_rate_seconds:
            self.pair_times.setdefault((number.id, wa_id), deque()).append(now)
        return record

    def find_messages(self, query: dict[str, str]) -> list[dict[str, Any]]:
        to = query.get("to")
        wa_id = to.lstrip("+") if to else None
        pnid = query.get("phone_number_id")
        name = query.get("template")
        callback = query.get("callback_data")
        wamid = query.get("wamid")
        since = int(query.get("since_seq", 0))
        limit = int(query.get("limit", 0)) or None
        out = []
        for rec in self.messages:
            if rec.seq <= since:
                continue
            if wa_id is not None and rec.wa_id != wa_id:
                continue
            if pnid is not None and rec.phone_number_id != pnid:
                continue
            if name is not None and rec.template_name != name:
                continue
            if callback is not None and rec.callback_data != callback:
                continue
            if wamid is not None and rec.wamid != wamid:
                continue
            out.append(rec.as_dict())
            if limit is not None and len(out) >= limit:
                break
        return out

    def counts(self, duplicates_only: bool = False) -> dict[str, Any]:
        by_recipient = (
            {k: v for k, v in self.by_recipient.items() if v > 1}
            if duplicates_only
            else dict(self.by_recipient)
        )
        callbacks = Counter(r.callback_data for r in self.messages if r.callback_data is not None)
        return {
            "total": self.total,
            "by_recipient": by_recipient,
            "by_phone_number": dict(self.by_number),
            "duplicate_callback_data": {k: v for k, v in callbacks.items() if v > 1},
            "rejected": {str(k): v for k, v in self.rejected.items()},
        }


def _param_text(param: dict[str, Any]) -> str:
    if param.get("type") == "text":
        return str(param.get("text", ""))
    for key in ("currency", "date_time"):
        if isinstance(param.get(key), dict):
            return str(param[key].get("fallback_value", ""))
    return ""


def _check_parameter(param: Any) -> None:
    if not isinstance(param, dict):
        raise SimError(100, "each parameter must be an object")
    ptype = param.get("type")
    if ptype == "text":
        if not isinstance(param.get("text"), str) or not param["text"]:
            raise SimError(131008, "text parameter needs a non-empty 'text'")
    elif ptype in ("image", "document", "video"):
        media = param.get(ptype)
        if not isinstance(media, dict) or (("id" in media) == ("link" in media)):
            raise SimError(131009, f"{ptype} parameter needs exactly one of 'id' or 'link'")
    elif ptype == "currency":
        cur = param.get("currency")
        if not isinstance(cur, dict) or not {"fallback_value", "code", "amount_1000"} <= set(cur):
            raise SimError(131008, "currency needs fallback_value, code and amount_1000")
    elif ptype == "date_time":
        if not isinstance(param.get("date_time"), dict) or "fallback_value" not in param.get(
            "date_time", {}
        ):
            raise SimError(131008, "date_time needs fallback_value")
    elif ptype == "payload":
        if not isinstance(param.get("payload"), str):
            raise SimError(131008, "payload parameter needs a 'payload'")
    elif ptype != "location":
        raise SimError(131009, f"Invalid parameter type: {ptype}")
