"""Template parameters: parsing them from Meta's components, rendering a send, previewing text.

Parameter keys (what a send needs, and what CSV columns map onto; docs/templates.md has
the table): ``header.1`` for a text header variable or a media header (IMAGE, VIDEO,
DOCUMENT, GIF: the media's https link), ``header.<name>`` for a named template's text
header, ``header.latitude``/``header.longitude`` for a location header,
``header.product``/``header.catalog_id`` for a PRODUCT header, ``body.1``, ``body.2``,
... or ``body.<name>``, ``button.<index>`` for the suffix of a dynamic URL button or the
code of a COPY_CODE button, ``button.<index>.sections`` for an MPM button's products,
``lto.expiration`` for a limited-time offer's expiry, and per carousel card (0-based,
as Meta's ``card_index``) ``card.<i>.header``, ``card.<i>.body.<n>`` and
``card.<i>.button.<index>``. Optional keys (sent when given): ``header.filename``,
``header.name``/``header.address`` (location), ``button.<index>.thumbnail`` (MPM,
CATALOG) and ``button.<index>`` of a FLOW button (its ``flow_token``).

Shapes the product cannot fill (see ``unsendable_reason``) are marked at sync and
refused by pre-flight instead of failing row by row at Meta.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

_VARIABLE = re.compile(r"{{\s*([A-Za-z0-9_]+)\s*}}")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT", "GIF")
HEADER_FORMATS = (*MEDIA_FORMATS, "TEXT", "LOCATION", "PRODUCT")
# Optional extras of a location header; sent when given.
LOCATION_OPTIONAL = ("header.name", "header.address")
# Buttons that need nothing from a send, and those the renderer fills.
STATIC_BUTTONS = ("QUICK_REPLY", "PHONE_NUMBER", "VOICE_CALL", "SPM")
FILLED_BUTTONS = ("URL", "COPY_CODE", "OTP", "FLOW", "MPM", "CATALOG")
COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS", "CAROUSEL", "LIMITED_TIME_OFFER")
# Meta's limits: a carousel has 2 to 10 cards; an MPM shows up to 30 products in up to
# 10 sections (titles up to 24 characters); coupon and one-time codes up to 15 characters.
CAROUSEL_CARDS = (2, 10)
MPM_MAX_PRODUCTS = 30
MPM_MAX_SECTIONS = 10
MPM_TITLE_LENGTH = 24
CODE_LENGTH = 15
# Meta's own default flow_token when a send gives none.
DEFAULT_FLOW_TOKEN = "unused"  # noqa: S105 - not a secret: Meta's documented default
# Meta's limits: body text once filled in (132005), and a text header.
MAX_BODY_LENGTH = 1024
MAX_HEADER_LENGTH = 60
# Meta refuses text parameters with new lines, tabs or more than 4 consecutive spaces.
_BAD_SPACING = re.compile(r" {5,}")


class RenderError(ValueError):
    """Values that cannot render a template; ``problems`` maps each parameter to what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems.items()))


class TemplateLike(Protocol):
    components: list[dict[str, Any]]
    parameter_format: str
    parameters: list[str]


def _upper(value: Any) -> str:
    return str(value or "").upper()


def _variables(text: str, named: bool) -> list[str]:
    """Distinct variables of ``text``: numeric order when positional, first use when named."""
    found = list(dict.fromkeys(_VARIABLE.findall(text or "")))
    if not named and all(name.isdigit() for name in found):
        found.sort(key=int)
    return found


def _component(components: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in components or () if _upper(c.get("type")) == kind), None)


def header_format_of(components: Sequence[Mapping[str, Any]]) -> str:
    """The header's format ("" without a header); a header without one is TEXT."""
    header = _component(components, "HEADER")
    if header is None:
        return ""
    return _upper(header.get("format")) or "TEXT"


def _buttons(components: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    buttons = _component(components, "BUTTONS")
    if buttons is None:
        return []
    return [b for b in buttons.get("buttons") or [] if isinstance(b, Mapping)]


def _url_buttons(components: Sequence[Mapping[str, Any]]) -> list[int]:
    return [
        index
        for index, button in enumerate(_buttons(components))
        if _upper(button.get("type")) == "URL" and _VARIABLE.search(str(button.get("url") or ""))
    ]


def _buttons_of(components: Sequence[Mapping[str, Any]], kind: str) -> list[int]:
    return [i for i, b in enumerate(_buttons(components)) if _upper(b.get("type")) == kind]


def _cards(components: Sequence[Mapping[str, Any]]) -> list[Sequence[Mapping[str, Any]]]:
    carousel = _component(components, "CAROUSEL")
    if carousel is None:
        return []
    return [
        [c for c in card.get("components") or [] if isinstance(c, Mapping)]
        for card in carousel.get("cards") or []
        if isinstance(card, Mapping)
    ]


def _lto_expires(components: Sequence[Mapping[str, Any]]) -> bool:
    offer = _component(components, "LIMITED_TIME_OFFER")
    if offer is None:
        return False
    return bool((offer.get("limited_time_offer") or {}).get("has_expiration"))


def unsendable_reason(components: Sequence[Mapping[str, Any]], parameter_format: str) -> str:
    """Why the product cannot send a template of these components ("" if it can).

    Meta has shapes the renderer does not fill (a new button type, a product
    carousel, ...): they are marked at sync and refused by pre-flight, never sent
    to fail row by row.
    """
    if not isinstance(components, Sequence) or not all(isinstance(c, Mapping) for c in components):
        return "its components are not a list of objects"
    for component in components:
        kind = _upper(component.get("type"))
        if kind not in COMPONENT_TYPES:
            return f"it has a {kind or 'typeless'} component, which the product cannot fill"
    header_format = header_format_of(components)
    if header_format and header_format not in HEADER_FORMATS:
        return f"its header is {header_format}, which the product cannot fill"
    for index, button in enumerate(_buttons(components)):
        kind = _upper(button.get("type"))
        if kind not in STATIC_BUTTONS + FILLED_BUTTONS:
            return f"button {index} is {kind or 'typeless'}, which the product cannot fill"
        if kind == "URL" and len(_VARIABLE.findall(str(button.get("url") or ""))) > 1:
            return f"button {index} has more than one variable in its link"
    if _buttons_of(components, "OTP"):
        body = _component(components, "BODY")
        if body is None or len(_variables(str(body.get("text") or ""), False)) != 1:
            return "its one-time-password button needs a body with exactly one variable"
    cards = _cards(components)
    if _component(components, "CAROUSEL") is not None:
        low, high = CAROUSEL_CARDS
        if not low <= len(cards) <= high:
            return f"its carousel has {len(cards)} cards; Meta sends {low} to {high}"
        for number, card in enumerate(cards):
            card_format = header_format_of(card)
            if card_format not in ("IMAGE", "VIDEO"):
                return (
                    f"carousel card {number} has a {card_format or 'missing'} header; the "
                    "product sends image and video cards only"
                )
            for component in card:
                if _upper(component.get("type")) not in ("HEADER", "BODY", "BUTTONS"):
                    return f"carousel card {number} has a {_upper(component.get('type'))} part"
            for index, button in enumerate(_buttons(card)):
                if _upper(button.get("type")) not in ("QUICK_REPLY", "URL", "PHONE_NUMBER"):
                    return f"carousel card {number} button {index} is {_upper(button.get('type'))}"
    return ""


def parse_parameters(components: Sequence[Mapping[str, Any]], parameter_format: str) -> list[str]:
    """The parameters a send of this template needs, in send order: header, body,
    limited-time offer, buttons, carousel cards."""
    named = _upper(parameter_format) == "NAMED"
    parameters: list[str] = []
    header = _component(components, "HEADER")
    header_format = header_format_of(components)
    if header is not None:
        if header_format == "TEXT":
            names = _variables(str(header.get("text") or ""), named)
            parameters += [f"header.{name}" for name in names]
        elif header_format in MEDIA_FORMATS:
            parameters.append("header.1")
        elif header_format == "LOCATION":
            parameters += ["header.latitude", "header.longitude"]
        elif header_format == "PRODUCT":
            parameters += ["header.product", "header.catalog_id"]
    body = _component(components, "BODY")
    if body is not None:
        parameters += [f"body.{name}" for name in _variables(str(body.get("text") or ""), named)]
    if _lto_expires(components):
        parameters.append("lto.expiration")
    for index, button in enumerate(_buttons(components)):
        kind = _upper(button.get("type"))
        dynamic_url = kind == "URL" and _VARIABLE.search(str(button.get("url") or ""))
        if dynamic_url or kind == "COPY_CODE":
            parameters.append(f"button.{index}")
        elif kind == "MPM":
            parameters.append(f"button.{index}.sections")
    for number, card in enumerate(_cards(components)):
        if header_format_of(card) in MEDIA_FORMATS:
            parameters.append(f"card.{number}.header")
        card_body = _component(card, "BODY")
        if card_body is not None:
            parameters += [
                f"card.{number}.body.{name}"
                for name in _variables(str(card_body.get("text") or ""), named)
            ]
        parameters += [f"card.{number}.button.{index}" for index in _url_buttons(card)]
    return parameters


def required_parameters(template: TemplateLike) -> list[str]:
    """What every send of ``template`` needs a value for."""
    return list(template.parameters)


def optional_parameters(template: TemplateLike) -> list[str]:
    """Keys a send of ``template`` uses when given and does without otherwise."""
    components = template.components or []
    optional: list[str] = []
    header_format = header_format_of(components)
    if header_format == "LOCATION":
        optional += list(LOCATION_OPTIONAL)
    elif header_format == "DOCUMENT":
        optional.append("header.filename")
    for index in _buttons_of(components, "MPM") + _buttons_of(components, "CATALOG"):
        optional.append(f"button.{index}.thumbnail")
    optional += [f"button.{index}" for index in _buttons_of(components, "FLOW")]
    return optional


def column_aliases(template: TemplateLike) -> dict[str, list[str]]:
    """Other CSV column names a parameter is read from (beyond its own key)."""
    components = template.components or []
    aliases: dict[str, list[str]] = {}
    codes = _buttons_of(components, "COPY_CODE")
    for index in codes:
        aliases[f"button.{index}"] = ["coupon_code", "coupon"] if len(codes) == 1 else []
    for index in _buttons_of(components, "FLOW"):
        aliases[f"button.{index}"] = ["flow_token"]
    for index in _buttons_of(components, "MPM"):
        aliases[f"button.{index}.sections"] = ["products", "sections"]
        aliases[f"button.{index}.thumbnail"] = ["thumbnail"]
    for index in _buttons_of(components, "CATALOG"):
        aliases[f"button.{index}.thumbnail"] = ["thumbnail"]
    if _lto_expires(components):
        aliases["lto.expiration"] = ["expiration", "offer_expiration", "expires_at"]
    if header_format_of(components) == "DOCUMENT":
        aliases["header.filename"] = ["filename"]
    if header_format_of(components) == "PRODUCT":
        aliases["header.product"] = ["product", "product_retailer_id", "sku"]
        aliases["header.catalog_id"] = ["catalog_id"]
    return aliases


def unused_values(template: TemplateLike, values: Mapping[str, Any]) -> list[str]:
    """Keys of ``values`` that ``template`` does not use (ignored by render_components)."""
    known = set(template.parameters) | set(optional_parameters(template))
    return sorted(key for key in values if key not in known)


def _clean(values: Mapping[str, Any], key: str, problems: dict[str, str]) -> str | None:
    raw = values.get(key)
    if raw is None:
        problems[key] = "missing value"
        return None
    value = str(raw).strip()
    if not value:
        problems[key] = "blank value"
        return None
    return value


def _check_text(key: str, value: str, problems: dict[str, str]) -> None:
    if "\n" in value or "\r" in value or "\t" in value:
        problems[key] = "must not contain new lines or tabs"
    elif _BAD_SPACING.search(value):
        problems[key] = "must not contain more than 4 consecutive spaces"


def _check_link(key: str, value: str, problems: dict[str, str]) -> None:
    if not re.match(r"^https?://[^\s/]+\.[^\s]+$", value):
        problems[key] = "must be an http(s):// link to the media"


def _check_coordinate(key: str, value: str, limit: int, problems: dict[str, str]) -> None:
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not -limit <= number <= limit:
        problems[key] = f"must be a number between -{limit} and {limit}"


def _fill(text: str, prefix: str, values: Mapping[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        raw = values.get(f"{prefix}.{match.group(1)}")
        value = str(raw).strip() if raw is not None else ""
        return value or match.group(0)

    return _VARIABLE.sub(replace, text)


def _text_parameter(value: str, name: str, named: bool) -> dict[str, str]:
    parameter = {"type": "text", "text": value}
    if named:
        parameter["parameter_name"] = name
    return parameter


def _media_parameter(kind: str, link: str, filename: str | None = None) -> dict[str, Any]:
    media: dict[str, str] = {"link": link}
    if filename:
        media["filename"] = filename
    return {"type": kind, kind: media}


def _document_filename(values: Mapping[str, Any], link: str, problems: dict[str, str]) -> str:
    """The given ``header.filename``, else the link's last path segment if it has an
    extension: Meta shows an untitled file (and refuses some sends) without one."""
    given = str(values.get("header.filename") or "").strip()
    if given:
        if "/" in given or "\\" in given or len(given) > 240:
            problems["header.filename"] = "must be a file name (no folders, at most 240 characters)"
        return given
    name = unquote(urlparse(link).path.rsplit("/", 1)[-1])
    if "." in name.strip(".") and len(name) <= 240:
        return name
    problems["header.filename"] = (
        "missing value: the link does not end in a file name, so give one (e.g. menu.pdf)"
    )
    return ""


def _render_text_parameters(
    text: str, prefix: str, values: Mapping[str, Any], named: bool, problems: dict[str, str]
) -> list[dict[str, str]]:
    parameters = []
    for name in _variables(text, named):
        key = f"{prefix}.{name}"
        value = _clean(values, key, problems)
        if value is not None:
            _check_text(key, value, problems)
            parameters.append(_text_parameter(value, name, named))
    return parameters


def _render_header(
    components: Sequence[Mapping[str, Any]],
    values: Mapping[str, Any],
    named: bool,
    problems: dict[str, str],
) -> dict[str, Any] | None:
    header = _component(components, "HEADER")
    header_format = header_format_of(components)
    if header is None:
        return None
    if header_format == "TEXT":
        text = str(header.get("text") or "")
        parameters = _render_text_parameters(text, "header", values, named, problems)
        filled = _fill(text, "header", values)
        if len(filled) > MAX_HEADER_LENGTH and not problems:
            problems["header"] = (
                f"text is {len(filled)} characters with these values; the limit is "
                f"{MAX_HEADER_LENGTH}"
            )
        return {"type": "header", "parameters": parameters} if parameters else None
    if header_format in MEDIA_FORMATS:
        value = _clean(values, "header.1", problems)
        if value is None:
            return None
        _check_link("header.1", value, problems)
        kind = header_format.lower()
        filename = _document_filename(values, value, problems) if kind == "document" else None
        return {"type": "header", "parameters": [_media_parameter(kind, value, filename)]}
    if header_format == "LOCATION":
        latitude = _clean(values, "header.latitude", problems)
        longitude = _clean(values, "header.longitude", problems)
        if latitude is not None:
            _check_coordinate("header.latitude", latitude, 90, problems)
        if longitude is not None:
            _check_coordinate("header.longitude", longitude, 180, problems)
        location = {"latitude": latitude, "longitude": longitude}
        for key in LOCATION_OPTIONAL:
            extra = str(values.get(key) or "").strip()
            if extra:
                location[key.split(".", 1)[1]] = extra
        return {"type": "header", "parameters": [{"type": "location", "location": location}]}
    # PRODUCT (a single-product message): which product of which catalog.
    product = _clean(values, "header.product", problems)
    catalog = _clean(values, "header.catalog_id", problems)
    if catalog is not None and not catalog.isdigit():
        problems["header.catalog_id"] = "must be the catalog's numeric id"
    return {
        "type": "header",
        "parameters": [
            {"type": "product", "product": {"product_retailer_id": product, "catalog_id": catalog}}
        ],
    }


def _render_body(
    body: Mapping[str, Any] | None,
    prefix: str,
    values: Mapping[str, Any],
    named: bool,
    problems: dict[str, str],
) -> dict[str, Any] | None:
    if body is None:
        return None
    text = str(body.get("text") or "")
    parameters = _render_text_parameters(text, prefix, values, named, problems)
    filled = _fill(text, prefix, values)
    if len(filled) > MAX_BODY_LENGTH and prefix not in problems:
        problems[prefix] = (
            f"text is {len(filled)} characters with these values; the limit is {MAX_BODY_LENGTH}"
        )
    return {"type": "body", "parameters": parameters} if parameters else None


def _expiration_ms(key: str, value: str, problems: dict[str, str]) -> int | None:
    """An offer's expiry as epoch milliseconds, from epoch ms/seconds or ISO 8601."""
    if value.isdigit():
        number = int(value)
        millis = number if number >= 10**12 else number * 1000
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems[key] = "must be a date and time (2026-12-31T23:59:00+00:00) or epoch ms"
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        millis = int(moment.timestamp() * 1000)
    if millis <= datetime.now(UTC).timestamp() * 1000:
        problems[key] = "the offer has already expired"
        return None
    return millis


def _sections(key: str, value: str, problems: dict[str, str]) -> list[dict[str, Any]]:
    """MPM product sections from "Title: id1, id2; Other title: id3"."""
    sections = []
    total = 0
    for part in (p.strip() for p in value.split(";")):
        if not part:
            continue
        title, colon, ids = part.partition(":")
        products = [i.strip() for i in ids.split(",") if i.strip()]
        if not colon or not title.strip() or not products:
            problems[key] = 'must read "Section title: product_id, product_id; Other title: ..."'
            return []
        if len(title.strip()) > MPM_TITLE_LENGTH:
            problems[key] = f"section title {title.strip()!r} is over {MPM_TITLE_LENGTH} characters"
            return []
        total += len(products)
        sections.append(
            {
                "title": title.strip(),
                "product_items": [{"product_retailer_id": p} for p in products],
            }
        )
    if len(sections) > MPM_MAX_SECTIONS or total > MPM_MAX_PRODUCTS:
        problems[key] = (
            f"{len(sections)} sections and {total} products; Meta shows at most "
            f"{MPM_MAX_SECTIONS} sections and {MPM_MAX_PRODUCTS} products"
        )
        return []
    return sections


def _check_code(key: str, value: str, problems: dict[str, str]) -> None:
    if not re.fullmatch(r"[A-Za-z0-9]+", value) or len(value) > CODE_LENGTH:
        problems[key] = f"must be letters and digits only, at most {CODE_LENGTH} characters"


def _render_buttons(
    buttons: Sequence[Mapping[str, Any]],
    prefix: str,
    values: Mapping[str, Any],
    problems: dict[str, str],
    *,
    otp_code: str | None = None,
) -> list[dict[str, Any]]:
    rendered = []
    for index, button in enumerate(buttons):
        kind = _upper(button.get("type"))
        key = f"{prefix}.{index}"
        head = {"type": "button", "sub_type": kind.lower(), "index": str(index)}
        if kind == "URL" and _VARIABLE.search(str(button.get("url") or "")):
            value = _clean(values, key, problems)
            if value is None:
                continue
            if re.search(r"\s", value):
                problems[key] = "must not contain spaces (it is the end of a link)"
                continue
            rendered.append({**head, "parameters": [{"type": "text", "text": value}]})
        elif kind == "COPY_CODE":
            value = _clean(values, key, problems)
            if value is None:
                continue
            _check_code(key, value, problems)
            rendered.append({**head, "parameters": [{"type": "coupon_code", "coupon_code": value}]})
        elif kind == "OTP" and otp_code is not None:
            # Meta sends the code of an authentication template's copy-code, one-tap or
            # zero-tap button as the suffix of a URL button.
            head["sub_type"] = "url"
            rendered.append({**head, "parameters": [{"type": "text", "text": otp_code}]})
        elif kind == "FLOW":
            token = str(values.get(key) or "").strip() or DEFAULT_FLOW_TOKEN
            rendered.append(
                {**head, "parameters": [{"type": "action", "action": {"flow_token": token}}]}
            )
        elif kind == "MPM":
            sections_key = f"{key}.sections"
            value = _clean(values, sections_key, problems)
            sections = _sections(sections_key, value, problems) if value is not None else []
            if not sections:
                continue
            thumbnail = str(values.get(f"{key}.thumbnail") or "").strip()
            first = sections[0]["product_items"][0]["product_retailer_id"]
            action = {"thumbnail_product_retailer_id": thumbnail or first, "sections": sections}
            rendered.append({**head, "parameters": [{"type": "action", "action": action}]})
        elif kind == "CATALOG":
            thumbnail = str(values.get(f"{key}.thumbnail") or "").strip()
            button_out: dict[str, Any] = dict(head)
            if thumbnail:
                button_out["parameters"] = [
                    {"type": "action", "action": {"thumbnail_product_retailer_id": thumbnail}}
                ]
            rendered.append(button_out)
    return rendered


def _render_card(
    number: int,
    card: Sequence[Mapping[str, Any]],
    values: Mapping[str, Any],
    named: bool,
    problems: dict[str, str],
) -> dict[str, Any]:
    prefix = f"card.{number}"
    parts: list[dict[str, Any]] = []
    kind = header_format_of(card).lower()
    link = _clean(values, f"{prefix}.header", problems)
    if link is not None:
        _check_link(f"{prefix}.header", link, problems)
        parts.append({"type": "header", "parameters": [_media_parameter(kind, link)]})
    body = _render_body(_component(card, "BODY"), f"{prefix}.body", values, named, problems)
    if body is not None:
        parts.append(body)
    parts += _render_buttons(_buttons(card), f"{prefix}.button", values, problems)
    return {"card_index": number, "components": parts}


def render_components(template: TemplateLike, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Graph API ``components`` of a send of ``template`` with ``values``.

    Keys of ``values`` are parameter keys (see the module docstring); values are
    stripped; keys the template does not use are ignored. Raises RenderError naming
    every missing, blank or bad value at once, or (key ``template``) why a template
    the product cannot send (``unsendable_reason``) cannot be sent.
    """
    components = template.components or []
    reason = unsendable_reason(components, template.parameter_format)
    if reason:
        raise RenderError({"template": f"cannot be sent by this product: {reason}"})
    named = _upper(template.parameter_format) == "NAMED"
    problems: dict[str, str] = {}
    rendered: list[dict[str, Any]] = []

    header = _render_header(components, values, named, problems)
    if header is not None:
        rendered.append(header)
    body_component = _component(components, "BODY")
    body = _render_body(body_component, "body", values, named, problems)
    if body is not None:
        rendered.append(body)

    if _lto_expires(components):
        raw = _clean(values, "lto.expiration", problems)
        millis = _expiration_ms("lto.expiration", raw, problems) if raw is not None else None
        if millis is not None:
            offer = {"expiration_time_ms": millis}
            rendered.append(
                {
                    "type": "limited_time_offer",
                    "parameters": [{"type": "limited_time_offer", "limited_time_offer": offer}],
                }
            )

    otp_code = None
    if _buttons_of(components, "OTP") and body is not None:
        otp_code = body["parameters"][0]["text"]
        code_key = f"body.{_variables(str(body_component.get('text')), named)[0]}"
        _check_code(code_key, otp_code, problems)
    rendered += _render_buttons(_buttons(components), "button", values, problems, otp_code=otp_code)

    cards = _cards(components)
    if cards:
        rendered.append(
            {
                "type": "carousel",
                "cards": [
                    _render_card(number, card, values, named, problems)
                    for number, card in enumerate(cards)
                ],
            }
        )

    if problems:
        raise RenderError(problems)
    return rendered


def preview_text(template: TemplateLike, values: Mapping[str, Any]) -> str:
    """The text a recipient reads: header, body and footer, separated by blank lines.

    Variables without a value stay as written (``{{1}}``); a media or location
    header shows as ``[IMAGE]``, ``[LOCATION]``, ...
    """
    components = template.components or []
    parts: list[str] = []
    header = _component(components, "HEADER")
    if header is not None:
        header_format = header_format_of(components)
        if header_format == "TEXT":
            parts.append(_fill(str(header.get("text") or ""), "header", values))
        else:
            parts.append(f"[{header_format}]")
    body = _component(components, "BODY")
    if body is not None:
        parts.append(_fill(str(body.get("text") or ""), "body", values))
    footer = _component(components, "FOOTER")
    if footer is not None:
        parts.append(str(footer.get("text") or ""))
    return "\n\n".join(part for part in parts if part)


def _example_body(
    body: Mapping[str, Any] | None, prefix: str, named: bool, values: dict[str, str]
) -> None:
    if body is None:
        return
    example = body.get("example") or {}
    if named:
        for item in example.get("body_text_named_params") or []:
            values[f"{prefix}.{item.get('param_name')}"] = str(item.get("example", ""))
    else:
        rows = example.get("body_text") or [[]]
        names = _variables(str(body.get("text") or ""), named)
        for name, value in zip(names, rows[0] if rows else [], strict=False):
            values[f"{prefix}.{name}"] = str(value)


def _example_buttons(
    buttons: Sequence[Mapping[str, Any]], prefix: str, values: dict[str, str]
) -> None:
    for index, button in enumerate(buttons):
        kind = _upper(button.get("type"))
        examples = button.get("example") or []
        if isinstance(examples, str):
            examples = [examples]
        if kind == "URL" and _VARIABLE.search(str(button.get("url") or "")):
            url = str(button.get("url") or "")
            start = url[: url.find("{{")]
            if examples and str(examples[0]).startswith(start):
                values[f"{prefix}.{index}"] = str(examples[0])[len(start) :]
        elif kind == "COPY_CODE" and examples:
            values[f"{prefix}.{index}"] = str(examples[0])


def example_values(template: TemplateLike) -> dict[str, str]:
    """Values from Meta's own ``example`` fields, for previews; missing examples are left out."""
    components = template.components or []
    named = _upper(template.parameter_format) == "NAMED"
    values: dict[str, str] = {}
    header = _component(components, "HEADER")
    if header is not None:
        example = header.get("example") or {}
        header_format = header_format_of(components)
        if header_format == "TEXT":
            names = _variables(str(header.get("text") or ""), named)
            if named:
                for item in example.get("header_text_named_params") or []:
                    values[f"header.{item.get('param_name')}"] = str(item.get("example", ""))
            else:
                for name, value in zip(names, example.get("header_text") or [], strict=False):
                    values[f"header.{name}"] = str(value)
        elif header_format in MEDIA_FORMATS and example.get("header_handle"):
            values["header.1"] = str(example["header_handle"][0])
    _example_body(_component(components, "BODY"), "body", named, values)
    _example_buttons(_buttons(components), "button", values)
    for number, card in enumerate(_cards(components)):
        card_header = _component(card, "HEADER")
        handles = ((card_header or {}).get("example") or {}).get("header_handle") or []
        if handles:
            values[f"card.{number}.header"] = str(handles[0])
        _example_body(_component(card, "BODY"), f"card.{number}.body", named, values)
        _example_buttons(_buttons(card), f"card.{number}.button", values)
    return values


def surely_renders(template: TemplateLike) -> Callable[[Mapping[str, Any]], bool]:
    """A cheap test that, when it says True, render_components(template, values) succeeds.

    Kept next to the rules it shortcuts (a property test in
    tests/campaigns/test_import.py holds the two together). render_components
    cost about 6 s of a 1M-row import, on the thread that writes; the test
    costs a twentieth of that. It says True only for a
    template of a body, a footer and quick-reply, phone or static link buttons (its
    only parameters are body variables) when every body value is present, not blank, free of new lines,
    tabs and runs of 5 spaces, and the filled body cannot pass MAX_BODY_LENGTH
    (each variable, at most one per "{{", adds at most the longest value).
    Anything else (False) goes through render_components, which gives the reasons.
    """
    never = lambda values: False  # noqa: E731
    components = template.components or []
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        return never
    parameters = parse_parameters(components, template.parameter_format)
    plain = all(_upper(c.get("type")) in ("BODY", "FOOTER", "BUTTONS") for c in components)
    plain = plain and all(
        _upper(b.get("type")) in ("QUICK_REPLY", "URL", "PHONE_NUMBER")
        for b in _buttons(components)
    )
    if not plain or not all(p.startswith("body.") for p in parameters):
        return never
    body = next((c for c in components if str(c.get("type") or "").upper() == "BODY"), None)
    text = str(body.get("text") or "") if body is not None else ""
    variables = text.count("{{")
    room = MAX_BODY_LENGTH - len(text)

    def renders(values: Mapping[str, Any]) -> bool:
        longest = 0
        for key in parameters:
            value = values.get(key)
            if (
                not value
                or value != value.strip()
                or "\n" in value
                or "\r" in value
                or "\t" in value
                or "     " in value
            ):
                return False
            longest = max(longest, len(value))
        return variables * longest <= room

    return renders
