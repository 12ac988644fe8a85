"""The WhatsApp webhook endpoint: Meta's verification handshake and signed event delivery.

A POST is answered from one INSERT: the raw body is stored first and processed later on
the ``webhooks`` queue, so a crash or a bug after the answer loses nothing. The POST queues
a drain task only when none is waiting already (a Redis flag), and a drain processes every
event stored by then in batches. Answers:

- 200 for every correctly signed body, even malformed JSON or a shape we do not know:
  Meta retries any other answer for days, and a retry of the same bytes cannot succeed.
  Such events are kept and flagged by processing for a person to look at.
- 403 for a missing or wrong signature (or no app secret configured). The body is kept
  only truncated, as ``flagged`` with ``signature_valid=False``, never processed: enough
  to diagnose a wrong app secret, too little to fill the disk for whoever sends it.
- 400 only for a body over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB; Meta's are KBs).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.commit import after_commit
from webhooks.ingest import dedupe_key_for
from webhooks.models import WebhookEvent, WebhookEventStatus
from webhooks.tasks import request_drain

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
KEPT_HEADERS = ("Content-Type", "User-Agent", SIGNATURE_HEADER, "X-Forwarded-For")
UNTRUSTED_BODY_LIMIT = 2048


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
    body = request.body
    headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
    secret = settings.WHATSAPP_APP_SECRET
    if not signature_valid(body, request.headers.get(SIGNATURE_HEADER), secret):
        if not secret:
            logger.error("webhook refused: WHATSAPP_APP_SECRET is not set")
        missing = SIGNATURE_HEADER not in request.headers
        WebhookEvent.objects.create(
            body=body[:UNTRUSTED_BODY_LIMIT],
            headers=headers,
            signature_valid=False,
            status=WebhookEventStatus.FLAGGED,
            error="missing signature" if missing else "bad signature",
            dedupe_key=dedupe_key_for(body),
        )
        return HttpResponseForbidden("bad signature", content_type="text/plain")
    WebhookEvent.objects.create(
        body=body, headers=headers, signature_valid=True, dedupe_key=dedupe_key_for(body)
    )
    after_commit(request_drain)
    return HttpResponse("ok", content_type="text/plain")
