"""The input policy (config.inputs) and the error answers at the HTTP boundary.

- ``InputPolicyMiddleware``: query strings (and header values) on every path; a bad
  one is a 400 naming the parameter, before any view or query sees it. Bodies are
  checked by the project's DRF parsers (config.parsers).
- ``ApiNotFoundMiddleware``: under /api/, a 404 is ``{"detail": "Not found."}`` also
  for paths no route matches, and also with DEBUG on (whose HTML page lists every
  URL pattern).
- ``exception_handler``: DRF's, except that a 404 never names the model looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import TooManyFieldsSent
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from config.inputs import MAX_QUERY_VALUE_LENGTH, NON_FIELD, NULL_MESSAGE, field_errors

API_PREFIX = "/api/"
NOT_FOUND = {"detail": exceptions.NotFound.default_detail}


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _header_errors(request: HttpRequest) -> dict[str, list[str]] | None:
    # WSGI header values are Latin-1 text, so no surrogate can be in them; a NUL can.
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            name = key[5:].replace("_", "-").title()
            return {name: [NULL_MESSAGE]}
    return None


class InputPolicyMiddleware:
    """Refuses a request whose query string or header values config.inputs refuses.

    Answers 400 with ``{"<param>": ["<why>"]}``: JSON under /api/, plain text elsewhere
    (the admin). Too many parameters (Django's DATA_UPLOAD_MAX_NUMBER_FIELDS) is a 400
    too, in the same shape.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            errors = field_errors(
                request.GET, max_length=MAX_QUERY_VALUE_LENGTH, noun="query parameter"
            )
        except TooManyFieldsSent as error:
            errors = {NON_FIELD: [str(error)]}
        errors = errors or _header_errors(request)
        if errors is None:
            return self.get_response(request)
        if _is_api(request):
            return JsonResponse(errors, status=400)
        text = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        return HttpResponseBadRequest(text, content_type="text/plain; charset=utf-8")


class ApiNotFoundMiddleware:
    """Turns any 404 under /api/ that is not already JSON into ``{"detail": "Not found."}``.

    Placed after CommonMiddleware, so a path missing its final slash is still
    redirected first.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and _is_api(request)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return JsonResponse(NOT_FOUND, status=404)
        return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's handler; an Http404 answers "Not found." (Django's text names the model)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    return drf_exception_handler(exc, context)
