"""In-memory state of the Graph API simulator: accounts, templates, faults, accepted messages."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
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
    130497: (400, "(#130497) Business account is restricted from messaging users in this country"),
    130472: (400, "(#130472) User's number is part of an experiment"),
    131000: (500, "(#131000) Something went wrong"),
    131005: (403, "(#131005) Access denied"),
    131008: (400, "(#131008) Required parameter is missing"),
    131009: (400, "(#131009) Parameter value is not valid"),
    131016: (503, "(#131016) Service unavailable"),
    131021: (400, "(#131021) Recipient cannot be sender"),
    131026: (400, "(#131026) Message undeliverable"),
    131031: (400, "(#131031) Business Account locked"),
    131042: (400, "(#131042) Business eligibility payment issue"),
    131047: (400, "(#131047) Re-engagement message"),
    131048: (400, "(#131048) Spam rate limit hit"),
    131049: (
        400,
        "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
    ),
    131050: (400, "(#131050) User has stopped receiving marketing messages"),
    131053: (400, "(#131053) Media upload error"),
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

# What a `failed` status webhook carries for a code: (title, error_data.details).
FAIL_TEXTS: dict[int, tuple[str, str]] = {
    131026: ("Message undeliverable", "Message Undeliverable."),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131048: (
        "Spam rate limit hit",
        "Message failed to send because there are restrictions on how many messages can be "
        "sent from this phone number. This may be because too many previous messages were "
        "blocked or flagged as spam.",
    ),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131050: (
        "User has stopped receiving marketing messages",
        "Unable to deliver the message. This recipient has chosen to stop receiving "
        "marketing messages on WhatsApp from your business.",
    ),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    131042: (
        "Business eligibility payment issue",
        "Message failed to send because there were one or more errors related to your "
        "payment method.",
    ),
    130497: (
        "Business account is restricted from messaging users in this country",
        "The business is restricted from sending messages to users in this country.",
    ),
    130472: (
        "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment.",
    ),
}
# Codes Meta reports as a `failed` status webhook after answering the send with 200
# (graph-api.md "Where Meta's bad news arrives"); every other code is in the response.
WEBHOOK_CODES = frozenset({131026, 131047, 131048, 131049, 131050, 131053, 130472})
ERROR_MODES = ("response", "webhook")
# Messaging-limit tiers: unique users reached by template outside a service window per
# rolling 24 h, per business portfolio (None: unlimited).
TIER_LIMITS: dict[str, int | None] = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1000,
    "TIER_2K": 2000,
    "TIER_10K": 10000,
    "TIER_100K": 100000,
    "TIER_UNLIMITED": None,
}
QUALITY_ORDER = ("GREEN", "YELLOW", "RED")
TIER_SECONDS = 24 * 3600

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
    # this many seconds (Meta: about 1 per 6 s); 0 disables it.
    pair_rate_seconds: float = 6.0
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
    # "<code>": "response" | "webhook": how a refusal of that code arrives; codes not
    # named follow WEBHOOK_CODES (a `failed` status webhook after a 200) or the response.
    error_modes: dict[str, str] = dataclasses.field(default_factory=dict)
    message_status: str | None = "accepted"
    enforce_window: bool = True
    # Tier budget per business portfolio (see TIER_LIMITS); over it, `tier_error_code`.
    enforce_tier: bool = True
    tier_error_code: int = 131048
    # Per-user marketing cap (131049): at most this many marketing templates per user
    # (from any business) per `marketing_cap_hours`; 0 = off.
    marketing_cap: int = 0
    marketing_cap_hours: float = 24.0
    # Quality dynamics: the share of marketing templates whose recipient blocks the
    # business; over the last `quality_sample` marketing sends of a number (and of a
    # template) a block share >= quality_yellow/quality_red lowers its quality rating.
    block_rate: float = 0.0
    quality_sample: int = 20
    quality_yellow: float = 0.1
    quality_red: float = 0.2
    # Rewrite wa_id as Meta does for Brazil (drop the mobile 9th digit) and Mexico (521).
    wa_id_rewrite: bool = True
    # Business-scoped user ids (user_id/recipient_user_id) in webhooks and responses.
    bsuid: bool = True
    # Seconds added to the simulator's clock for windows (service window, tier budget,
    # marketing cap): lets a test jump 24 h ahead.
    clock_offset_s: float = 0.0
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
        "block_rate",
        "quality_yellow",
        "quality_red",
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
        if self.quality_sample < 1 or self.marketing_cap < 0 or self.marketing_cap_hours <= 0:
            raise ValueError(
                "quality_sample must be >= 1, marketing_cap >= 0, marketing_cap_hours > 0"
            )
        if self.pair_rate_seconds < 0:
            raise ValueError("pair_rate_seconds must be >= 0")
        for code, mode in self.error_modes.items():
            if not str(code).isdigit() or mode not in ERROR_MODES:
                raise ValueError(f"error_modes: {code!r} -> {mode!r}; want '<code>': {ERROR_MODES}")
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
                "mode",
            }
            if unknown:
                raise ValueError(f"unknown errors rule keys: {sorted(unknown)}")
            if rule.get("mode") not in (None, *ERROR_MODES):
                raise ValueError(f"errors rule mode must be one of {ERROR_MODES}")


_INT_FIELDS = {"mps", "throttle_status", "transient_status", "pair_burst", "webhook_batch"}
_INT_FIELDS |= {"webhook_concurrency", "webhook_retries", "tier_error_code", "marketing_cap"}
_INT_FIELDS |= {"quality_sample"}
_BOOL_FIELDS = {"enforce_window", "webhook_shuffle", "webhooks_paused", "enforce_tier"}
_BOOL_FIELDS |= {"wa_id_rewrite", "bsuid"}
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
        if key == "error_modes":
            if isinstance(value, str):  # the command line: "131026=response,131047=webhook"
                value = dict(item.split("=", 1) for item in value.split(",") if item)
            return {str(code): str(mode) for code, mode in dict(value).items()}
        if key in ("callback_url", "message_status"):
            return None if value in (None, "") else str(value)
        if key in ("app_secret", "reply_text", "timeout_mode"):
            return str(value)
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"bad value for {key}: {value!r}") from None


_CODE = re.compile(r"^[A-Za-z0-9]{1,15}$")


class Part:
    """What one message part (the template itself, or one carousel card) must carry."""

    __slots__ = (
        "body_len",
        "body_names",
        "body_positional",
        "buttons",
        "header",
        "header_text_params",
        "label",
        "named",
    )

    def __init__(self, components: list[dict[str, Any]], named: bool, label: str = "") -> None:
        self.named = named
        self.label = label
        self.body_positional = 0
        self.body_names: frozenset[str] = frozenset()
        self.body_len = 0
        self.header: str | None = None
        self.header_text_params = 0
        # index -> (sub_type a send uses, needs a parameter)
        self.buttons: dict[int, tuple[str, bool]] = {}
        for comp in components:
            ctype = str(comp.get("type", "")).upper()
            if ctype == "BODY":
                text = comp.get("text", "")
                variables = _VARIABLE.findall(text)
                self.body_len = len(_VARIABLE.sub("", text))
                if named:
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
                    elif btype == "OTP":
                        # The code of an authentication template rides a URL button.
                        self.buttons[index] = ("url", True)
                    elif btype in ("COPY_CODE", "FLOW", "MPM"):
                        self.buttons[index] = (btype.lower(), True)
                    else:
                        self.buttons[index] = (btype.lower(), False)

    def where(self, name: str) -> str:
        return f"{self.label}{name}"

    def check_header(self, params: list[Any]) -> None:
        header = self.header
        if header in ("image", "video", "document", "location", "gif", "product"):
            got = params[0].get("type") if len(params) == 1 else None
            if got != header:
                received = str(got).upper() if got else "UNKNOWN"
                raise SimError(
                    132012,
                    f"{self.where('header')}: Format mismatch, expected {header.upper()}, "
                    f"received {received}",
                )
            value = params[0].get(header)
            if header == "document" and not str((value or {}).get("filename") or "").strip():
                raise SimError(131008, f"{self.where('header')}: document.filename is required")
            if header == "product" and not (
                isinstance(value, dict)
                and str(value.get("product_retailer_id") or "").strip()
                and str(value.get("catalog_id") or "").strip()
            ):
                raise SimError(
                    131008,
                    f"{self.where('header')}: product needs product_retailer_id and catalog_id",
                )
            return
        if len(params) != self.header_text_params:
            raise SimError(
                132000,
                f"{self.where('header')}: number of localizable_params ({len(params)}) does not "
                f"match the expected number of params ({self.header_text_params})",
            )
        if params and self.named != all("parameter_name" in p for p in params):
            raise SimError(132012, f"{self.where('header')}: parameter format does not match")

    def check_body(self, params: list[Any]) -> None:
        where = self.where("body")
        named = [p for p in params if "parameter_name" in p]
        if named and (not self.named or len(named) != len(params)):
            raise SimError(132012, f"{where}: named parameters sent to a positional template")
        if self.named:
            if params and not named:
                raise SimError(132012, f"{where}: positional parameters sent to a named template")
            names = {p["parameter_name"] for p in named}
            if len(params) != len(self.body_names) or names != self.body_names:
                raise SimError(
                    132000,
                    f"{where}: parameters {sorted(names)} do not match the expected "
                    f"params {sorted(self.body_names)}",
                )
        elif len(params) != self.body_positional:
            raise SimError(
                132000,
                f"{where}: number of localizable_params ({len(params)}) does not match the "
                f"expected number of params ({self.body_positional})",
            )
        length = self.body_len + sum(len(_param_text(p)) for p in params)
        if length > MAX_BODY_TEXT:
            raise SimError(132005, f"{where} text is {length} characters, the limit is 1024")

    def check_button(self, comp: dict[str, Any], params: list[Any]) -> int:
        sub_type = str(comp.get("sub_type", "")).lower()
        try:
            index = int(comp.get("index"))
        except (TypeError, ValueError):
            raise SimError(131008, f"{self.where('button')}: index is required") from None
        where = self.where(f"button {index}")
        expected = self.buttons.get(index)
        if expected is None or expected[0] != sub_type:
            raise SimError(131009, f"{where}: no {sub_type} button at index {index}")
        if sub_type == "url":
            wanted = 1 if expected[1] else 0
            if len(params) != wanted:
                raise SimError(
                    132000,
                    f"{where}: number of localizable_params ({len(params)}) does not match the "
                    f"expected number of params ({wanted})",
                )
        elif sub_type == "quick_reply" and any(p.get("type") != "payload" for p in params):
            raise SimError(131009, f"{where}: quick_reply buttons take a payload parameter")
        elif sub_type == "copy_code":
            if len(params) != 1 or params[0].get("type") != "coupon_code":
                raise SimError(132012, f"{where}: copy_code takes one coupon_code parameter")
            if not _CODE.match(str(params[0].get("coupon_code") or "")):
                raise SimError(131009, f"{where}: coupon_code must be 1-15 letters or digits")
        elif sub_type in ("flow", "mpm", "catalog"):
            _check_action(where, sub_type, params)
        return index

    def check_buttons_complete(self, seen: set[int]) -> None:
        for index, (sub_type, needs_param) in self.buttons.items():
            if needs_param and index not in seen:
                raise SimError(
                    132000,
                    f"{self.where(f'button at index {index}')} of type {sub_type} requires a "
                    "parameter",
                )

    def check_components(self, components: list[Any]) -> None:
        """Header, body and buttons of this part (a card, or the template's own)."""
        body_params: list[Any] | None = None
        header_params: list[Any] | None = None
        seen: set[int] = set()
        for comp in components:
            if not isinstance(comp, dict):
                raise SimError(100, "each component must be an object")
            ctype = str(comp.get("type", "")).lower()
            params = _parameters(comp, ctype)
            if ctype == "body":
                body_params = params
            elif ctype == "header":
                header_params = params
            elif ctype == "button":
                seen.add(self.check_button(comp, params))
            else:
                raise SimError(100, f"{self.where('')}Invalid component type: {ctype}")
        self.check_header(header_params or [])
        self.check_body(body_params or [])
        self.check_buttons_complete(seen)


def _parameters(comp: dict[str, Any], ctype: str) -> list[Any]:
    params = comp.get("parameters") or []
    if not isinstance(params, list):
        raise SimError(100, f"{ctype}: parameters must be a list")
    for param in params:
        _check_parameter(param)
    return params


def _check_action(where: str, sub_type: str, params: list[Any]) -> None:
    """FLOW (flow_token), MPM (thumbnail and sections) and CATALOG (thumbnail) actions."""
    if sub_type == "catalog" and not params:
        return
    if len(params) != 1 or params[0].get("type") != "action":
        raise SimError(132012, f"{where}: {sub_type} takes one action parameter")
    action = params[0].get("action")
    if not isinstance(action, dict):
        raise SimError(131008, f"{where}: action is required")
    if sub_type == "flow":
        if not isinstance(action.get("flow_token"), str) or not action["flow_token"]:
            raise SimError(131008, f"{where}: action.flow_token is required")
        return
    thumbnail = action.get("thumbnail_product_retailer_id")
    if sub_type == "catalog":
        if thumbnail is not None and not (isinstance(thumbnail, str) and thumbnail):
            raise SimError(131009, f"{where}: thumbnail_product_retailer_id must be a product id")
        return
    if not isinstance(thumbnail, str) or not thumbnail:
        raise SimError(131008, f"{where}: action.thumbnail_product_retailer_id is required")
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        raise SimError(131008, f"{where}: action.sections is required")
    products = 0
    for section in sections:
        items = section.get("product_items") if isinstance(section, dict) else None
        title = section.get("title") if isinstance(section, dict) else None
        if not isinstance(items, list) or not items or not isinstance(title, str) or not title:
            raise SimError(131008, f"{where}: each section needs a title and product_items")
        if len(title) > 24:
            raise SimError(131009, f"{where}: section title over 24 characters")
        if not all(
            isinstance(i, dict) and isinstance(i.get("product_retailer_id"), str) for i in items
        ):
            raise SimError(131008, f"{where}: each product item needs product_retailer_id")
        products += len(items)
    if len(sections) > 10 or products > 30:
        raise SimError(131009, f"{where}: at most 10 sections and 30 products")


class Template:
    """A template and what a send of it must carry, derived once from its components."""

    __slots__ = (
        "cards",
        "category",
        "data",
        "key",
        "lto_expires",
        "named",
        "part",
        "quality",
        "status",
    )

    def __init__(self, waba_id: str, data: dict[str, Any]) -> None:
        self.data = data
        self.key = (waba_id, data["name"], data["language"])
        self.status = data.get("status", "APPROVED")
        self.quality = str((data.get("quality_score") or {}).get("score") or "GREEN")
        self.category = data.get("category", "MARKETING")
        self.named = data.get("parameter_format", "POSITIONAL") == "NAMED"
        components = [c for c in data.get("components") or [] if isinstance(c, dict)]
        self.part = Part(components, self.named)
        self.lto_expires = False
        self.cards: list[Part] = []
        for comp in components:
            ctype = str(comp.get("type", "")).upper()
            if ctype == "LIMITED_TIME_OFFER":
                offer = comp.get("limited_time_offer") or {}
                self.lto_expires = bool(offer.get("has_expiration"))
            elif ctype == "CAROUSEL":
                for number, card in enumerate(comp.get("cards") or []):
                    parts = [c for c in (card or {}).get("components") or [] if isinstance(c, dict)]
                    self.cards.append(Part(parts, self.named, f"card {number} "))

    @property
    def header(self) -> str | None:
        return self.part.header

    def public(self, fields: set[str] | None = None) -> dict[str, Any]:
        data = {**self.data, "status": self.status}
        if fields:
            data = {k: v for k, v in data.items() if k in fields or k == "id"}
        return data


class PhoneNumber:
    __slots__ = ("blocks", "data", "display", "id", "mps", "waba_id", "window")

    def __init__(self, waba_id: str, data: dict[str, Any]) -> None:
        self.id = str(data["id"])
        self.waba_id = waba_id
        self.display = str(data.get("display_phone_number", self.id))
        self.mps = int(data.get("mps", 80))
        self.data = {k: v for k, v in data.items() if k != "mps"}
        self.data["id"] = self.id
        # Accepted-send times within the last second: the throughput window.
        self.window: deque[float] = deque()
        # Blocked (True) or not, for the last marketing sends: the quality sample.
        self.blocks: deque[bool] = deque()

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
        "user_id",
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
            "user_id": self.user_id,
            "payload": payload,
        }


# Calling code -> ISO country, for the country prefix of a business-scoped user id.
_COUNTRIES = {
    "1": "US",
    "7": "RU",
    "20": "EG",
    "27": "ZA",
    "33": "FR",
    "34": "ES",
    "39": "IT",
    "44": "GB",
    "49": "DE",
    "52": "MX",
    "54": "AR",
    "55": "BR",
    "57": "CO",
    "62": "ID",
    "63": "PH",
    "91": "IN",
    "92": "PK",
    "234": "NG",
    "254": "KE",
    "971": "AE",
}


def wa_id_for(digits: str, rewrite: bool = True) -> str:
    """The wa_id Meta answers for the digits a sender gave.

    Brazil: a mobile number written with the 9th digit (55 + 2-digit area + 9 + 8 digits)
    has the wa_id of its old 8-digit form, as accounts made before the 9 was added keep
    it. Mexico: 52 + 10 digits becomes 521 + 10 digits (the old mobile prefix).
    """
    if not rewrite:
        return digits
    if len(digits) == 13 and digits.startswith("55") and digits[4] == "9":
        return digits[:4] + digits[5:]
    if len(digits) == 12 and digits.startswith("52"):
        return "521" + digits[2:]
    return digits


def bsuid_for(business_id: str, wa_id: str) -> str:
    """A stable business-scoped user id: ISO country, a dot, digits unique per business."""
    country = next((_COUNTRIES[wa_id[:n]] for n in (3, 2, 1) if wa_id[:n] in _COUNTRIES), "ZZ")
    digest = hashlib.sha256(f"{business_id}:{wa_id}".encode()).digest()
    return f"{country}.{int.from_bytes(digest[:8], 'big')}"


class MediaObject:
    """An uploaded (or inbound) media file: Meta keeps it 30 days, the simulator until reset."""

    __slots__ = ("data", "filename", "id", "mime_type", "phone_number_id", "sha256")

    def __init__(
        self, media_id: str, phone_number_id: str, mime_type: str, data: bytes, filename: str
    ) -> None:
        self.id = media_id
        self.phone_number_id = phone_number_id
        self.mime_type = mime_type
        self.data = data
        self.filename = filename
        self.sha256 = hashlib.sha256(data).hexdigest()

    def public(self, base_url: str) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "url": f"{base_url}/_sim/media/{self.id}",
            "mime_type": self.mime_type,
            "sha256": self.sha256,
            "file_size": len(self.data),
            "id": self.id,
        }


# Meta's upload limits per media kind: accepted MIME types and the largest size in bytes.
MEDIA_KINDS: dict[str, tuple[frozenset[str], int]] = {
    "image": (frozenset({"image/jpeg", "image/png"}), 5 * 1024 * 1024),
    "video": (frozenset({"video/mp4", "video/3gpp"}), 16 * 1024 * 1024),
    "audio": (
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
        16 * 1024 * 1024,
    ),
    "sticker": (frozenset({"image/webp"}), 500 * 1024),
    "document": (
        frozenset(
            {
                "text/plain",
                "text/csv",
                "application/pdf",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * 1024 * 1024,
    ),
}
MEDIA_TYPES = tuple(MEDIA_KINDS)


def media_kind(mime_type: str) -> str | None:
    """Which kind of media a MIME type is (webp is a sticker), None if Meta refuses it."""
    base = mime_type.split(";", 1)[0].strip().lower()
    for kind, (types, _) in MEDIA_KINDS.items():
        if base in types:
            return kind
    return None


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
        self.failed: Counter[int] = Counter()
        self.media: dict[str, MediaObject] = {}
        self._media_ids = 700000000000000
        # business id -> {wa_id: when it was first reached in the current 24 h}
        self.tier_users: dict[str, dict[str, float]] = {}
        # wa_id -> times of marketing templates delivered (the per-user cap)
        self.marketing_times: dict[str, deque[float]] = {}
        # bsuid -> wa_id, for sends addressed by `recipient`
        self.bsuids: dict[str, str] = {}
        self.template_blocks: dict[tuple[str, str, str], deque[bool]] = {}
        self.blocked_users: set[tuple[str, str]] = set()
        # Account-level webhooks waiting for the dispatcher: (waba_id, field, value).
        self.changes: list[tuple[str, str, dict[str, Any]]] = []

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

    # -- business portfolios, clock, identities -----------------------------------------

    def business_of(self, waba_id: str) -> str:
        """The business portfolio a WABA belongs to (seed `business.id`; else its own)."""
        business = self.wabas.get(waba_id, {}).get("business") or {}
        return str(business.get("id") or f"business-of-{waba_id}")

    def tier_of(self, business_id: str) -> str:
        """The portfolio's messaging limit: seed/control `business.messaging_limit`, else
        the highest `messaging_limit_tier` of its numbers (the deprecated per-number field)."""
        best = "TIER_250"
        for waba_id, waba in self.wabas.items():
            if self.business_of(waba_id) != business_id:
                continue
            given = (waba.get("business") or {}).get("messaging_limit")
            if given:
                return str(given)
            for number in self.numbers.values():
                tier = str(number.data.get("messaging_limit_tier") or "")
                if number.waba_id == waba_id and tier in TIER_LIMITS:
                    limit, current = TIER_LIMITS[tier], TIER_LIMITS[best]
                    if current is not None and (limit is None or limit > current):
                        best = tier
        return best

    def now(self) -> float:
        """Wall time for windows, moved by `clock_offset_s`."""
        return time.time() + self.faults.clock_offset_s

    def user_id_for(self, waba_id: str, wa_id: str) -> str:
        bsuid = bsuid_for(self.business_of(waba_id), wa_id)
        self.bsuids[bsuid] = wa_id
        return bsuid

    def window_open(self, phone_number_id: str, wa_id: str) -> bool:
        opened = self.service_windows.get((phone_number_id, wa_id))
        return opened is not None and self.now() - opened <= SERVICE_WINDOW_SECONDS

    def error_mode(self, code: int, rule: dict[str, Any] | None = None) -> str:
        """How a refusal with `code` arrives: "response" or "webhook"."""
        if rule is not None and rule.get("mode"):
            return str(rule["mode"])
        mode = self.faults.error_modes.get(str(code))
        if mode:
            return mode
        return "webhook" if code in WEBHOOK_CODES else "response"

    # -- media ---------------------------------------------------------------------------

    def media_add(
        self, phone_number_id: str, mime_type: str, data: bytes, filename: str = ""
    ) -> MediaObject:
        self._media_ids += 1
        media = MediaObject(str(self._media_ids), phone_number_id, mime_type, data, filename)
        self.media[media.id] = media
        return media

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

    def forced_error(
        self, phone_number_id: str, to: str | None
    ) -> tuple[SimError, dict[str, Any]] | None:
        """The first matching injected error rule and its error, if any (consumes one of
        its `count`)."""
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
            error = SimError(
                rule["code"],
                rule.get("details"),
                http_status=rule.get("http_status"),
                subcode=rule.get("subcode"),
                message=rule.get("message"),
                title=rule.get("title"),
            )
            return error, rule
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
        recipient = body.get("recipient")
        if to is None and isinstance(recipient, str):
            # Addressed by business-scoped user id (users who hide their phone number).
            wa_id = self.bsuids.get(recipient)
            if wa_id is None:
                raise SimError(100, f"Param recipient {recipient!r} is not a known user id")
        else:
            if not isinstance(to, str) or not _PHONE.match(to.replace(" ", "").replace("-", "")):
                raise SimError(100, "Param to must be a valid phone number")
            digits = to.replace(" ", "").replace("-", "").lstrip("+")
            wa_id = wa_id_for(digits, self.faults.wa_id_rewrite)
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
        elif mtype in MEDIA_TYPES:
            _check_media_object(mtype, body.get(mtype))
        elif mtype == "reaction":
            reaction = body.get("reaction")
            if not isinstance(reaction, dict) or not isinstance(reaction.get("message_id"), str):
                raise SimError(131008, "reaction.message_id is required")
            if not isinstance(reaction.get("emoji", ""), str):
                raise SimError(131009, "reaction.emoji must be a string")
        elif mtype == "location":
            location = body.get("location")
            if not isinstance(location, dict) or not {"latitude", "longitude"} <= set(location):
                raise SimError(131008, "location needs latitude and longitude")
        elif mtype in ("interactive", "contacts"):
            if not isinstance(body.get(mtype), dict | list) or not body.get(mtype):
                raise SimError(131008, f"Parameter '{mtype}' is required")
        else:
            raise SimError(131009, f"Param type {mtype!r} is not a valid message type")
        if "context" in body and not (
            isinstance(body["context"], dict) and isinstance(body["context"].get("message_id"), str)
        ):
            raise SimError(131009, "context.message_id must be a message id")
        return wa_id, template

    def recipient_outcome(
        self, number: PhoneNumber, wa_id: str, template: Template | None, body: dict[str, Any]
    ) -> int | None:
        """The code Meta refuses this otherwise valid send with (None: it is delivered).

        Checked in the order Meta's own pipeline applies them: the recipient, the
        service window for free-form messages, the media, the tier budget, the per-user
        marketing cap. Nothing is counted here; `accept` counts a delivered message.
        """
        if self.undeliverable and self.undeliverable.match(wa_id):
            return 131026
        if self.fail_after_accept and self.fail_after_accept.match(wa_id):
            return 131026
        in_window = self.window_open(number.id, wa_id)
        if template is None:
            if self.faults.enforce_window and not in_window:
                return 131047
            mtype = body.get("type", "text")
            media = body.get(mtype) if mtype in MEDIA_TYPES else None
            if isinstance(media, dict) and "id" in media and str(media["id"]) not in self.media:
                return 131053
            return None
        if template.header in MEDIA_TYPES:
            for media_id in _media_ids(body):
                if media_id not in self.media:
                    return 131053
        if self.faults.enforce_tier and not in_window:
            business = self.business_of(number.waba_id)
            limit = TIER_LIMITS.get(self.tier_of(business), 250)
            reached = self._tier_window(business)
            if limit is not None and wa_id not in reached and len(reached) >= limit:
                return self.faults.tier_error_code
        if template.category == "MARKETING" and self.faults.marketing_cap:
            times = self._marketing_window(wa_id)
            if len(times) >= self.faults.marketing_cap:
                return 131049
        return None

    def _tier_window(self, business_id: str) -> dict[str, float]:
        """Users reached in the portfolio's current rolling 24 h (older ones dropped)."""
        reached = self.tier_users.setdefault(business_id, {})
        cutoff = self.now() - TIER_SECONDS
        while reached:
            first = next(iter(reached))
            if reached[first] > cutoff:
                break
            del reached[first]
        return reached

    def _marketing_window(self, wa_id: str) -> deque[float]:
        times = self.marketing_times.setdefault(wa_id, deque())
        cutoff = self.now() - self.faults.marketing_cap_hours * 3600
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def tier_usage(self) -> dict[str, dict[str, Any]]:
        """Per business portfolio: its tier, limit and users reached in the last 24 h."""
        out = {}
        for waba_id in self.wabas:
            business = self.business_of(waba_id)
            tier = self.tier_of(business)
            out[business] = {
                "tier": tier,
                "limit": TIER_LIMITS.get(tier, 250),
                "reached": len(self._tier_window(business)),
            }
        return out

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
        own: list[Any] = []
        offer: dict[str, Any] | None = None
        carousel: dict[str, Any] | None = None
        for comp in components:
            if not isinstance(comp, dict):
                raise SimError(100, "each component must be an object")
            ctype = str(comp.get("type", "")).lower()
            if ctype == "limited_time_offer":
                offer = comp
            elif ctype == "carousel":
                carousel = comp
            else:
                own.append(comp)
        template.part.check_components(own)
        self._check_offer(template, offer)
        self._check_carousel(template, carousel)
        return template

    def _check_offer(self, template: Template, comp: dict[str, Any] | None) -> None:
        if comp is None:
            if template.lto_expires:
                raise SimError(131008, "limited_time_offer: expiration_time_ms is required")
            return
        if not template.lto_expires:
            raise SimError(131009, "limited_time_offer: the template has no offer expiration")
        params = comp.get("parameters") or []
        offer = params[0].get("limited_time_offer") if len(params) == 1 else None
        if (
            not isinstance(params[0] if params else None, dict)
            or params[0].get("type") != "limited_time_offer"
            or not isinstance(offer, dict)
        ):
            raise SimError(132012, "limited_time_offer takes one limited_time_offer parameter")
        millis = offer.get("expiration_time_ms")
        if isinstance(millis, bool) or not isinstance(millis, int):
            raise SimError(131009, "limited_time_offer.expiration_time_ms must be an integer")
        if millis <= self.now() * 1000:
            raise SimError(131009, "limited_time_offer.expiration_time_ms is in the past")

    def _check_carousel(self, template: Template, comp: dict[str, Any] | None) -> None:
        if comp is None:
            if template.cards:
                raise SimError(132000, f"carousel: {len(template.cards)} cards are required")
            return
        if not template.cards:
            raise SimError(131009, "carousel: the template has no carousel")
        cards = comp.get("cards")
        if not isinstance(cards, list) or len(cards) != len(template.cards):
            got = len(cards) if isinstance(cards, list) else 0
            raise SimError(
                132000,
                f"carousel: number of cards ({got}) does not match the expected number of "
                f"cards ({len(template.cards)})",
            )
        seen: set[int] = set()
        for card in cards:
            index = card.get("card_index") if isinstance(card, dict) else None
            if (
                isinstance(index, bool)
                or not isinstance(index, int)
                or not 0 <= index < len(template.cards)
                or index in seen
            ):
                raise SimError(131009, f"carousel: bad or repeated card_index {index!r}")
            seen.add(index)
            parts = card.get("components")
            if not isinstance(parts, list):
                raise SimError(131008, f"carousel card {index}: components are required")
            template.cards[index].check_components(parts)

    # -- accepting -----------------------------------------------------------------------

    def accept(
        self,
        number: PhoneNumber,
        body: dict[str, Any],
        raw: bytes,
        wa_id: str,
        template: Template | None,
        now: float,
        fail_code: int | None = None,
    ) -> MessageRecord:
        """Record an accepted send (answered 200); `fail_code` makes it end `failed`.

        A delivered template counts toward the tier budget and the marketing cap and
        feeds the quality dynamics (their webhooks land in `self.changes`).
        """
        self.seq += 1
        record = MessageRecord()
        record.seq = self.seq
        record.wamid = "wamid." + base64.b64encode(
            f"SIM.{self._nonce}.{self.seq}.{wa_id}".encode()
        ).decode().rstrip("=")
        record.phone_number_id = number.id
        record.waba_id = number.waba_id
        record.to = body.get("to") or body.get("recipient")
        record.wa_id = wa_id
        record.user_id = self.user_id_for(number.waba_id, wa_id) if self.faults.bsuid else None
        record.type = body.get("type", "text")
        record.template_name = template.key[1] if template else None
        record.template_language = template.key[2] if template else None
        record.category = template.category.lower() if template else "service"
        record.callback_data = body.get("biz_opaque_callback_data")
        record.accepted_at = now
        record.accepted_wall = time.time()
        record.raw = raw
        record.timed_out = False
        record.fail_code = fail_code
        if fail_code is not None:
            self.failed[fail_code] += 1
        elif template is not None:
            if not self.window_open(number.id, wa_id):
                reached = self._tier_window(self.business_of(number.waba_id))
                reached.setdefault(wa_id, self.now())
            if template.category == "MARKETING":
                self._marketing_window(wa_id).append(self.now())
                self._quality_roll(number, template, wa_id)
        self.messages.append(record)
        self.total += 1
        self.by_recipient[wa_id] += 1
        self.by_number[number.id] += 1
        number.window.append(now)
        if self.faults.pair_rate_seconds:
            self.pair_times.setdefault((number.id, wa_id), deque()).append(now)
        return record

    # -- quality dynamics ----------------------------------------------------------------

    def _quality_roll(self, number: PhoneNumber, template: Template, wa_id: str) -> None:
        """Roll whether this recipient blocks the business, then re-rate number and template."""
        faults = self.faults
        if not faults.block_rate:
            return
        blocked = self.rng.random() < faults.block_rate
        if blocked:
            self.blocked_users.add((number.id, wa_id))
        for sample in (number.blocks, self.template_blocks.setdefault(template.key, deque())):
            sample.append(blocked)
            while len(sample) > faults.quality_sample:
                sample.popleft()
        self._rate_template(template, self.template_blocks[template.key])
        self._rate_number(number)

    def _rating(self, sample: deque[bool]) -> str | None:
        """The rating a full sample earns (None while it is still filling)."""
        if len(sample) < self.faults.quality_sample:
            return None
        share = sum(sample) / len(sample)
        if share >= self.faults.quality_red:
            return "RED"
        if share >= self.faults.quality_yellow:
            return "YELLOW"
        return "GREEN"

    def _rate_template(self, template: Template, sample: deque[bool]) -> None:
        rating = self._rating(sample)
        if rating is None or rating == template.quality:
            return
        self.template_quality_set(template, rating)

    def template_quality_set(self, template: Template, rating: str) -> None:
        """Set a template's quality; RED pauses it (as Meta does to low-quality marketing)."""
        old = template.quality
        if old == rating:
            return
        template.quality = rating
        template.data["quality_score"] = {"score": rating}
        waba_id, name, language = template.key
        self.changes.append(
            (
                waba_id,
                "message_template_quality_update",
                {
                    "previous_quality_score": old,
                    "new_quality_score": rating,
                    "message_template_id": int(template.data["id"]),
                    "message_template_name": name,
                    "message_template_language": language,
                },
            )
        )
        if rating == "RED" and template.status == "APPROVED":
            template.status = "PAUSED"
            self.changes.append(
                (
                    waba_id,
                    "message_template_status_update",
                    {
                        "event": "PAUSED",
                        "message_template_id": int(template.data["id"]),
                        "message_template_name": name,
                        "message_template_language": language,
                        "reason": None,
                        "other_info": {
                            "title": "FIRST_PAUSE",
                            "description": "Your message template has been paused for 3 "
                            "hours because of low quality: too many recipients blocked it "
                            "or reported it.",
                        },
                    },
                )
            )

    def _rate_number(self, number: PhoneNumber) -> None:
        rating = self._rating(number.blocks)
        if rating is None or rating == number.data.get("quality_rating"):
            return
        self.number_quality_set(number, rating)

    def number_quality_set(self, number: PhoneNumber, rating: str) -> None:
        """Set a number's quality rating and send phone_number_quality_update.

        A drop to RED flags the number (event FLAGGED, status FLAGGED); leaving RED
        unflags it; other moves are DOWNGRADE/UPGRADE. The limit stays what it was.
        """
        old = str(number.data.get("quality_rating") or "GREEN")
        if old == rating:
            return
        number.data["quality_rating"] = rating
        if rating == "RED":
            event = "FLAGGED"
            number.data["status"] = "FLAGGED"
        elif old == "RED":
            event = "UNFLAGGED"
            number.data["status"] = "CONNECTED"
        else:
            rank = {q: i for i, q in enumerate(QUALITY_ORDER)}
            event = "DOWNGRADE" if rank.get(rating, 0) > rank.get(old, 0) else "UPGRADE"
        tier = self.tier_of(self.business_of(number.waba_id))
        self.changes.append(
            (
                number.waba_id,
                "phone_number_quality_update",
                {
                    "display_phone_number": re.sub(r"\D", "", number.display),
                    "event": event,
                    "current_limit": tier,
                    "old_limit": tier,
                    "max_daily_conversations_per_business": tier,
                },
            )
        )

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
            "failed": {str(k): v for k, v in self.failed.items()},
            "blocked": len(self.blocked_users),
            "tiers": self.tier_usage(),
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
    elif ptype in ("image", "document", "video", "gif"):
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
    elif ptype not in _OTHER_PARAMETERS:
        raise SimError(131009, f"Invalid parameter type: {ptype}")


# Parameter types checked where they are used (header, button, offer).
_OTHER_PARAMETERS = frozenset(
    {"location", "gif", "product", "coupon_code", "action", "limited_time_offer"}
)


def _check_media_object(kind: str, media: Any) -> None:
    """A free-form media message's object: exactly one of id/link, and its extras."""
    if not isinstance(media, dict):
        raise SimError(131008, f"Parameter '{kind}' is required")
    if ("id" in media) == ("link" in media):
        raise SimError(131009, f"{kind} needs exactly one of 'id' or 'link'")
    if "link" in media and not re.match(r"^https?://", str(media["link"])):
        raise SimError(131009, f"{kind}.link must be an http(s) URL")
    if "caption" in media and kind not in ("image", "video", "document"):
        raise SimError(131009, f"{kind} messages take no caption")
    if "filename" in media and kind != "document":
        raise SimError(131009, "only documents take a filename")
    if len(str(media.get("caption", ""))) > 1024:
        raise SimError(131009, f"{kind}.caption is longer than 1024 characters")


def _media_ids(body: dict[str, Any]) -> list[str]:
    """Media ids a template send's header parameters use (carousel cards included)."""
    ids = []
    stack: list[Any] = [body.get("template")]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for kind in MEDIA_TYPES:
                media = item.get(kind)
                if item.get("type") == kind and isinstance(media, dict) and "id" in media:
                    ids.append(str(media["id"]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return ids
