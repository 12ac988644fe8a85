"""Fixtures for campaign tests: a number, a template and a draft campaign (tests.factories),
and helpers that import contacts."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.services import contacts_import
from tests.factories import make_campaign, make_number, make_template


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
    return make_number(workspace=workspace)


@pytest.fixture
def template(workspace):
    return make_template(workspace=workspace)


@pytest.fixture
def campaign(workspace, number, template):
    return make_campaign(workspace=workspace, numbers=[number], templates=[template])
