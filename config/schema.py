"""The OpenAPI schema generator: drf-spectacular's, plus what every operation can answer.

Views document their success answers (and anything special) with ``extend_schema``;
the errors that follow from the API's own rules are added here, once:

- 400 ``ValidationError`` for every operation: any query string or body can be
  refused by the input policy (config.api), and DRF's answer names the field;
- 401 and 403 ``ErrorDetail`` where the view needs a user;
- 404 ``ErrorDetail`` where the path names an object (also another workspace's),
  or the operation takes a ``page`` (DRF answers 404 for a page past the end);
- 409 ``ErrorDetail`` for a write to a named object: the object's state may not
  allow it (api.md: "an action that the state does not allow is a 409");
- 415 ``ErrorDetail`` where the operation takes a body: one in a media type no
  parser reads (or without a Content-Type) is refused as such;
- 429 ``ErrorDetail`` where the view is throttled.

Request bodies also say what the serializers refuse: a required string that is
blank after trimming, an empty list where one item is needed.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent, build_media_type_object
from rest_framework import permissions, serializers

_ERROR_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
_VALIDATION_ERROR = {
    "type": "object",
    "description": (
        "The refused fields, each with its messages (a nested object or a list of them "
        "for nested input); non_field_errors for the request as a whole; detail for a "
        "body that could not be parsed."
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"anyOf": [{"type": "array", "items": {}}, {"type": "object"}]},
}
_DESCRIPTIONS = {
    "400": "The input was refused; the answer names each field and why.",
    "401": "No valid credentials.",
    "403": "The user's role does not allow this.",
    "404": "Not found (or another workspace's).",
    "409": "The object's current state does not allow this.",
    "415": "The body's media type is not one this operation reads.",
    "429": "Too many requests; retry after the Retry-After header's seconds.",
}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, adding the error answers listed above."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self._error_codes(operation):
            if code not in responses:
                name, schema = (
                    ("ValidationError", _VALIDATION_ERROR)
                    if code == "400"
                    else ("ErrorDetail", _ERROR_DETAIL)
                )
                responses[code] = {
                    "content": {
                        "application/json": build_media_type_object(self._ref(name, schema))
                    },
                    "description": _DESCRIPTIONS[code],
                }
        return operation

    def _error_codes(self, operation: dict[str, Any]) -> list[str]:
        codes = ["400"]
        needs_user = any(
            not isinstance(permission, permissions.AllowAny)
            for permission in self.view.get_permissions()
        )
        if needs_user:
            codes += ["401", "403"]
        names_object = "{" in self.path
        paged = any(
            parameter.get("in") == "query" and parameter.get("name") == "page"
            for parameter in operation.get("parameters", [])
        )
        if names_object or paged:
            codes.append("404")
        if names_object and self.method in _WRITES:
            codes.append("409")
        if "requestBody" in operation:
            codes.append("415")
        if self.view.get_throttles():
            codes.append("429")
        return codes

    def _ref(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request":
            return schema
        if (
            isinstance(field, serializers.CharField)
            and not field.allow_blank
            and field.trim_whitespace
            and not {"pattern", "format", "enum"} & set(schema)
            # drf-spectacular adds a RegexValidator's pattern later, unless one is set.
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            # Trimmed first, then refused when blank: " " is as blank as "".
            schema["pattern"] = r"\S"
        many = (serializers.ListSerializer, serializers.ManyRelatedField, serializers.ListField)
        if isinstance(field, many) and not field.allow_empty and schema.get("type") == "array":
            schema.setdefault("minItems", 1)
        return schema
