"""DRF's parsers (the project's defaults), refusing any body that config.inputs refuses.

A NUL, an unpaired surrogate or an over-long string anywhere in a body (JSON and dict
contents, list items and keys included) is a 400 naming the top-level field, before
any serializer, service or query sees it. PostgreSQL could store none of them, and a
surrogate could not even be rendered back into an answer.
"""

from rest_framework import exceptions, parsers

from config.inputs import MAX_BODY_STRING_LENGTH, field_errors


class _CheckedParser(parsers.BaseParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        # Multipart and form parsers return DataAndFiles; their .data is a QueryDict.
        errors = field_errors(getattr(parsed, "data", parsed), max_length=MAX_BODY_STRING_LENGTH)
        if errors is not None:
            raise exceptions.ValidationError(errors)
        return parsed


class CheckedJSONParser(_CheckedParser, parsers.JSONParser):
    """DRF's JSON parser, refusing bodies config.inputs refuses."""


class CheckedFormParser(_CheckedParser, parsers.FormParser):
    """DRF's form parser, refusing fields config.inputs refuses."""


class CheckedMultiPartParser(_CheckedParser, parsers.MultiPartParser):
    """DRF's multipart parser, refusing form fields config.inputs refuses. File contents
    are the importer's to judge; Django already strips unprintable characters from file
    names."""
