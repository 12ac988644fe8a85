"""Template parameters: parsing them from Meta's components, rendering a send, previewing text.

Parameter keys (what a send needs, and what CSV columns map onto):
``header.1`` for a text header variable or a media header (its value is the media's
https link), ``header.<name>`` for a named template's text header, ``header.latitude``
and ``header.longitude`` for a location header, ``body.1``, ``body.2``, ... or
``body.<name>``, and ``button.<index>`` for the suffix of a dynamic URL button.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

_VARIABLE = re.compile(r"{{\s*([A-Za-z0-9_]+)\s*}}")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
# Optional extras of a location header; sent when given.
LOCATION_OPTIONAL = ("header.name", "header.address")
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


def _url_buttons(components: Sequence[Mapping[str, Any]]) -> list[int]:
    buttons = _component(components, "BUTTONS")
    if buttons is None:
        return []
    return [
        index
        for index, button in enumerate(buttons.get("buttons") or [])
        if _upper(button.get("type")) == "URL" and _VARIABLE.search(str(button.get("url") or ""))
    ]


def parse_parameters(components: Sequence[Mapping[str, Any]], parameter_format: str) -> list[str]:
    """The parameters a send of this template needs, in send order: header, body, buttons."""
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
    body = _component(components, "BODY")
    if body is not None:
        parameters += [f"body.{name}" for name in _variables(str(body.get("text") or ""), named)]
    parameters += [f"button.{index}" for index in _url_buttons(components)]
    return parameters


def required_parameters(template: TemplateLike) -> list[str]:
    """What every send of ``template`` needs a value for."""
    return list(template.parameters)


def unused_values(template: TemplateLike, values: Mapping[str, Any]) -> list[str]:
    """Keys of ``values`` that ``template`` does not use (ignored by render_components)."""
    known = set(template.parameters)
    if header_format_of(template.components) == "LOCATION":
        known.update(LOCATION_OPTIONAL)
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


def render_components(template: TemplateLike, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Graph API ``components`` of a send of ``template`` with ``values``.

    Keys of ``values`` are parameter keys (see the module docstring); values are
    stripped; keys the template does not use are ignored. Raises RenderError naming
    every missing, blank or bad value at once.
    """
    components = template.components or []
    named = _upper(template.parameter_format) == "NAMED"
    problems: dict[str, str] = {}
    rendered: list[dict[str, Any]] = []

    header = _component(components, "HEADER")
    header_format = header_format_of(components)
    if header is not None and header_format == "TEXT":
        parameters = []
        for name in _variables(str(header.get("text") or ""), named):
            key = f"header.{name}"
            value = _clean(values, key, problems)
            if value is not None:
                _check_text(key, value, problems)
                parameters.append(_text_parameter(value, name, named))
        if parameters:
            rendered.append({"type": "header", "parameters": parameters})
        filled = _fill(str(header.get("text") or ""), "header", values)
        if len(filled) > MAX_HEADER_LENGTH and not problems:
            problems["header"] = (
                f"text is {len(filled)} characters with these values; the limit is "
                f"{MAX_HEADER_LENGTH}"
            )
    elif header_format in MEDIA_FORMATS:
        value = _clean(values, "header.1", problems)
        if value is not None:
            _check_link("header.1", value, problems)
            kind = header_format.lower()
            rendered.append(
                {"type": "header", "parameters": [{"type": kind, kind: {"link": value}}]}
            )
    elif header_format == "LOCATION":
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
        rendered.append(
            {"type": "header", "parameters": [{"type": "location", "location": location}]}
        )

    body = _component(components, "BODY")
    if body is not None:
        text = str(body.get("text") or "")
        parameters = []
        for name in _variables(text, named):
            key = f"body.{name}"
            value = _clean(values, key, problems)
            if value is not None:
                _check_text(key, value, problems)
                parameters.append(_text_parameter(value, name, named))
        if parameters:
            rendered.append({"type": "body", "parameters": parameters})
        filled = _fill(text, "body", values)
        if len(filled) > MAX_BODY_LENGTH and "body" not in problems:
            problems["body"] = (
                f"text is {len(filled)} characters with these values; the limit is "
                f"{MAX_BODY_LENGTH}"
            )

    for index in _url_buttons(components):
        key = f"button.{index}"
        value = _clean(values, key, problems)
        if value is None:
            continue
        if re.search(r"\s", value):
            problems[key] = "must not contain spaces (it is the end of a link)"
            continue
        rendered.append(
            {
                "type": "button",
                "sub_type": "url",
                "index": str(index),
                "parameters": [{"type": "text", "text": value}],
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
    body = _component(components, "BODY")
    if body is not None:
        example = body.get("example") or {}
        if named:
            for item in example.get("body_text_named_params") or []:
                values[f"body.{item.get('param_name')}"] = str(item.get("example", ""))
        else:
            rows = example.get("body_text") or [[]]
            names = _variables(str(body.get("text") or ""), named)
            for name, value in zip(names, rows[0] if rows else [], strict=False):
                values[f"body.{name}"] = str(value)
    buttons = _component(components, "BUTTONS")
    for index in _url_buttons(components):
        button = (buttons or {}).get("buttons", [])[index]
        examples = button.get("example") or []
        url = str(button.get("url") or "")
        prefix = url[: url.find("{{")]
        if examples and str(examples[0]).startswith(prefix):
            values[f"button.{index}"] = str(examples[0])[len(prefix) :]
    return values


def surely_renders(template: TemplateLike) -> Callable[[Mapping[str, Any]], bool]:
    """A cheap test that, when it says True, render_components(template, values) succeeds.

    Kept next to the rules it shortcuts (a property test in
    tests/campaigns/test_import.py holds the two together). render_components
    cost about 6 s of a 1M-row import, on the thread that writes; the test
    costs a twentieth of that. It says True only for a
    template without a header or link buttons (its only parameters are body
    variables) when every body value is present, not blank, free of new lines,
    tabs and runs of 5 spaces, and the filled body cannot pass MAX_BODY_LENGTH
    (each variable, at most one per "{{", adds at most the longest value).
    Anything else (False) goes through render_components, which gives the reasons.
    """
    never = lambda values: False  # noqa: E731
    components = template.components or []
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        return never
    parameters = parse_parameters(components, template.parameter_format)
    has_header = any(str(c.get("type") or "").upper() == "HEADER" for c in components)
    if has_header or not all(p.startswith("body.") for p in parameters):
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
