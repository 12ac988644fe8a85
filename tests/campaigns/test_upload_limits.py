"""Upload limits: a contact file over CAMPAIGN_UPLOAD_MAX_BYTES is refused as it arrives
(413 naming ``file`` in the API), big files stream to a temporary file, and a queued
upload's pieces never pile up in the debug query log."""

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import InMemoryUploadedFile, TemporaryUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns import services
from campaigns.models import ImportChunk, ImportJob, Recipient
from campaigns.uploads import ENVELOPE_BYTES, UploadLimitHandler, UploadTooLarge
from tests.campaigns.conftest import upload

pytestmark = pytest.mark.django_db


def csv_of(size: int) -> bytes:
    """A contacts CSV of exactly ``size`` bytes: a header and valid rows for the default
    template (two parameters), padded by the last row's second value."""
    lines = ["phone,1,2"] + [f"98{i:08d},N,C" for i in range(max(1, (size - 30) // 15))]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) <= size
    return data[:-1] + b"x" * (size - len(data)) + b"\n"


def contacts_url(campaign) -> str:
    return f"/api/campaigns/{campaign.pk}/contacts/"


def test_the_upload_handlers_refuse_first_then_keep_in_memory_then_on_disk():
    assert django_settings.FILE_UPLOAD_HANDLERS == [
        "campaigns.uploads.UploadLimitHandler",
        "django.core.files.uploadhandler.MemoryFileUploadHandler",
        "django.core.files.uploadhandler.TemporaryFileUploadHandler",
    ]
    assert django_settings.CAMPAIGN_UPLOAD_MAX_BYTES == 200_000_000
    assert django_settings.FILE_UPLOAD_MAX_MEMORY_SIZE == 2_621_440
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 2_621_440


def test_a_file_over_the_cap_is_413_naming_file_and_nothing_is_stored(
    api, owner, campaign, settings
):
    settings.CAMPAIGN_UPLOAD_MAX_BYTES = 5000
    response = api(owner).post(
        contacts_url(campaign), {"file": upload(csv_of(5001))}, format="multipart"
    )
    assert response.status_code == 413
    assert response.json() == {
        "file": [
            "the file is larger than 5,000 bytes, the most one upload may hold "
            "(CAMPAIGN_UPLOAD_MAX_BYTES): split it and upload the parts one after the other"
        ]
    }
    assert (ImportJob.objects.count(), Recipient.objects.count()) == (0, 0)


def test_a_file_of_exactly_the_cap_is_imported(api, owner, campaign, settings):
    settings.CAMPAIGN_UPLOAD_MAX_BYTES = 5000
    data = csv_of(5000)
    response = api(owner).post(contacts_url(campaign), {"file": upload(data)}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == data.count(b"\n") - 1


def test_a_body_announcing_more_than_the_cap_is_refused_before_it_is_read(
    api, owner, campaign, settings
):
    settings.CAMPAIGN_UPLOAD_MAX_BYTES = 5000
    # The body is tiny, the Content-Length says otherwise: reading past the real body would
    # fail the test client's payload, so the 413 proves nothing was read.
    response = api(owner).post(
        contacts_url(campaign),
        {"file": upload(csv_of(100))},
        format="multipart",
        CONTENT_LENGTH=str(5000 + ENVELOPE_BYTES + 1),
    )
    assert response.status_code == 413
    assert list(response.json()) == ["file"]
    assert ImportJob.objects.count() == 0


def test_the_handler_checks_the_declared_length_with_room_for_the_envelope(rf, settings):
    settings.CAMPAIGN_UPLOAD_MAX_BYTES = 5000
    handler = UploadLimitHandler(rf.post("/"))
    assert handler.handle_raw_input(None, {}, 5000 + ENVELOPE_BYTES, b"b") is None
    with pytest.raises(UploadTooLarge):
        handler.handle_raw_input(None, {}, 5000 + ENVELOPE_BYTES + 1, b"b")
    assert handler.receive_data_chunk(b"x" * 1000, 4000) == b"x" * 1000
    with pytest.raises(UploadTooLarge):
        handler.receive_data_chunk(b"x", 5000)


@pytest.mark.parametrize("debug", [True, False])
def test_a_file_above_the_memory_threshold_streams_to_a_temporary_file(
    api, owner, campaign, settings, monkeypatch, tmp_path, debug
):
    settings.DEBUG = debug
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 4096
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    seen = []
    real_upload = services.contacts_upload

    def spy(*, campaign, user, upload):
        on_disk = getattr(upload, "temporary_file_path", None)
        seen.append((type(upload), on_disk and on_disk().startswith(str(tmp_path))))
        return real_upload(campaign=campaign, user=user, upload=upload)

    monkeypatch.setattr(services, "contacts_upload", spy)
    client = api(owner)
    # Django keeps a file in memory when the whole body fits under the threshold.
    for size in (3000, 5000):
        response = client.post(
            contacts_url(campaign), {"file": upload(csv_of(size))}, format="multipart"
        )
        assert response.status_code == 200, response.content
    assert seen == [(InMemoryUploadedFile, None), (TemporaryUploadedFile, True)]


def test_a_refused_upload_leaves_no_temporary_file_behind(api, owner, campaign, settings, tmp_path):
    settings.CAMPAIGN_UPLOAD_MAX_BYTES = 100_000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 4096
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    response = api(owner).post(
        contacts_url(campaign), {"file": upload(csv_of(150_000))}, format="multipart"
    )
    assert response.status_code == 413
    # Still referenced by the request the test client keeps: the handler deleted it.
    assert response.wsgi_request is not None
    assert list(tmp_path.iterdir()) == []


def test_a_queued_upload_is_stored_whole_without_its_bytes_in_the_query_log(
    api, owner, campaign, settings
):
    settings.DEBUG = True
    settings.CAMPAIGN_SYNC_IMPORT_MAX_BYTES = 10
    data = csv_of(3_000_000)
    with CaptureQueriesContext(connection) as queries:
        response = api(owner).post(
            contacts_url(campaign), {"file": upload(data)}, format="multipart"
        )
    assert response.status_code == 202, response.content
    job = ImportJob.objects.get()
    chunks = ImportChunk.objects.filter(job=job).order_by("seq").values_list("data", flat=True)
    assert b"".join(bytes(chunk) for chunk in chunks) == data
    assert job.size_bytes == len(data)
    # An INSERT per 1 MB piece logged each piece as 2 MB of hex, kept until the next request.
    assert sum(len(query["sql"]) for query in queries.captured_queries) < 20_000


def test_the_admin_upload_over_the_cap_is_a_400_and_stores_nothing(
    client, owner, campaign, settings
):
    settings.CAMPAIGN_UPLOAD_MAX_BYTES = 5000
    client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    url = reverse("admin:campaigns_campaign_upload", args=[campaign.pk])
    response = client.post(url, {"file": upload(csv_of(5001))})
    assert response.status_code == 400
    assert (ImportJob.objects.count(), Recipient.objects.count()) == (0, 0)
    assert client.post(url, {"file": upload(csv_of(5000))}).status_code == 302


def test_the_upload_form_s_other_fields_follow_the_input_policy(api, owner, campaign):
    response = api(owner).post(
        contacts_url(campaign),
        {"file": upload(csv_of(100)), "note": "a\x00b"},
        format="multipart",
    )
    assert response.status_code == 400
    assert list(response.json()) == ["note"]
    assert ImportJob.objects.count() == 0
