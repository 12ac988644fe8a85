"""Sending one notification over one channel: e-mail, Standard Webhooks, Slack.

Each sender makes exactly one attempt and returns an ``Outcome``; deciding
about retries is ``notifications.delivery``'s. Nothing here logs or returns a
secret: answers are cut short and a URL is never part of an answer (a Slack
hook's URL is its credential).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db.models import Q

from accounts.models import Membership
from notifications.models import Channel, ChannelKind, Notification

ANSWER_MAX_CHARS = 500
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


@dataclass(frozen=True)
class Outcome:
    ok: bool
    answer: str
    status_code: int | None = None
    # The endpoint is gone for good (HTTP 410): the channel is disabled.
    gone: bool = False
    # Retrying cannot help (no address to send to, a bad secret).
    permanent: bool = False
    # The endpoint asked for this pause (Retry-After), in seconds.
    retry_after: float | None = None


# --- Standard Webhooks -------------------------------------------------------------------


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_`` secret: its base64 part decoded."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def webhook_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_payload(notification: Notification) -> dict:
    """The body: ``{"type", "timestamp", "data": {...}}``, with the workspace and the objects."""
    workspace = notification.workspace
    return {
        "type": notification.event,
        "timestamp": notification.created_at.isoformat(),
        "data": {
            "notification_id": notification.pk,
            "workspace": {"id": workspace.pk, "slug": workspace.slug, "name": workspace.name},
            "severity": notification.severity,
            "title": notification.title,
            "body": notification.body,
            "objects": notification.objects_ref,
            **notification.data,
        },
    }


def webhook_headers(channel: Channel, notification: Notification, body: bytes, now: datetime):
    message_id = f"msg_{notification.uuid.hex}"
    timestamp = int(now.timestamp())
    secrets = [channel.secret]
    if channel.previous_secret and (
        channel.previous_secret_until is None or channel.previous_secret_until > now
    ):
        secrets.append(channel.previous_secret)
    return {
        "content-type": "application/json",
        "user-agent": "wacampaigns-notifications/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        # Space-separated: a receiver holding either secret accepts it during a rotation.
        "webhook-signature": " ".join(
            webhook_signature(secret, message_id, timestamp, body) for secret in secrets
        ),
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    timeout = (settings.NOTIFY_CONNECT_TIMEOUT, settings.NOTIFY_READ_TIMEOUT)
    try:
        response = requests.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.Timeout:
        return Outcome(False, f"timed out (limits: {timeout[0]} s to connect, {timeout[1]} s)")
    except requests.RequestException as error:
        # The exception's text can quote the URL (a Slack hook's credential): class only.
        return Outcome(False, f"could not connect: {type(error).__name__}")
    text = response.text[:ANSWER_MAX_CHARS]
    answer = f"{response.status_code} {response.reason}" + (f": {text}" if text else "")
    if 200 <= response.status_code < 300:
        return Outcome(True, answer, response.status_code)
    retry_after = None
    header = response.headers.get("Retry-After", "")
    if header.strip().isdigit():
        retry_after = float(header.strip())
    return Outcome(
        False,
        answer,
        response.status_code,
        gone=response.status_code == 410,
        retry_after=retry_after,
    )


def send_webhook(channel: Channel, notification: Notification, now: datetime) -> Outcome:
    body = json.dumps(webhook_payload(notification), separators=(",", ":")).encode()
    try:
        headers = webhook_headers(channel, notification, body, now)
    except (ValueError, TypeError):
        return Outcome(False, "the channel's secret is not a whsec_ secret", permanent=True)
    return _post(channel.target, body, headers)


# --- Slack -------------------------------------------------------------------------------


def slack_message(notification: Notification) -> dict:
    """An incoming-webhook message: ``text`` (the fallback) plus blocks."""
    icon = {"critical": ":red_circle:", "warning": ":warning:"}.get(notification.severity, "")
    headline = f"{icon} {notification.title}".strip()
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_slack_escape(headline)}*"}}
    ]
    if notification.body:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _slack_escape(notification.body)},
            }
        )
    links = [
        f"<{item['admin_url']}|{_slack_escape(str(item.get('name') or item['type']))}>"
        for item in notification.objects_ref
        if item.get("admin_url")
    ]
    context = [f"{notification.workspace.name} · {notification.event}", *links]
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _slack_escape(context[0])}]
            + [{"type": "mrkdwn", "text": link} for link in links],
        }
    )
    return {"text": f"{headline}\n{notification.body}".strip(), "blocks": blocks}


def _slack_escape(text: str) -> str:
    # Slack's three control characters in mrkdwn.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send_slack(channel: Channel, notification: Notification) -> Outcome:
    body = json.dumps(slack_message(notification)).encode()
    return _post(channel.target, body, {"content-type": "application/json"})


# --- e-mail --------------------------------------------------------------------------------


def email_recipients(channel: Channel) -> list[str]:
    """The channel's addresses: listed ones, and members' with a ``role:`` entry."""
    addresses: list[str] = []
    roles = []
    for entry in (part.strip() for part in channel.target.split(",")):
        if not entry:
            continue
        if entry.startswith("role:"):
            roles.append(entry[len("role:") :])
        else:
            addresses.append(entry)
    if roles:
        members = (
            Membership.objects.filter(workspace_id=channel.workspace_id, role__in=roles)
            .exclude(Q(user__email="") | Q(user__is_active=False))
            .order_by("user__email")
            .values_list("user__email", flat=True)
        )
        addresses.extend(members)
    return list(dict.fromkeys(addresses))


def email_message(notification: Notification) -> tuple[str, str]:
    subject = f"[{notification.workspace.name}] {notification.title}"
    lines = [notification.title, ""]
    if notification.body:
        lines += [notification.body, ""]
    for item in notification.objects_ref:
        if item.get("admin_url"):
            lines.append(f"{item.get('name') or item['type']}: {item['admin_url']}")
    lines += ["", f"Event: {notification.event} ({notification.severity})"]
    return subject[:250], "\n".join(lines)


def send_email(channel: Channel, notification: Notification) -> Outcome:
    recipients = email_recipients(channel)
    if not recipients:
        return Outcome(
            False, "no recipient: no address listed, or no member with an address", permanent=True
        )
    subject, text = email_message(notification)
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    message = EmailMessage(
        subject, text, settings.DEFAULT_FROM_EMAIL, recipients, connection=connection
    )
    message.extra_headers["Message-ID"] = f"<{notification.uuid.hex}@wacampaigns>"
    try:
        sent = message.send()
    except smtplib.SMTPRecipientsRefused as error:
        return Outcome(False, f"every recipient refused: {', '.join(sorted(error.recipients))}")
    except (smtplib.SMTPException, OSError) as error:
        return Outcome(False, f"SMTP: {type(error).__name__}: {str(error)[:ANSWER_MAX_CHARS]}")
    if not sent:
        return Outcome(False, "the mail backend sent nothing")
    return Outcome(True, f"sent to {len(recipients)} recipient(s)")


def send(channel: Channel, notification: Notification, now: datetime) -> Outcome:
    if channel.kind == ChannelKind.EMAIL:
        return send_email(channel, notification)
    if channel.kind == ChannelKind.WEBHOOK:
        return send_webhook(channel, notification, now)
    if channel.kind == ChannelKind.SLACK:
        return send_slack(channel, notification)
    return Outcome(False, f"unknown channel kind {channel.kind!r}", permanent=True)


def timed_send(channel: Channel, notification: Notification, now: datetime) -> tuple[Outcome, int]:
    """(outcome, milliseconds taken)."""
    started = time.monotonic()
    outcome = send(channel, notification, now)
    return outcome, int((time.monotonic() - started) * 1000)
