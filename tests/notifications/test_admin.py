"""The admin: a bell with the user's unread count on every page, the list with mark read,
channels with "send a test", deliveries and attempts, and the secret shown once."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from notifications.models import Channel, Delivery, DeliveryAttempt, Notification
from notifications.services import notification_emit
from tests.notifications.conftest import webhook_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_owner(client, owner):
    client.force_login(owner)
    return client


def bell_count(html: str) -> int:
    match = re.search(r'id="wac-bell"[^>]*title="Notifications: (\d+) unread"', html)
    assert match, "no bell on the page"
    return int(match.group(1))


def emit(workspace, title="Something happened") -> Notification:
    return notification_emit(workspace_id=workspace.pk, event="campaign.paused", title=title)


def test_the_bell_counts_the_users_unread_notifications_on_every_page(as_owner, workspace):
    emit(workspace, "one")
    emit(workspace, "two")
    for url in [
        reverse("admin:index"),
        reverse("admin:campaigns_campaign_changelist"),
        reverse("admin:notifications_channel_changelist"),
    ]:
        response = as_owner.get(url)
        assert response.status_code == 200, url
        assert bell_count(response.content.decode()) == 2, url


def test_mark_all_read_clears_the_bell_for_this_user_only(as_owner, client, workspace, agent):
    emit(workspace, "one")
    emit(workspace, "two")
    url = reverse("admin:notifications_notification_mark_all_read")
    assert as_owner.get(url).status_code == 405
    assert as_owner.post(url).status_code == 302
    assert bell_count(as_owner.get(reverse("admin:index")).content.decode()) == 0
    client.force_login(agent)
    assert bell_count(client.get(reverse("admin:index")).content.decode()) == 2


def test_the_list_shows_unread_and_opening_one_reads_it(as_owner, workspace, other_workspace):
    mine = emit(workspace, "mine")
    emit(other_workspace, "theirs")
    changelist = reverse("admin:notifications_notification_changelist")
    html = as_owner.get(changelist + "?read=no").content.decode()
    assert "mine" in html and "theirs" not in html
    assert (
        as_owner.get(reverse("admin:notifications_notification_change", args=[mine.pk])).status_code
        == 200
    )
    assert (
        "mine"
        not in as_owner.get(changelist + "?read=no").content.decode().split("result_list")[-1]
    )
    assert bell_count(as_owner.get(reverse("admin:index")).content.decode()) == 0


def test_the_mark_read_action(as_owner, workspace):
    first = emit(workspace, "first")
    emit(workspace, "second")
    response = as_owner.post(
        reverse("admin:notifications_notification_changelist"),
        {"action": "mark_read", "_selected_action": [first.pk]},
    )
    assert response.status_code == 302
    assert bell_count(as_owner.get(reverse("admin:index")).content.decode()) == 1


def test_adding_a_webhook_channel_shows_the_secret_once(as_owner, workspace, receiver):
    response = as_owner.post(
        reverse("admin:notifications_channel_add"),
        {
            "workspace": workspace.pk,
            "name": "ERP",
            "kind": "webhook",
            "target": receiver.url,
            "events": ["campaign.paused", "campaign.completed"],
            "active": "on",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200, response.content[:2000]
    channel = Channel.objects.get()
    assert (channel.kind, channel.events) == ("webhook", ["campaign.completed", "campaign.paused"])
    assert "no-store" in response["Cache-Control"]
    assert channel.secret in response.content.decode()
    page = as_owner.get(reverse("admin:notifications_channel_change", args=[channel.pk]))
    assert page.status_code == 200
    assert channel.secret not in page.content.decode()
    assert channel.secret[6:] not in page.content.decode()


def test_send_a_test_and_see_its_attempts(as_owner, workspace, receiver):
    receiver.script = [(500, 0)]
    channel, _ = webhook_channel(workspace, receiver.url)
    test_url = reverse("admin:notifications_channel_test", args=[channel.pk])
    assert as_owner.get(test_url).status_code == 404  # a POST only
    response = as_owner.post(test_url, follow=True)
    assert "Test failed: 500 Internal Server Error" in response.content.decode()
    delivery = Delivery.objects.get(channel=channel)
    page = as_owner.get(reverse("admin:notifications_delivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1
    assert "500 Internal Server Error: nope" in page.content.decode()
    response = as_owner.post(test_url, follow=True)
    assert "Test delivered: 200 OK" in response.content.decode()


def test_rotating_in_the_admin_shows_the_new_secret(as_owner, workspace):
    channel, old = webhook_channel(workspace, "http://127.0.0.1:9/")
    response = as_owner.post(reverse("admin:notifications_channel_rotate", args=[channel.pk]))
    channel.refresh_from_db()
    assert response.status_code == 200
    assert channel.secret in response.content.decode()
    assert old not in response.content.decode()
    assert channel.previous_secret == old


def test_agents_and_outsiders_cannot_test_or_rotate(client, agent, outsider, workspace):
    channel, old = webhook_channel(workspace, "http://127.0.0.1:9/")
    client.force_login(agent)
    assert (
        client.post(reverse("admin:notifications_channel_test", args=[channel.pk])).status_code
        == 403
    )
    client.force_login(outsider)
    for name in ("notifications_channel_test", "notifications_channel_rotate"):
        assert client.post(reverse(f"admin:{name}", args=[channel.pk])).status_code == 404
    change = client.get(reverse("admin:notifications_channel_change", args=[channel.pk]))
    assert change.status_code == 302  # the admin's "does not exist" redirect
    channel.refresh_from_db()
    assert channel.secret == old and Delivery.objects.count() == 0
