"""Upload size limits: contact files over CAMPAIGN_UPLOAD_MAX_BYTES are refused as they
arrive, never kept whole in memory or on disk.

``UploadLimitHandler`` is the first of FILE_UPLOAD_HANDLERS, so it sees every multipart
body (the API's and the admin's CSV uploads) before the handlers after it keep the bytes:
Django's memory handler up to FILE_UPLOAD_MAX_MEMORY_SIZE, its temporary-file handler
above. ``ContactsUploadParser`` is the API's multipart parser, which turns the refusal
into a 413 naming the field ``file``; elsewhere (the admin) Django answers it with a 400.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser, get_encoding

from config.parsers import CheckedMultiPartParser

# Room for the multipart framing and the form's other fields, beyond the file itself, in a
# request's Content-Length.
ENVELOPE_BYTES = 64 * 1024


class UploadTooLarge(MultiPartParserError):
    """A multipart body holds (or announces) a file over CAMPAIGN_UPLOAD_MAX_BYTES.

    A MultiPartParserError, so that Django answers it with a 400 and marks the request's
    POST data unreadable (nothing parses the rest of the body again)."""


def upload_limit_message() -> str:
    limit = settings.CAMPAIGN_UPLOAD_MAX_BYTES
    return (
        f"the file is larger than {limit:,} bytes, the most one upload may hold "
        "(CAMPAIGN_UPLOAD_MAX_BYTES): split it and upload the parts one after the other"
    )


class UploadLimitHandler(FileUploadHandler):
    """Refuses a body whose Content-Length exceeds CAMPAIGN_UPLOAD_MAX_BYTES (plus
    ENVELOPE_BYTES) before reading any of it, and a file whose bytes exceed it while they
    stream in, before the next handler writes the chunk that is one too many. Passes
    every chunk on unchanged; stores nothing itself."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > settings.CAMPAIGN_UPLOAD_MAX_BYTES + ENVELOPE_BYTES:
            raise UploadTooLarge(upload_limit_message())
        return None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > settings.CAMPAIGN_UPLOAD_MAX_BYTES:
            self._discard_partial_files()
            raise UploadTooLarge(upload_limit_message())
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None

    def _discard_partial_files(self) -> None:
        # The parser closes only the files it has finished; the one being written (a
        # temporary file, deleted on close) would otherwise wait for garbage collection.
        for handler in getattr(self.request, "upload_handlers", ()):
            partial = getattr(handler, "file", None)
            if handler is not self and partial is not None:
                partial.close()


class FileTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the file is too large"
    default_code = "file_too_large"


class _SizeLimitedMultiPartParser(MultiPartParser):
    """DRF's multipart parser, answering a file over CAMPAIGN_UPLOAD_MAX_BYTES with
    ``413 {"file": ["..."]}`` rather than a generic parse error."""

    def parse(self, stream, media_type=None, parser_context=None) -> DataAndFiles:
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        parser = DjangoMultiPartParser(
            meta, stream, request.upload_handlers, get_encoding(parser_context)
        )
        try:
            data, files = parser.parse()
        except UploadTooLarge as error:
            raise FileTooLarge({"file": [str(error)]}) from None
        except MultiPartParserError as error:
            raise ParseError(f"Multipart form parse error - {error}") from None
        return DataAndFiles(data, files)


class ContactsUploadParser(CheckedMultiPartParser, _SizeLimitedMultiPartParser):
    """The contacts upload's parser: the project's input policy on the form's fields
    (config.parsers) over the size-limited parsing above."""
