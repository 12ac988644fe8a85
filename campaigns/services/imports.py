"""Contact imports into a campaign: now for small files, by a worker for big ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from campaigns.csvio import CHUNK_BYTES
from campaigns.importer import import_inspect, import_job_create, import_job_run
from campaigns.models import Campaign, ImportJob
from config.commit import after_commit

# Uploads up to this size are imported during the request; bigger ones by a worker.
DEFAULT_SYNC_IMPORT_MAX_BYTES = 2_000_000


def contacts_import(
    *,
    campaign: Campaign,
    user,
    opener: Callable[[], BinaryIO],
    filename: str,
    size: int,
    progress: Callable[[ImportJob], None] | None = None,
) -> ImportJob:
    """Imports the CSV ``opener`` opens into ``campaign`` now; returns the finished job.

    Raises ImportRefused (campaign state), ImportBusy (another import runs) or
    CsvFileError (the file as a whole is unusable), having stored nothing.
    """
    import_inspect(campaign=campaign, opener=opener)
    job = import_job_create(campaign=campaign, user=user, filename=filename, size=size)
    return import_job_run(job=job, opener=opener, progress=progress)


def contacts_upload(*, campaign: Campaign, user, upload) -> ImportJob:
    """Imports an uploaded file: now when small, else queued for a worker (status ``queued``).

    The file as a whole is checked before anything is stored, so a bad file
    raises CsvFileError (or ImportRefused) in both cases.
    """
    from campaigns.tasks import import_contacts_task

    def opener() -> BinaryIO:
        upload.seek(0)
        return upload

    limit = getattr(settings, "CAMPAIGN_SYNC_IMPORT_MAX_BYTES", DEFAULT_SYNC_IMPORT_MAX_BYTES)
    if upload.size <= limit:
        return contacts_import(
            campaign=campaign, user=user, opener=opener, filename=upload.name, size=upload.size
        )
    import_inspect(campaign=campaign, opener=opener)
    upload.seek(0)
    with transaction.atomic():
        job = import_job_create(
            campaign=campaign,
            user=user,
            filename=upload.name,
            size=upload.size,
            chunks=upload.chunks(CHUNK_BYTES),
        )
        after_commit(import_contacts_task.delay, job.pk)
    return job
