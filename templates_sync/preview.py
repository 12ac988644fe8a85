"""What a recipient sees of a template: the parts of a WhatsApp message bubble, for previews.

The admin's template page, the new-campaign wizard and the inbox's template picker
show a template through ``template_preview`` and the include
``templates_sync/_preview.html`` (escaped text only: template text comes from Meta
and values from uploaded files).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from templates_sync.rendering import (
    TemplateLike,
    _component,
    _fill,
    _upper,
    example_values,
    header_format_of,
)


class PreviewHeader(TypedDict):
    format: str
    text: str


class PreviewButton(TypedDict):
    type: str
    text: str


class Preview(TypedDict):
    header: PreviewHeader | None
    body: str
    footer: str
    buttons: list[PreviewButton]


def template_preview(template: TemplateLike, values: Mapping[str, Any] | None = None) -> Preview:
    """The bubble of ``template`` filled with ``values``.

    ``values`` are keyed by parameter key (``body.1``, ``body.first_name``,
    ``header.1``, ...: see templates_sync.rendering); a key without a value (or a
    blank one) takes the template's own example from Meta, and a variable with
    neither stays as written (``{{1}}``). ``header`` is None without a header;
    its ``text`` is the filled text of a TEXT header and "" for media and location
    headers (the include shows a placeholder: media links are never loaded).
    ``buttons`` are in Meta's order with their labels.
    """
    filled = example_values(template)
    for key, value in (values or {}).items():
        if value is not None and str(value).strip():
            filled[key] = str(value).strip()
    components = template.components or []

    header: PreviewHeader | None = None
    header_component = _component(components, "HEADER")
    if header_component is not None:
        header_format = header_format_of(components)
        text = ""
        if header_format == "TEXT":
            text = _fill(str(header_component.get("text") or ""), "header", filled)
        header = {"format": header_format, "text": text}

    body_component = _component(components, "BODY")
    body = _fill(str(body_component.get("text") or ""), "body", filled) if body_component else ""
    footer_component = _component(components, "FOOTER")
    footer = str(footer_component.get("text") or "") if footer_component else ""
    buttons_component = _component(components, "BUTTONS") or {}
    buttons: list[PreviewButton] = [
        {"type": _upper(button.get("type")), "text": str(button.get("text") or "")}
        for button in buttons_component.get("buttons") or []
        if isinstance(button, Mapping)
    ]
    return {"header": header, "body": body, "footer": footer, "buttons": buttons}
