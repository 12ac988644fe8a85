"""The API of api.md "Notifications": channels (secret shown once), the test send,
notifications with the caller's read_at and deliveries; validation per field; isolation."""

from __future__ import annotations

import json

import pytest

from notifications.models import Channel, Delivery, Notification
from notifications.services import notification_emit
from tests.notifications.conftest import webhook_channel

pytestmark = pytest.mark.django_db

CHANNELS = "/api/notification-channels/"


def test_creating_a_webhook_channel_shows_its_secret_once(api, owner, receiver):
    client = api(owner)
    response = client.post(
        CHANNELS,
        {"kind": "webhook", "target": receiver.url, "events": ["campaign.paused"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert {key: body[key] for key in ("kind", "target", "events", "active")} == {
        "kind": "webhook",
        "target": receiver.url,
        "events": ["campaign.paused"],
        "active": True,
    }
    channel = Channel.objects.get(pk=body["id"])
    assert channel.secret == secret
    listed = client.get(CHANNELS)
    detail = client.get(f"{CHANNELS}{channel.pk}/")
    changed = client.patch(f"{CHANNELS}{channel.pk}/", {"active": False}, format="json")
    for answer in (listed, detail, changed):
        assert answer.status_code == 200
        assert secret not in answer.content.decode()
        assert secret[6:] not in answer.content.decode()
        assert "secret" not in json.dumps(answer.json()).replace("disabled_reason", "")


def test_rotating_returns_the_new_secret_once(api, owner, workspace):
    channel, old = webhook_channel(workspace, "http://127.0.0.1:9/")
    response = api(owner).post(f"{CHANNELS}{channel.pk}/rotate-secret/")
    assert response.status_code == 200
    new = response.json()["secret"]
    channel.refresh_from_db()
    assert (channel.secret, channel.previous_secret) == (new, old)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "fax", "target": "x"}, "kind"),
        ({"kind": "webhook", "target": "not a url"}, "target"),
        ({"kind": "webhook"}, "target"),
        ({"kind": "email", "target": "ops@acme.example, nobody"}, "target"),
        ({"kind": "email", "target": "role:boss"}, "target"),
        (
            {"kind": "email", "target": "ops@acme.example", "events": ["campaign.exploded"]},
            "events",
        ),
        ({"kind": "email", "target": 5}, "target"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_saves_nothing(api, owner, body, field):
    response = api(owner).post(CHANNELS, body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert Channel.objects.count() == 0


def test_an_unknown_event_type_is_named_with_the_known_ones(api, owner):
    response = api(owner).post(
        CHANNELS, {"kind": "email", "target": "a@b.example", "events": ["x.y"]}, format="json"
    )
    assert response.status_code == 400
    [message] = response.json()["events"]
    assert message.startswith("unknown event type x.y; known: campaign.completed, ")


def test_webhooks_need_https_unless_allowed(api, owner, settings):
    settings.NOTIFY_ALLOW_HTTP = False
    response = api(owner).post(
        CHANNELS, {"kind": "webhook", "target": "http://x.example/"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"target": ["webhook endpoints must use https"]}


def test_the_kind_cannot_change(api, owner, workspace):
    channel, _ = webhook_channel(workspace, "http://127.0.0.1:9/")
    response = api(owner).patch(f"{CHANNELS}{channel.pk}/", {"kind": "slack"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["kind"]


def test_an_email_channel_takes_a_list_of_addresses(api, owner):
    response = api(owner).post(
        CHANNELS, {"kind": "email", "target": ["ops@acme.example", "role:owner"]}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["target"] == "ops@acme.example, role:owner"
    assert "secret" not in response.json()


def test_a_slack_hook_url_is_never_shown_back(api, owner):
    url = "http://127.0.0.1:9/services/T0001/B0001/abcdefghijklmnop"
    response = api(owner).post(CHANNELS, {"kind": "slack", "target": url}, format="json")
    assert response.status_code == 201
    assert "abcdefghijkl" not in response.content.decode()
    assert response.json()["target"].endswith("mnop")


def test_the_test_action_sends_and_answers_with_the_attempt(api, owner, workspace, receiver):
    channel, secret = webhook_channel(workspace, receiver.url)
    receiver.secrets = [secret]
    response = api(owner).post(f"{CHANNELS}{channel.pk}/test/")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["attempts"], body["channel"]) == ("delivered", 1, channel.pk)
    [request] = receiver.requests
    assert request.verified_by == [0]


def test_agents_read_channels_but_do_not_change_or_test_them(api, agent, workspace):
    channel, _ = webhook_channel(workspace, "http://127.0.0.1:9/")
    client = api(agent)
    assert client.get(CHANNELS).status_code == 200
    assert (
        client.post(CHANNELS, {"kind": "email", "target": "a@b.example"}, format="json").status_code
        == 403
    )
    assert (
        client.patch(f"{CHANNELS}{channel.pk}/", {"active": False}, format="json").status_code
        == 403
    )
    assert client.post(f"{CHANNELS}{channel.pk}/test/").status_code == 403
    assert Delivery.objects.count() == 0


def test_another_workspaces_channels_and_notifications_are_404(api, outsider, workspace):
    channel, _ = webhook_channel(workspace, "http://127.0.0.1:9/")
    notification = notification_emit(workspace_id=workspace.pk, event="campaign.paused", title="t")
    client = api(outsider)
    assert client.get(CHANNELS).json()["results"] == []
    for method, url in [
        ("get", f"{CHANNELS}{channel.pk}/"),
        ("patch", f"{CHANNELS}{channel.pk}/"),
        ("delete", f"{CHANNELS}{channel.pk}/"),
        ("post", f"{CHANNELS}{channel.pk}/test/"),
        ("post", f"{CHANNELS}{channel.pk}/rotate-secret/"),
        ("get", f"/api/notifications/{notification.pk}/"),
        ("post", f"/api/notifications/{notification.pk}/read/"),
    ]:
        assert getattr(client, method)(url, {}, format="json").status_code == 404, url
    assert client.get("/api/notifications/").json()["results"] == []
    assert Channel.objects.filter(pk=channel.pk, active=True).exists()


def test_notifications_list_has_the_documented_fields_and_per_user_read_at(
    api, owner, agent, workspace
):
    channel, _ = webhook_channel(workspace, "http://127.0.0.1:9/")
    first = notification_emit(
        workspace_id=workspace.pk,
        event="campaign.paused",
        title="Campaign “A” was paused",
        objects=[{"type": "campaign", "id": 1, "name": "A", "admin_url": None}],
    )
    second = notification_emit(workspace_id=workspace.pk, event="campaign.completed", title="B")
    client = api(owner)
    listed = client.get("/api/notifications/").json()["results"]
    assert [item["id"] for item in listed] == [second.pk, first.pk]
    item = listed[1]
    assert set(item) >= {
        "id",
        "event",
        "severity",
        "title",
        "body",
        "objects",
        "created_at",
        "read_at",
        "deliveries",
    }
    assert item["objects"] == [{"type": "campaign", "id": 1, "name": "A", "admin_url": None}]
    assert item["read_at"] is None
    [delivery] = item["deliveries"]
    assert {key: delivery[key] for key in ("channel", "status", "attempts", "last_attempt_at")} == {
        "channel": channel.pk,
        "status": "pending",
        "attempts": 0,
        "last_attempt_at": None,
    }
    read = client.post(f"/api/notifications/{first.pk}/read/").json()
    assert read["read_at"] is not None
    assert [n["id"] for n in client.get("/api/notifications/?unread=1").json()["results"]] == [
        second.pk
    ]
    # Read per user: the agent's bell still rings for both.
    assert len(api(agent).get("/api/notifications/?unread=1").json()["results"]) == 2
    assert api(agent).post("/api/notifications/read-all/").json() == {"marked": 2}
    assert api(agent).get("/api/notifications/?unread=1").json()["results"] == []
    assert Notification.objects.count() == 2


def test_unauthenticated_is_401(api):
    assert api().get("/api/notifications/").status_code == 401
    assert api().get(CHANNELS).status_code == 401
