"""Fixtures for campaign tests: numbers, templates and campaigns built directly in the database."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from campaigns.models import Campaign, CampaignTemplate
from campaigns.services import contacts_import
from numbers.models import Number
from templates_sync.models import Template
from templates_sync.rendering import parse_parameters

WABA = "100000000000001"


def make_number(workspace, label="main", phone_number_id="200000000000001", **extra):
    return Number.objects.create(
        workspace=workspace,
        label=label,
        phone_number_id=phone_number_id,
        waba_id=extra.pop("waba_id", WABA),
        access_token="token-" + phone_number_id,
        display_phone_number="+91 98765 00001",
        messaging_limit_tier=extra.pop("messaging_limit_tier", "TIER_10K"),
        max_mps=extra.pop("max_mps", 80),
        **extra,
    )


def make_template(
    workspace, name="order_update", body="Hi {{1}}, your order {{2}} shipped", **extra
):
    now = timezone.now()
    parameter_format = extra.pop("parameter_format", "POSITIONAL")
    components = extra.pop("components", None) or [{"type": "BODY", "text": body}]
    return Template.objects.create(
        workspace=workspace,
        waba_id=extra.pop("waba_id", WABA),
        name=name,
        language=extra.pop("language", "en_US"),
        category=extra.pop("category", "UTILITY"),
        status=extra.pop("status", "APPROVED"),
        parameter_format=parameter_format,
        components=components,
        parameters=parse_parameters(components, parameter_format),
        synced_at=now,
        last_seen_at=now,
        status_changed_at=now,
        **extra,
    )


def make_campaign(workspace, numbers, templates, name="Diwali", **extra):
    campaign = Campaign.objects.create(workspace=workspace, name=name, **extra)
    campaign.numbers.set(numbers)
    for item in templates:
        template, weight = item if isinstance(item, tuple) else (item, 1)
        CampaignTemplate.objects.create(campaign=campaign, template=template, weight=weight)
    return campaign


def run_import(campaign, data: bytes | str, user=None, filename="contacts.csv"):
    """Imports ``data`` synchronously; returns the finished job."""
    payload = data.encode() if isinstance(data, str) else data
    return contacts_import(
        campaign=campaign,
        user=user,
        opener=lambda: io.BytesIO(payload),
        filename=filename,
        size=len(payload),
    )


def upload(data: bytes | str, name="contacts.csv"):
    payload = data.encode() if isinstance(data, str) else data
    return SimpleUploadedFile(name, payload, content_type="text/csv")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The personas' passwords are hashed with a fast hasher: these tests are not about auth."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def number(workspace):
    return make_number(workspace)


@pytest.fixture
def template(workspace):
    return make_template(workspace)


@pytest.fixture
def campaign(workspace, number, template):
    return make_campaign(workspace, [number], [template])
