"""The WhatsApp webhook endpoint: Meta's verification handshake and signed event delivery.

A POST is answered from one INSERT: the raw body is stored first and processed later on
the ``webhooks`` queue, so a crash or a bug after the answer loses nothing. The POST queues
a drain task only when none is waiting already (a Redis flag), and a drain processes every
event stored by then in batches. Answers:

- 200 for every correctly signed body, even malformed JSON or a shape we do not know:
  Meta retries any other answer for days, and a retry of the same bytes cannot succeed.
  Such events are kept and flagged by processing for a person to look at.
- 403 for a missing or wrong signature (or no app secret configured). Nothing is stored
  as an event: the refusal is counted per hour and reason, and sampled cut short into a
  ring of a hundred (webhooks/refusals.py), so a flood costs no disk.
- 413 for a body over WEBHOOK_MAX_BODY_BYTES (default 3 MiB, the most Meta documents for
  a webhook payload): refused on its Content-Length before anything is read, and a body
  is never read past the limit, so memory stays flat whatever is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.commit import after_commit
from webhooks.ingest import dedupe_key_for
from webhooks.models import RefusalReason, WebhookEvent
from webhooks.refusals import webhook_refusal_record
from webhooks.tasks import request_drain

logger = logging.getLogger(__name__)

INBOUND_KEY = re.compile(rb'"messages"\s*:')

SIGNATURE_HEADER = "X-Hub-Signature-256"
KEPT_HEADERS = ("Content-Type", "User-Agent", SIGNATURE_HEADER, "X-Forwarded-For")
_MAX_BIGINT = 2**63 - 1


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Whether ``header`` is ``sha256=<hex>`` of the HMAC-SHA256 of ``body`` keyed with
    ``secret``, compared in constant time. Always False without a secret."""
    if not secret or not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _handshake(request)
    return _receive(request)


def _handshake(request: HttpRequest) -> HttpResponse:
    token = settings.WHATSAPP_VERIFY_TOKEN
    given = request.GET.get("hub.verify_token", "")
    if (
        request.GET.get("hub.mode") == "subscribe"
        and token
        and hmac.compare_digest(given.encode(), token.encode())
    ):
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
    return HttpResponseForbidden("verification failed", content_type="text/plain")


def _receive(request: HttpRequest) -> HttpResponse:
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    declared = _content_length(request)
    if declared is not None and declared > limit:
        return _refuse(request, RefusalReason.TOO_LARGE, b"", declared)
    # Never request.body: at most limit + 1 bytes are read, whatever the request claims.
    body = request.read(limit + 1)
    if len(body) > limit:
        return _refuse(request, RefusalReason.TOO_LARGE, body, declared)
    secret = settings.WHATSAPP_APP_SECRET
    if not signature_valid(body, request.headers.get(SIGNATURE_HEADER), secret):
        if not secret:
            reason = RefusalReason.NO_APP_SECRET
        elif SIGNATURE_HEADER not in request.headers:
            reason = RefusalReason.MISSING_SIGNATURE
        else:
            reason = RefusalReason.BAD_SIGNATURE
        return _refuse(request, reason, body, declared)
    WebhookEvent.objects.create(
        body=body,
        headers=_kept_headers(request),
        signature_valid=True,
        dedupe_key=dedupe_key_for(body),
    )
    # Inbound messages (a ``"messages": [...]`` key, not the ``"field": "messages"`` every
    # status change carries too) skip the gathering meant for status floods: the automatic
    # reply's latency starts here (bench/autoreply.py).
    urgent = INBOUND_KEY.search(body) is not None
    after_commit(lambda: request_drain(urgent=urgent))
    return HttpResponse("ok", content_type="text/plain")


def _refuse(
    request: HttpRequest, reason: RefusalReason, body: bytes, declared: int | None
) -> HttpResponse:
    """Count and sample the refusal (never an event row), answer 403, or 413 for size."""
    first_of_hour = webhook_refusal_record(
        reason=reason,
        body=body,
        headers=_kept_headers(request),
        remote_addr=request.META.get("REMOTE_ADDR") or "",
        content_length=declared,
    )
    if first_of_hour:
        # Once per hour and reason: a flood must not fill the logs either.
        log = logger.error if reason == RefusalReason.NO_APP_SECRET else logger.warning
        log(
            "webhook POST refused: %s (this hour's further refusals are counted, see the "
            "admin's webhook refusals)%s",
            reason,
            "; set WHATSAPP_APP_SECRET" if reason == RefusalReason.NO_APP_SECRET else "",
        )
    if reason == RefusalReason.TOO_LARGE:
        response = HttpResponse(
            f"body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes",
            status=413,
            content_type="text/plain",
        )
    else:
        response = HttpResponseForbidden("bad signature", content_type="text/plain")
    # Logged above, once an hour: Django's own "Forbidden: <path>" warning for each 4xx
    # (django.utils.log.log_response skips responses marked so) would be a line per
    # forged request.
    response._has_been_logged = True
    return response


def _content_length(request: HttpRequest) -> int | None:
    """The declared Content-Length, or None when there is none (or it is not a number)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return min(max(length, 0), _MAX_BIGINT)


def _kept_headers(request: HttpRequest) -> dict[str, str]:
    return {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
